#!/usr/bin/env python3
"""Embedding benchmark on the GPU machine: fathom (CUDA backend) vs PyTorch stacks, same weights, same inputs.

Random-weight BERT models at the real configs of all-MiniLM-L6-v2 (6x384), bge-base-en-v1.5 (12x768) and
bge-large-en-v1.5 (24x1024) are created with transformers (seeded, initializer_range 0.02) and saved as
safetensors; fathom loads the same files. Workloads:
  * throughput over N texts, lengths mostly 16-128 tokens with a tail to 512 (same token ids for all),
  * single 16-token request latency p50/p99 (fathom with and without CUDA graphs, PyTorch eager),
  * f32 accuracy: max |error| of pooled embeddings vs an fp64 PyTorch reference, fathom f32 vs PyTorch f32.
Competitors: (a) sentence-transformers fp16 (tokenizes the decoded texts itself), (b) transformers
AutoModel fp16 with SDPA, (c) the same under torch.compile(dynamic=True).
fathom is timed through fathom_gpu_bench, i.e. the Registry-loaded model (src/models) as the server runs
it, with CUDA graphs captured for every token bucket at load (load_ms). `profile` adds a per-stage GPU
time breakdown of fathom's eager f16 forward (cudaEvent marks between the ops, FATHOM_PROFILE_OPS=1).

usage: bench_embed.py --fathom "CMD" [--models minilm,bge-base,bge-large] [--n 20000] [--out results.json]
"""
import argparse, json, os, re, shutil, struct, subprocess, sys, time

import numpy as np
import torch

CONFIGS = {
    "minilm": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536),
    "bge-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "bge-large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
}
# Tokenizer files (bert-base-uncased vocabulary) from the committed fixtures; FATHOM_SOURCE_DIR or cwd = repo root.
REPO = os.environ.get("FATHOM_SOURCE_DIR", os.getcwd())
TOKENIZER_DIR = os.path.join(REPO, "tests", "fixtures", "models", "bert-mean-norm")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def make_model(name, workdir):
    from transformers import BertConfig, BertModel
    d = os.path.join(workdir, name)
    cfg = BertConfig(vocab_size=30522, max_position_embeddings=512, type_vocab_size=2, hidden_act="gelu",
                     layer_norm_eps=1e-12, initializer_range=0.02, **CONFIGS[name])
    torch.manual_seed(0)
    m = BertModel(cfg, add_pooling_layer=False).eval()
    m.save_pretrained(d, safe_serialization=True)
    shutil.copy(os.path.join(TOKENIZER_DIR, "tokenizer.json"), d)
    with open(os.path.join(TOKENIZER_DIR, "tokenizer_config.json")) as f:
        tc = json.load(f)
    tc["model_max_length"] = 512  # the fixture's tokenizer config caps at 64
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(tc, f)
    return d


def make_workload(n, seed=0):
    rng = np.random.default_rng(seed)
    lens = np.clip(rng.lognormal(mean=np.log(48), sigma=0.55, size=n), 16, 128).astype(int)
    tail = rng.random(n) < 0.06
    lens[tail] = rng.integers(129, 513, size=int(tail.sum()))
    seqs = []
    for L in lens:
        ids = rng.integers(1996, 29000, size=int(L)).tolist()
        ids[0], ids[-1] = 101, 102
        seqs.append(ids)
    return seqs


def write_ids(path, seqs):
    with open(path, "wb") as f:
        f.write(struct.pack("<i", len(seqs)))
        for s in seqs:
            f.write(struct.pack("<i", len(s)))
            f.write(np.asarray(s, dtype="<i4").tobytes())


def fathom(cmd, *args, stderr=None):
    full = cmd.split() + [str(a) for a in args]
    p = subprocess.run(full, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(full)} failed: {p.stderr[-2000:]}")
    if stderr is not None:
        stderr.append(p.stderr)
    return [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]


