#!/usr/bin/env python3
"""Several models on one GPU, served by ONE fathom process: each model alone against all together.

Random-weight checkpoints at real configurations are made here with transformers (f16 safetensors):
  minilm     all-MiniLM-L6-v2 config  (BERT 6 x 384)            light
  bge-base   bge-base-en-v1.5 config  (BERT 12 x 768)
  bge-large  bge-large-en-v1.5 config (BERT 24 x 1024)           heavy
  xlmr       xlm-roberta-base config  (XLM-R 12 x 768, 250k vocab)
  whisper    whisper-base config      (6 + 6 layers x 512), with --whisper (needs fathom built with FFmpeg)
One `fathom serve --config` process serves them all on cuda:0 (per-model memory budgets, priorities, CUDA
graphs). Load comes from `fathom_load` (one process per model, so every model gets its own throughput and
latency percentiles), closed loop: N connections each sending one text per request (embeddings; texts with
the realistic length spread of bench_embed.make_workload) or the 11 s jfk clip (Whisper, 32 tokens).

Scenarios (each after a short unmeasured warm-up at the same load):
  http-path    bge-base alone in its own server, 256 connections, against the in-process figure of
               `fathom_gpu_bench run` on the same texts (issue 3's HTTP target)
  alone/<m>    each model alone at saturation (the others loaded and idle)
  together     every model at once, same connections
  light/alone  the light model at a low load (a few connections) with nothing else running
  light/heavy  the same light load while the heavy model is saturated
  concurrent   (--concurrent) the light/heavy pair alone in a server, once per --variants entry: models
               sharing the device's worker ("shared", the default) and both `concurrent = true`
               ("concurrent": a worker and a CUDA stream each, the light model at priority 8, i.e. a higher
               stream priority; "concurrent-bN": the same with the heavy model's batch budget at N tokens;
               "concurrent-sN": the same with the heavy model on an SM partition of N SMs, max_sms = N;
               "concurrent-sN-lM": and the light model on a disjoint partition of M SMs):
               light p99 alone and with the heavy model saturated, heavy throughput alone and with the light
               load; per repeat also the server's own view of the light model from /metrics histograms
               (request duration, queue wait, step duration: p50/p99 in ms, interpolated in the buckets)
Aggregate efficiency = sum over models of (together throughput / alone throughput): the device-time shares
the models got together, which must add up to >= 0.9. /metrics is sampled every second for each model's
memory (fathom_model_memory_bytes) and its budget.

usage (GPU machine, repo root, bundle B with fathom, fathom_load, fathom_gpu_bench and jfk.wav):
  python3 B/multi_model_bench.py --bundle B --out results.json [--seconds 8] [--whisper]
  python3 B/multi_model_bench.py --bundle B --out results.json --concurrent   (only the concurrent scenario)
"""
import argparse, json, os, re, shutil, statistics, subprocess, sys, tempfile, threading, time, urllib.error, urllib.request

REPO = os.environ.get("FATHOM_SOURCE_DIR", os.getcwd())
sys.path.insert(0, os.path.join(REPO, "bench", "gpu"))
FIX = os.path.join(REPO, "tests", "fixtures", "models")

BERT = {
    "minilm": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536),
    "bge-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "bge-large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
}
# Per model: memory budget, priority, batch token budget, connections at saturation.
SERVE = {
    "minilm": dict(budget="1GiB", priority=1, max_batch_tokens=16384, conns=128),
    "bge-base": dict(budget="2GiB", priority=1, max_batch_tokens=16384, conns=128),
    "bge-large": dict(budget="3GiB", priority=1, max_batch_tokens=8192, conns=128),
    "xlmr": dict(budget="3GiB", priority=1, max_batch_tokens=16384, conns=128),
    "whisper": dict(budget="6GiB", priority=1, max_batch_tokens=16384, conns=32),
}
LIGHT, HEAVY, LIGHT_CONNS = "minilm", "bge-large", 4
# --smoke: the committed fixtures on the CPU instead (checks this script, not performance).
DEVICE = {"device": "cuda", "dtype": "float16"}


CLIENT_PREFIX = []  # e.g. ["taskset", "-c", "12-15"] (--client-cpus)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def tokenizer_files(src, dst, max_len):
    os.makedirs(dst, exist_ok=True)
    shutil.copy(os.path.join(src, "tokenizer.json"), dst)
    with open(os.path.join(src, "tokenizer_config.json")) as f:
        tc = json.load(f)
    tc["model_max_length"] = max_len
    with open(os.path.join(dst, "tokenizer_config.json"), "w") as f:
        json.dump(tc, f)


def make_models(work, whisper, only=None):
    import torch
    from transformers import (BertConfig, BertModel, WhisperConfig, WhisperForConditionalGeneration,
                              XLMRobertaConfig, XLMRobertaModel)
    dirs = {}
    for name, cfg in BERT.items():
        if only and name not in only:
            continue
        d = os.path.join(work, name)
        torch.manual_seed(0)
        with torch.device("cuda"):
            m = BertModel(BertConfig(vocab_size=30522, max_position_embeddings=512, type_vocab_size=2,
                                     hidden_act="gelu", layer_norm_eps=1e-12, initializer_range=0.02, **cfg),
                          add_pooling_layer=False)
        m.half().save_pretrained(d, safe_serialization=True)
        tokenizer_files(os.path.join(FIX, "bert-mean-norm"), d, 512)
        dirs[name] = d
    if only and "xlmr" not in only:
        return dirs
    d = os.path.join(work, "xlmr")
    torch.manual_seed(0)
    with torch.device("cuda"):
        m = XLMRobertaModel(XLMRobertaConfig(vocab_size=250002, hidden_size=768, num_hidden_layers=12,
                                             num_attention_heads=12, intermediate_size=3072,
                                             max_position_embeddings=514, type_vocab_size=1, pad_token_id=1,
                                             bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5),
                            add_pooling_layer=False)
    m.half().save_pretrained(d, safe_serialization=True)
    tokenizer_files(os.path.join(FIX, "xlmr-bf16-max"), d, 512)
    dirs["xlmr"] = d
    if whisper:
        src = os.path.join(FIX, "whisper-tiny-random-f32")
        d = os.path.join(work, "whisper")
        cfg = WhisperConfig.from_pretrained(src)
        cfg.update(dict(d_model=512, encoder_layers=6, decoder_layers=6, encoder_attention_heads=8,
                        decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048, init_std=0.02))
        torch.manual_seed(0)
        with torch.device("cuda"):
            m = WhisperForConditionalGeneration(cfg)
        m.half().save_pretrained(d, safe_serialization=True)
        for f in ("generation_config.json", "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(src, f), d)
        dirs["whisper"] = d
    return dirs


def texts_for(dirs, n):
    """Realistic-length texts (bench_embed.make_workload ids decoded); per model those within 510 tokens."""
    from bench_embed import make_workload
    from tokenizers import Tokenizer
    seqs = make_workload(n, seed=7)
    bert_dir = dirs.get("bge-base") or dirs["minilm"]  # every BERT checkpoint here has the same tokenizer
    bert_tok = Tokenizer.from_file(os.path.join(bert_dir, "tokenizer.json"))
    bert_tok.no_padding(); bert_tok.no_truncation()
    texts = bert_tok.decode_batch(seqs, skip_special_tokens=True)
    out = {}
    for m, d in dirs.items():
        if m == "whisper":
            continue
        tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        tok.no_padding(); tok.no_truncation()
        lens = [len(e.ids) for e in tok.encode_batch(texts)]
        out[m] = [t for t, L in zip(texts, lens) if L <= 510]
    bert_ids = [e.ids for e in bert_tok.encode_batch(out.get("bge-base") or out["minilm"])]
    return out, bert_ids


def write_workloads(work, texts, whisper, jfk):
    paths = {}
    for m, ts in texts.items():
        p = os.path.join(work, f"load_{m}.json")
        with open(p, "w") as f:
            json.dump([{"name": f"{m}/{i}", "kind": "embeddings", "model": m, "input": t}
                       for i, t in enumerate(ts[:800])], f)
        paths[m] = p
    if whisper:
        shutil.copy(jfk, os.path.join(work, "jfk.wav"))
        p = os.path.join(work, "load_whisper.json")
        with open(p, "w") as f:
            json.dump([{"name": "whisper/jfk", "kind": "transcriptions", "model": "whisper", "file": "jfk.wav",
                        "fields": {"language": "en", "max_completion_tokens": "32"}}], f)
        paths["whisper"] = p
    return paths


def write_config(path, port, dirs, overrides=None):
    lines = ["[server]", 'host = "127.0.0.1"', f"port = {port}", "access_log = false", 'log_level = "warn"', "",
             "[limits]", "max_connections = 2048", "max_queued_requests = 8192", "request_timeout_seconds = 120", "",
             "[defaults]", f'device = "{DEVICE["device"]}"', f'dtype = "{DEVICE["dtype"]}"', "cuda_graphs = true", "max_batch_size = 512", ""]
    for m, d in dirs.items():
        s = dict(SERVE[m], **(overrides or {}).get(m, {}))
        lines += ["[[models]]", f'name = "{m}"', f'path = "{d}"', f'memory_budget = "{s["budget"]}"',
                  f'priority = {s["priority"]}', f'max_batch_tokens = {s["max_batch_tokens"]}']
        if "concurrent" in s:
            lines.append(f'concurrent = {"true" if s["concurrent"] else "false"}')
        if "max_sms" in s:
            lines.append(f'max_sms = {s["max_sms"]}')
        lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))