def fathom_profile(cmd, mdir, ids_path, dtype="float16", max_seqs=512):
    """Per-stage GPU time of fathom's eager forward over the workload (both passes, warm-up included), in
    batches of up to 16,384 tokens and `max_seqs` sequences."""
    err = []
    run = fathom(cmd, "profile", "--model", mdir, "--dtype", dtype, "--ids", ids_path, "--graphs", 0,
                 "--batch-tokens", 16384, "--max-seqs", max_seqs, stderr=err)[-1]
    stages = {}
    for line in err[0].splitlines():
        m = re.search(r"profile \S+ (\S+): ([0-9.e+-]+) ms over (\d+) calls \(([0-9.e+-]+) %\)", line)
        if m:
            stages[m.group(1)] = dict(ms=float(m.group(2)), calls=int(m.group(3)), percent=float(m.group(4)))
    return dict(run=run, stages=stages)


def mean_pool(h, mask):
    m = mask.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(1) / m.sum(1)


def hf_batches(seqs, bs, multiple=1):
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    for b in range(0, len(order), bs):
        idx = order[b:b + bs]
        L = max(len(seqs[i]) for i in idx)
        L = (L + multiple - 1) // multiple * multiple
        ids = torch.zeros(len(idx), L, dtype=torch.long)
        mask = torch.zeros(len(idx), L, dtype=torch.long)
        for r, i in enumerate(idx):
            ids[r, :len(seqs[i])] = torch.tensor(seqs[i])
            mask[r, :len(seqs[i])] = 1
        yield idx, ids, mask


@torch.inference_mode()
def hf_embed(model, seqs, bs=128, multiple=1, dtype=torch.float16):
    out = torch.empty(len(seqs), model.config.hidden_size, dtype=torch.float64)
    for idx, ids, mask in hf_batches(seqs, bs, multiple):
        ids, mask = ids.cuda(non_blocking=True), mask.cuda(non_blocking=True)
        h = model(input_ids=ids, attention_mask=mask).last_hidden_state
        out[idx] = mean_pool(h.float() if dtype != torch.float64 else h, mask).double().cpu()
    return out


def timed(fn, repeat=2):
    fn()  # warm-up
    torch.cuda.synchronize()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    return sorted(ts)[len(ts) // 2]


@torch.inference_mode()
def hf_latency(model, iters=300, L=16):
    rng = np.random.default_rng(1)
    ms = []
    for i in range(iters + 20):
        ids = torch.tensor([[101] + rng.integers(1996, 29000, size=L - 2).tolist() + [102]]).cuda()
        mask = torch.ones_like(ids)
        t0 = time.perf_counter()
        h = model(input_ids=ids, attention_mask=mask).last_hidden_state
        e = torch.nn.functional.normalize(mean_pool(h.float(), mask), dim=-1).cpu()
        ms.append((time.perf_counter() - t0) * 1e3)
    ms = sorted(ms[20:])
    return dict(p50_ms=ms[len(ms) // 2], p99_ms=ms[int(0.99 * len(ms))])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fathom", required=True, help="command prefix running fathom_gpu_bench")
    ap.add_argument("--models", default="minilm,bge-base,bge-large")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--acc-n", type=int, default=256)
    ap.add_argument("--workdir", default="/tmp/fathom-bench")
    ap.add_argument("--out", default="bench_results.json")
    ap.add_argument("--skip", default="", help="comma list of: st,hf,compile,latency,acc,profile")
    ap.add_argument("--dtypes", default="float16,float32", help="fathom throughput dtypes")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    os.makedirs(args.workdir, exist_ok=True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    results = dict(device=torch.cuda.get_device_name(0), torch=torch.__version__, n=args.n, models={})
    seqs = make_workload(args.n)
    ids_path = os.path.join(args.workdir, "ids.bin")
    write_ids(ids_path, seqs)
    acc_seqs = seqs[:args.acc_n]
    acc_path = os.path.join(args.workdir, "acc_ids.bin")
    write_ids(acc_path, acc_seqs)
    tokens = sum(len(s) for s in seqs)
    results["tokens"] = tokens
    results["mean_len"] = tokens / len(seqs)
    log(f"workload: {len(seqs)} texts, {tokens} tokens, mean {tokens/len(seqs):.1f}, max {max(map(len, seqs))}")

    def save():
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)

    for name in args.models.split(","):
        r = results["models"].setdefault(name, {})
        mdir = make_model(name, args.workdir)
        log(f"== {name}")
        # fathom throughput (f16, f32) and latency
        for dt in args.dtypes.split(","):
            try:
                out = os.path.join(args.workdir, f"{name}.{dt}.emb")
                r[f"fathom_{dt}"] = fathom(args.fathom, "run", "--model", mdir, "--dtype", dt, "--ids", ids_path,
                                           "--batch-tokens", 16384, "--max-seqs", 512, "--graphs", 1, "--out", out)[-1]
                log(name, dt, r[f"fathom_{dt}"])
            except Exception as e:
                r[f"fathom_{dt}"] = dict(error=str(e)); log(e)
            save()
        if "latency" not in skip:
            for g in (1, 0):
                try:
                    r[f"fathom_latency_graphs{g}"] = fathom(args.fathom, "latency", "--model", mdir, "--dtype",
                                                            "float16", "--len", 16, "--iters", 300, "--graphs", g,
                                                            "--batch-tokens", 16384)[-1]
                    log(name, "latency", g, r[f"fathom_latency_graphs{g}"])
                except Exception as e:
                    r[f"fathom_latency_graphs{g}"] = dict(error=str(e)); log(e)
            save()

        if "profile" not in skip:
            try:
                r["fathom_profile_f16_eager"] = fathom_profile(args.fathom, mdir, ids_path)
                log(name, "profile", json.dumps(r["fathom_profile_f16_eager"]["stages"]))
            except Exception as e:
                r["fathom_profile_f16_eager"] = dict(error=str(e)); log(e)
            save()

        from transformers import AutoModel
        hf = AutoModel.from_pretrained(mdir, attn_implementation="sdpa", torch_dtype=torch.float16).cuda().eval()
        if "hf" not in skip:
            s = timed(lambda: hf_embed(hf, seqs))
            r["hf_sdpa_fp16"] = dict(seconds=s, texts_per_s=len(seqs) / s, tokens_per_s=tokens / s)
            log(name, "hf", r["hf_sdpa_fp16"])
            if "latency" not in skip:
                r["hf_sdpa_fp16_latency"] = hf_latency(hf)
                log(name, "hf latency", r["hf_sdpa_fp16_latency"])
            save()
        # fathom f16 vs the PyTorch fp16 result on the same inputs (sanity: same function)
        try:
            fe = np.fromfile(os.path.join(args.workdir, f"{name}.float16.emb"), dtype=np.float32).reshape(len(seqs), -1)
            pe = hf_embed(hf, seqs[:2000]).numpy()
            cos = (fe[:2000] * pe).sum(1) / np.linalg.norm(fe[:2000], axis=1) / np.linalg.norm(pe, axis=1)
            r["fathom_f16_vs_torch_f16_min_cosine"] = float(cos.min())
        except Exception as e:
            log("compare failed", e)
        if "compile" not in skip:
            try:
                comp = torch.compile(hf, dynamic=True)
                t0 = time.perf_counter()
                hf_embed(comp, seqs[:4000], multiple=64)
                warm = time.perf_counter() - t0
                s = timed(lambda: hf_embed(comp, seqs, multiple=64), repeat=1)
                r["hf_sdpa_fp16_compile"] = dict(seconds=s, texts_per_s=len(seqs) / s, tokens_per_s=tokens / s,
                                                 compile_warmup_s=warm)
                log(name, "compile", r["hf_sdpa_fp16_compile"])
            except Exception as e:
                r["hf_sdpa_fp16_compile"] = dict(error=str(e)[-500:]); log(e)
            save()
        del hf
        if "st" not in skip:
            try:
                from sentence_transformers import SentenceTransformer, models as stm
                from transformers import AutoTokenizer
                tok = AutoTokenizer.from_pretrained(mdir)
                texts = [tok.decode(s[1:-1]) for s in seqs]
                tr = stm.Transformer(mdir, max_seq_length=512, model_args=dict(attn_implementation="sdpa"))
                st = SentenceTransformer(modules=[tr, stm.Pooling(CONFIGS[name]["hidden_size"], "mean")],
                                         device="cuda").half()
                s = timed(lambda: st.encode(texts, batch_size=128, convert_to_numpy=True), repeat=1)
                r["st_fp16"] = dict(seconds=s, texts_per_s=len(seqs) / s, tokens_per_s=tokens / s,
                                    note="includes tokenization of decoded texts")
                log(name, "st", r["st_fp16"])
                del st
            except Exception as e:
                r["st_fp16"] = dict(error=str(e)[-500:]); log(e)
            save()
        if "acc" not in skip:
            try:
                ref_m = AutoModel.from_pretrained(mdir, attn_implementation="eager", torch_dtype=torch.float64).cuda().eval()
                ref = hf_embed(ref_m, acc_seqs, bs=32, dtype=torch.float64).numpy()
                del ref_m
                f32m = AutoModel.from_pretrained(mdir, attn_implementation="sdpa", torch_dtype=torch.float32).cuda().eval()
                pt32 = hf_embed(f32m, acc_seqs, bs=32, dtype=torch.float32).numpy()
                del f32m
                out = os.path.join(args.workdir, f"{name}.acc.f32.emb")
                fathom(args.fathom, "run", "--model", mdir, "--dtype", "float32", "--ids", acc_path, "--out", out,
                       "--batch-tokens", 16384, "--max-seqs", 512, "--graphs", 1, "--repeat", 1)
                f32 = np.fromfile(out, dtype=np.float32).reshape(len(acc_seqs), -1)
                out16 = os.path.join(args.workdir, f"{name}.acc.f16.emb")
                fathom(args.fathom, "run", "--model", mdir, "--dtype", "float16", "--ids", acc_path, "--out", out16,
                       "--batch-tokens", 16384, "--max-seqs", 512, "--graphs", 1, "--repeat", 1)
                f16 = np.fromfile(out16, dtype=np.float32).reshape(len(acc_seqs), -1)
                cos16 = (f16 * ref).sum(1) / np.linalg.norm(f16, axis=1) / np.linalg.norm(ref, axis=1)
                r["f32_accuracy"] = dict(texts=len(acc_seqs), ref_max_abs=float(np.abs(ref).max()),
                                         fathom_f32_max_abs_err=float(np.abs(f32 - ref).max()),
                                         torch_f32_max_abs_err=float(np.abs(pt32 - ref).max()),
                                         fathom_f16_min_cosine_vs_fp64=float(cos16.min()))
                log(name, "acc", r["f32_accuracy"])
            except Exception as e:
                r["f32_accuracy"] = dict(error=str(e)[-500:]); log(e)
            save()
        torch.cuda.empty_cache()
    save()
    # Summary table
    print(f"device: {results['device']}  texts: {args.n}  tokens: {tokens}")
    print(f"{'model':10} {'fathom16':>9} {'fathom32':>9} {'hf16':>9} {'compile':>9} {'st16':>9}  (texts/s)")
    for name, r in results["models"].items():
        g = lambda k: r.get(k, {}).get("texts_per_s", float("nan"))
        print(f"{name:10} {g('fathom_float16'):9.0f} {g('fathom_float32'):9.0f} {g('hf_sdpa_fp16'):9.0f} "
              f"{g('hf_sdpa_fp16_compile'):9.0f} {g('st_fp16'):9.0f}")
    for name, r in results["models"].items():
        l1, l0, lh = (r.get(k, {}) for k in ("fathom_latency_graphs1", "fathom_latency_graphs0", "hf_sdpa_fp16_latency"))
        print(f"{name:10} latency16 p50/p99 ms: fathom graphs {l1.get('p50_ms', 0):.3f}/{l1.get('p99_ms', 0):.3f}"
              f"  fathom eager {l0.get('p50_ms', 0):.3f}/{l0.get('p99_ms', 0):.3f}"
              f"  torch eager {lh.get('p50_ms', 0):.3f}/{lh.get('p99_ms', 0):.3f}")
        a = r.get("f32_accuracy", {})
        print(f"{name:10} f32 max|err| vs fp64: fathom {a.get('fathom_f32_max_abs_err', float('nan')):.2e}"
              f"  torch {a.get('torch_f32_max_abs_err', float('nan')):.2e};  fathom f16 min cos "
              f"{a.get('fathom_f16_min_cosine_vs_fp64', float('nan')):.6f};"
              f"  fathom16 vs torch16 min cos {r.get('fathom_f16_vs_torch_f16_min_cosine', float('nan')):.6f}")


if __name__ == "__main__":
    main()