class Server:
    def __init__(self, cmd, port, log_path):
        self.port, self.log_path = port, log_path
        self.logf = open(log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT)
        t0 = time.time()
        while True:
            if time.time() - t0 > 600:
                self.proc.kill()
                raise RuntimeError(f"fathom was not ready within 600 s: {open(log_path).read()[-3000:]}")
            if self.proc.poll() is not None:
                raise RuntimeError(f"fathom exited ({self.proc.returncode}): {open(log_path).read()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except urllib.error.HTTPError as e:  # 503 lists each model's state: a failed load never gets ready
                body = json.loads(e.read() or b"{}")
                if "failed" in body.get("models", {}).values():
                    self.proc.kill()
                    raise RuntimeError(f"a model failed to load: {body.get('error', {}).get('message')}")
                time.sleep(0.2)
            except Exception:
                time.sleep(0.2)
        self.load_s = time.time() - t0
        log(f"server on :{port} ready after {self.load_s:.1f} s")

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            return r.read().decode()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.logf.close()
        return self.proc.returncode


def gauge(text, name):
    out = {}
    for m in re.finditer(name + r'\{model="([^"]+)"[^}]*\} (\S+)', text):
        out[m.group(1)] = float(m.group(2))
    return out


class MemorySampler(threading.Thread):
    def __init__(self, server):
        super().__init__(daemon=True)
        self.server, self.samples, self.stop_flag = server, [], threading.Event()

    def run(self):
        while not self.stop_flag.is_set():
            try:
                t = self.server.metrics()
                self.samples.append({"t": time.time(), "bytes": gauge(t, "fathom_model_memory_bytes"),
                                     "budget": gauge(t, "fathom_model_memory_budget_bytes")})
            except Exception as e:
                log("metrics scrape failed:", e)
            self.stop_flag.wait(1.0)

    def summary(self):
        out = {}
        for s in self.samples:
            for m, b in s["bytes"].items():
                o = out.setdefault(m, {"min_mib": 1e18, "max_mib": 0, "budget_mib": s["budget"].get(m, 0) / 2**20})
                o["min_mib"] = min(o["min_mib"], b / 2**20)
                o["max_mib"] = max(o["max_mib"], b / 2**20)
        for o in out.values():
            o["within_budget"] = o["budget_mib"] == 0 or o["max_mib"] <= o["budget_mib"]
        return {"samples": len(self.samples), "models": out}


def load(bundle, port, models, conns, seconds, paths, tag, work):
    """Runs one fathom_load per model at once; returns {model: summary}."""
    procs = {}
    for m in models:
        out = os.path.join(work, f"{tag}_{m}.json".replace("/", "_"))
        cmd = CLIENT_PREFIX + [os.path.join(bundle, "run"), "fathom_load", "--url", f"http://127.0.0.1:{port}", "--connections",
               str(conns[m]), "--duration", str(seconds), "--workload", paths[m], "--out", out, "--timeout", "120"]
        procs[m] = (subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), out)
    res = {}
    for m, (p, out) in procs.items():
        text, _ = p.communicate()
        try:
            with open(out) as f:
                j = json.load(f)
            t = j["total"]
            res[m] = {"connections": conns[m], "requests": t["requests"], "status": t["status"],
                      "throughput_rps": t["throughput_rps"], "inputs_per_s": t["inputs_per_s"],
                      "latency_ms": t["latency_ms"], "wall_s": j["wall_s"]}
        except Exception as e:
            res[m] = {"error": f"{e}: {text[-1500:]}"}
    log(tag, json.dumps({m: (r.get("inputs_per_s"), r.get("latency_ms", {}).get("p99")) for m, r in res.items()}))
    return res


def histogram_delta(before, after, series, labels):
    """Per-bucket counts of a /metrics histogram added between two scrapes: [(upper bound, count)]."""
    def buckets(text):
        out = {}
        pat = re.compile(re.escape(series) + r'_bucket\{' + re.escape(labels) + r',le="([^"]+)"\} (\d+)')
        for m in pat.finditer(text):
            out[float("inf") if m.group(1) == "+Inf" else float(m.group(1))] = int(m.group(2))
        return out
    b0, b1 = buckets(before), buckets(after)
    prev, res = 0, []
    for le in sorted(b1):
        cum = b1[le] - b0.get(le, 0)
        res.append((le, cum - prev))
        prev = cum
    return res


def histogram_quantiles(delta, qs=(0.5, 0.99)):
    """Quantiles (ms) from histogram_delta buckets, linear inside a bucket; None without samples."""
    total = sum(c for _, c in delta)
    if total == 0:
        return None
    out, lo = {}, 0.0
    cum = 0
    for le, c in delta:
        for q in qs:
            target = q * total
            if f"p{int(q * 100)}" not in out and cum + c >= target and c > 0:
                hi = le if le != float("inf") else lo * 2
                out[f"p{int(q * 100)}"] = 1e3 * (lo + (hi - lo) * (target - cum) / c)
        cum += c
        lo = le if le != float("inf") else lo
    out["count"] = total
    return out


def light_breakdown(before, after):
    """Where the light model's time went between two /metrics scrapes: request, queue wait, step (ms)."""
    lab = f'model="{LIGHT}"'
    return {
        "request": histogram_quantiles(histogram_delta(before, after, "fathom_request_duration_seconds",
                                                       f'route="/v1/embeddings",{lab}')),
        "queue_wait": histogram_quantiles(histogram_delta(before, after, "fathom_queue_wait_seconds", lab)),
        "step": histogram_quantiles(histogram_delta(before, after, "fathom_step_duration_seconds", lab)),
    }


def concurrent_variants(names):
    """Server configurations of the concurrent scenario by name: "shared" (one device worker), "concurrent"
    (a worker and a stream each, the light model at priority 8), "concurrent-bN" (concurrent, with the
    heavy model's batch budget at N tokens: shorter heavy steps), "concurrent-sN" (concurrent, the heavy
    model on an SM partition of N SMs: `max_sms = N`) and "concurrent-sN-lM" (the same, and the light model
    on a partition of M SMs of its own: partitions of one device never share an SM)."""
    out = {}
    for name in names:
        m = re.fullmatch(r"concurrent(?:-b(\d+)|-s(\d+)(?:-l(\d+))?)?", name)
        if name == "shared":
            out[name] = {}
        elif m:
            heavy = {"concurrent": True}
            light = {"concurrent": True, "priority": 8}
            if m.group(1):
                heavy["max_batch_tokens"] = int(m.group(1))
            if m.group(2):
                heavy["max_sms"] = int(m.group(2))
            if m.group(3):
                light["max_sms"] = int(m.group(3))
            out[name] = {LIGHT: light, HEAVY: heavy}
        else:
            raise SystemExit(f"unknown variant {name!r}: shared, concurrent, concurrent-bN, concurrent-sN or "
                             "concurrent-sN-lM")
    return out


def concurrent_scenario(B, fathom, dirs, paths, seconds, warmup, work, result, save, variant_names, repeats=1):
    """The light model's p99 and the heavy model's throughput, for each server variant (concurrent_variants).
    With repeats > 1 the light-alone and together measurements alternate `repeats` times on the same server and
    the summary reports the median of the per-repeat p99 ratios (each repeat's figures are kept)."""
    pair = {LIGHT: dirs[LIGHT], HEAVY: dirs[HEAVY]}
    conns = {LIGHT: LIGHT_CONNS, HEAVY: SERVE[HEAVY]["conns"]}
    variants = concurrent_variants(variant_names)
    out = result["scenarios"].setdefault("concurrent", {})
    for i, (name, overrides) in enumerate(variants.items()):
        port = 18310 + i
        cfg = os.path.join(work, f"conc_{name}.toml")
        write_config(cfg, port, pair, overrides)
        try:
            srv = Server(fathom + ["--config", cfg], port, os.path.join(work, f"conc_{name}_serve.log"))
        except RuntimeError as e:
            log(f"concurrent/{name}: {e}")
            out[name] = {"config": overrides, "error": str(e)}
            save()
            continue
        try:
            load(B, port, [LIGHT, HEAVY], conns, warmup, paths, f"conc_{name}_warm", work)
            r = {"config": overrides, "repeats": []}
            r["heavy_alone"] = load(B, port, [HEAVY], conns, seconds, paths, f"conc_{name}_heavy", work)[HEAVY]
            for rep in range(repeats):
                m0 = srv.metrics()
                alone = load(B, port, [LIGHT], conns, seconds, paths, f"conc_{name}_light{rep}", work)[LIGHT]
                m1 = srv.metrics()
                both = load(B, port, [LIGHT, HEAVY], conns, seconds, paths, f"conc_{name}_both{rep}", work)
                m2 = srv.metrics()
                r["repeats"].append({"light_alone": alone, "together": both,
                                     "ratio": both[LIGHT]["latency_ms"]["p99"] / max(1e-9, alone["latency_ms"]["p99"]),
                                     "light_server_side_alone": light_breakdown(m0, m1),
                                     "light_server_side_together": light_breakdown(m1, m2)})
                log(f"concurrent/{name} repeat {rep} server-side light ms, alone / together:",
                    json.dumps(r["repeats"][-1]["light_server_side_alone"]),
                    json.dumps(r["repeats"][-1]["light_server_side_together"]))
            r["light_alone"], r["together"] = r["repeats"][-1]["light_alone"], r["repeats"][-1]["together"]
            ratios = sorted(x["ratio"] for x in r["repeats"])
            a = statistics.median(x["light_alone"]["latency_ms"]["p99"] for x in r["repeats"])
            t = statistics.median(x["together"][LIGHT]["latency_ms"]["p99"] for x in r["repeats"])
            h0 = r["heavy_alone"].get("inputs_per_s", 0)
            h1 = statistics.median(x["together"][HEAVY].get("inputs_per_s", 0) for x in r["repeats"])
            r["summary"] = {"light_p99_alone_ms": a, "light_p99_with_heavy_ms": t,
                            "ratio": statistics.median(ratios), "ratios": ratios,
                            "target": 2.0, "heavy_inputs_per_s_alone": h0, "heavy_inputs_per_s_with_light": h1,
                            "heavy_share_kept": h1 / max(1e-9, h0),
                            "light_inputs_per_s_with_heavy": statistics.median(
                                x["together"][LIGHT].get("inputs_per_s", 0) for x in r["repeats"])}
            log(f"concurrent/{name}", json.dumps(r["summary"]))
            out[name] = r
            save()
        finally:
            r_exit = srv.stop()
            out.setdefault(name, {})["server_exit"] = r_exit
            out[name]["server_log_tail"] = open(os.path.join(work, f"conc_{name}_serve.log")).read()[-2000:]
            save()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--whisper", action="store_true")
    ap.add_argument("--jfk", default=None)
    ap.add_argument("--skip-http-path", action="store_true")
    ap.add_argument("--http-sweep", action="store_true",
                    help="only the HTTP path: bge-base in-process at 4k/8k/16k-token batches, HTTP at 256/512/1024 "
                         "connections")
    ap.add_argument("--concurrent", action="store_true",
                    help="only the light/heavy pair: shared device worker against concurrent workers")
    ap.add_argument("--variants", default="shared,concurrent",
                    help="with --concurrent: comma-separated server variants (shared, concurrent, concurrent-bN, "
                         "concurrent-sN, concurrent-sN-lM)")
    ap.add_argument("--repeats", type=int, default=1,
                    help="with --concurrent: alternate light-alone and together measurements this many times per "
                         "variant; the summary gives the median ratio")
    ap.add_argument("--client-cpus", default="",
                    help="CPU list (taskset -c) for the load generators, e.g. 12-15: keeps clients off the server's "
                         "cores, as when they run on other machines")
    ap.add_argument("--server-cpus", default="", help="CPU list (taskset -c) for the fathom server")
    ap.add_argument("--smoke", action="store_true", help="CPU fixtures instead of GPU checkpoints (script check)")
    args = ap.parse_args()
    B = os.path.abspath(args.bundle)
    if args.client_cpus:
        CLIENT_PREFIX[:] = ["taskset", "-c", args.client_cpus]
    work = tempfile.mkdtemp(prefix="multi_model_")
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "command": " ".join(sys.argv),
              "seconds": args.seconds, "serve": SERVE, "scenarios": {}}
    try:
        import torch
        result["device"] = torch.cuda.get_device_name(0)
        result["torch"] = torch.__version__
    except Exception:
        pass

    def save():
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)

    t0 = time.time()
    if args.smoke:
        DEVICE.update(device="cpu", dtype="auto")
        args.skip_http_path = True
        fx = {"minilm": "bert-mean-norm", "bge-base": "bert-mean-norm", "bge-large": "roberta-cls",
              "xlmr": "xlmr-bf16-max", "whisper": "whisper-tiny-random-f32"}
        dirs = {m: os.path.join(FIX, f) for m, f in fx.items() if m != "whisper" or args.whisper}
        texts = {m: [c["text"] for c in json.load(open(os.path.join(FIX, fx[m] + ".reference.json")))["cases"]
                     if not c["truncated"]] for m in dirs if m != "whisper"}
        for m in SERVE:
            SERVE[m]["conns"] = 4
    elif args.concurrent:
        dirs = make_models(work, False, only={LIGHT, HEAVY})
        texts, bert_ids = texts_for(dirs, 3000)
    elif args.http_sweep:
        dirs = make_models(work, False, only={"bge-base"})
        texts, bert_ids = texts_for(dirs, 3000)
    else:
        dirs = make_models(work, args.whisper)
        texts, bert_ids = texts_for(dirs, 3000)
    jfk = args.jfk or os.path.join(B, "jfk.wav")
    paths = write_workloads(work, texts, args.whisper, jfk)
    result["setup_s"] = time.time() - t0
    log(f"models and workloads ready in {result['setup_s']:.1f} s")
    fathom = (["taskset", "-c", args.server_cpus] if args.server_cpus else []) + [os.path.join(B, "run"), "fathom",
                                                                                   "serve"]

    if args.concurrent:
        if args.smoke:
            dirs = {LIGHT: dirs[LIGHT], HEAVY: dirs[HEAVY]}
        concurrent_scenario(B, fathom, dirs, paths, args.seconds, args.warmup, work, result, save,
                            args.variants.split(","), args.repeats)
        result["total_s"] = time.time() - t0
        save()
        log("done in %.0f s" % result["total_s"])
        return

    if args.http_sweep:
        from bench_embed import write_ids, fathom as run_bench
        ids_path = os.path.join(work, "http_ids.bin")
        write_ids(ids_path, [s[:512] for s in bert_ids])
        sweep = result["scenarios"]["http-sweep"] = {"in_process": {}, "http": {}}
        for bt in (4096, 8192, 16384):
            sweep["in_process"][bt] = run_bench(os.path.join(B, "run") + " fathom_gpu_bench", "run", "--model",
                                                dirs["bge-base"], "--dtype", "f16", "--ids", ids_path, "--graphs", 1,
                                                "--batch-tokens", bt)[-1]
            log("in-process", bt, sweep["in_process"][bt]["texts_per_s"])
        cfg = os.path.join(work, "http.toml")
        write_config(cfg, 18300, {"bge-base": dirs["bge-base"]})
        srv = Server(fathom + ["--config", cfg], 18300, os.path.join(work, "http_serve.log"))
        try:
            for c in (256, 512, 1024):
                load(B, 18300, ["bge-base"], {"bge-base": c}, args.warmup, paths, f"sweep_warm_{c}", work)
                before = srv.metrics()
                r = load(B, 18300, ["bge-base"], {"bge-base": c}, args.seconds, paths, f"sweep_{c}", work)["bge-base"]
                after = srv.metrics()
                def bs(t):
                    return {k: float(v) for k, v in
                            re.findall(r'fathom_batch_size_(sum|count)\{model="bge-base"\} (\S+)', t)}
                b0, b1 = bs(before), bs(after)
                r["mean_batch"] = (b1["sum"] - b0["sum"]) / max(1, b1["count"] - b0["count"])
                sweep["http"][c] = r
                save()
        finally:
            srv.stop()
        result["total_s"] = time.time() - t0
        save()
        return

    # Issue 3's HTTP path: bge-base alone, 256 connections, one text per request, vs in-process.
    if not args.skip_http_path:
        from bench_embed import write_ids, fathom as run_bench
        ids_path = os.path.join(work, "http_ids.bin")
        write_ids(ids_path, [s[:512] for s in bert_ids])
        inproc = run_bench(os.path.join(B, "run") + " fathom_gpu_bench", "run", "--model", dirs["bge-base"],
                           "--dtype", "f16", "--ids", ids_path, "--graphs", 1, "--batch-tokens", 16384)[-1]
        cfg = os.path.join(work, "http.toml")
        write_config(cfg, 18300, {"bge-base": dirs["bge-base"]})
        srv = Server(fathom + ["--config", cfg], 18300, os.path.join(work, "http_serve.log"))
        try:
            load(B, 18300, ["bge-base"], {"bge-base": 256}, args.warmup, paths, "http_warm", work)
            http = load(B, 18300, ["bge-base"], {"bge-base": 256}, args.seconds, paths, "http", work)["bge-base"]
            batches = srv.metrics()
        finally:
            srv.stop()
        bs = {k: float(v) for k, v in re.findall(r'fathom_batch_size_(sum|count)\{model="bge-base"\} (\S+)', batches)}
        result["scenarios"]["http-path"] = {
            "in_process": inproc, "http": http,
            "http_over_in_process": http.get("inputs_per_s", 0) / inproc["texts_per_s"],
            "mean_batch": bs.get("sum", 0) / max(1, bs.get("count", 1))}
        log("http-path", json.dumps(result["scenarios"]["http-path"]))
        save()

    # All models in one server.
    cfg = os.path.join(work, "all.toml")
    write_config(cfg, 18301, dirs)
    models = list(dirs)
    conns = {m: SERVE[m]["conns"] for m in models}
    srv = Server(fathom + ["--config", cfg], 18301, os.path.join(work, "all_serve.log"))
    result["load_s"] = srv.load_s
    sampler = MemorySampler(srv)
    sampler.start()
    try:
        load(B, 18301, models, conns, args.warmup, paths, "warm_all", work)
        sc = result["scenarios"]
        for m in models:
            load(B, 18301, [m], conns, 1.0, paths, f"warm_{m}", work)
            sc[f"alone/{m}"] = load(B, 18301, [m], conns, args.seconds, paths, f"alone_{m}", work)[m]
            save()
        sc["together"] = load(B, 18301, models, conns, args.seconds, paths, "together", work)
        share = {m: sc["together"][m].get("inputs_per_s", 0) / max(1e-9, sc[f"alone/{m}"].get("inputs_per_s", 0))
                 for m in models}
        sc["together_efficiency"] = {"share_of_alone": share, "sum": sum(share.values()), "target": 0.9}
        save()
        light = {LIGHT: LIGHT_CONNS, HEAVY: SERVE[HEAVY]["conns"]}
        sc["light/alone"] = load(B, 18301, [LIGHT], light, args.seconds, paths, "light_alone", work)[LIGHT]
        lh = load(B, 18301, [LIGHT, HEAVY], light, args.seconds, paths, "light_heavy", work)
        sc["light/heavy"] = lh
        a, t = sc["light/alone"]["latency_ms"]["p99"], lh[LIGHT]["latency_ms"]["p99"]
        sc["light_p99_ratio"] = {"alone_ms": a, "with_heavy_ms": t, "ratio": t / max(1e-9, a), "target": 2.0}
        save()
    finally:
        sampler.stop_flag.set()
        sampler.join(timeout=5)
        result["memory"] = sampler.summary()
        result["all_server_exit"] = srv.stop()
        result["all_server_log_tail"] = open(os.path.join(work, "all_serve.log")).read()[-3000:]
        save()

    # The light model's p99 with the heavy model's batches capped small (shorter head-of-line waits).
    cfg = os.path.join(work, "small.toml")
    write_config(cfg, 18302, {LIGHT: dirs[LIGHT], HEAVY: dirs[HEAVY]}, {HEAVY: {"max_batch_tokens": 1024}})
    srv = Server(fathom + ["--config", cfg], 18302, os.path.join(work, "small_serve.log"))
    try:
        light = {LIGHT: LIGHT_CONNS, HEAVY: SERVE[HEAVY]["conns"]}
        load(B, 18302, [HEAVY], light, args.warmup, paths, "small_warm", work)
        heavy_alone = load(B, 18302, [HEAVY], light, args.seconds, paths, "small_heavy_alone", work)[HEAVY]
        lh = load(B, 18302, [LIGHT, HEAVY], light, args.seconds, paths, "small_light_heavy", work)
        a = result["scenarios"]["light/alone"]["latency_ms"]["p99"]
        result["scenarios"]["light/heavy, heavy batches 1024 tokens"] = {
            "heavy_alone": heavy_alone, "together": lh,
            "light_p99_ratio": lh[LIGHT]["latency_ms"]["p99"] / max(1e-9, a)}
    finally:
        srv.stop()
    result["total_s"] = time.time() - t0
    save()
    log("done in %.0f s" % result["total_s"])


if __name__ == "__main__":
    main()
