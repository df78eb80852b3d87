#!/usr/bin/env python3
"""Whole-forward CUDA graphs in the real model (src/models/bert) on the GPU machine.

Random-weight BERT models at the all-MiniLM-L6-v2 (6x384) and bge-base-en-v1.5 (12x768) configs (made by
bench_embed.make_model). Measures, through `fathom_gpu_bench latency` / `run` (the Registry-loaded
BertEmbedder):
  * single 16-token request latency p50/p99, f16, graphs on vs off, both configs;
  * bge-base f16 throughput over the 20k-text workload (bench_embed.make_workload), graphs on vs off;
and the HTTP path: `fathom serve --device cuda` with the bge-base model, 256 concurrent clients (16
processes x 16 threads, keep-alive http.client) each sending one text per /v1/embeddings request for
--seconds; texts are the workload's ids decoded with the model's tokenizer, and the in-process throughput
is measured on those texts re-tokenized (same ids the server sees).

usage: graphs_bench.py --bench "build/fathom_gpu_bench" --fathom "build/fathom" (command prefixes) [--out results.json]
"""
import argparse, json, multiprocessing as mp, os, subprocess, sys, tempfile, threading, time, http.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_embed import make_model, make_workload, write_ids, fathom, log  # noqa: E402


def client_proc(port, texts, seconds, threads, start_at, q):
    counts, errors = [0] * threads, [0] * threads
    lat = []

    def worker(i):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        k = i
        while time.time() < start_at:
            time.sleep(0.001)
        end = start_at + seconds
        while time.time() < end:
            body = json.dumps({"model": "bge", "input": texts[k % len(texts)]})
            k += threads * 97
            t0 = time.time()
            try:
                conn.request("POST", "/v1/embeddings", body, {"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                if r.status == 200:
                    counts[i] += 1
                    lat.append(time.time() - t0)
                else:
                    errors[i] += 1
            except Exception:
                errors[i] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in ts: t.start()
    for t in ts: t.join()
    q.put((sum(counts), sum(errors), lat))


def http_bench(fathom_bin, mdir, texts, seconds, graphs, port=18080, procs=16, threads=16):
    cmd = fathom_bin.split() + ["serve", "--model", f"bge={mdir}", "--device", "cuda", "--dtype", "float16", "--port",
           str(port), "--no-access-log", "--log-level", "warn", "--cuda-graphs", "on" if graphs else "off"]
    srv = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(600):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/v1/models")
                if c.getresponse().status == 200: break
            except Exception:
                time.sleep(0.1)
        else:
            raise RuntimeError("server did not come up")
        # Warm-up: every bucket a single text or a batch can hit.
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for n in (1, 8, 64, 256):
            c.request("POST", "/v1/embeddings", json.dumps({"model": "bge", "input": texts[:n]}),
                      {"Content-Type": "application/json"})
            c.getresponse().read()
        q = mp.Queue()
        start_at = time.time() + 2.0
        ps = [mp.Process(target=client_proc, args=(port, texts, seconds, threads, start_at, q)) for _ in range(procs)]
        for p in ps: p.start()
        res = [q.get() for _ in ps]
        for p in ps: p.join()
        ok = sum(r[0] for r in res)
        err = sum(r[1] for r in res)
        lat = sorted(x for r in res for x in r[2])
        return {"mode": "http", "graphs": graphs, "clients": procs * threads, "seconds": seconds, "ok": ok,
                "errors": err, "texts_per_s": ok / seconds,
                "latency_p50_ms": 1e3 * lat[len(lat) // 2] if lat else None,
                "latency_p99_ms": 1e3 * lat[len(lat) * 99 // 100] if lat else None}
    finally:
        srv.terminate()
        try:
            out, _ = srv.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            srv.kill()
            out, _ = srv.communicate()
        log("serve output tail:", out[-1500:] if out else "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--fathom", required=True)
    ap.add_argument("--out", default="graphs_results.json")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--iters", type=int, default=500)
    args = ap.parse_args()
    work = tempfile.mkdtemp()
    out = {"results": []}

    def rec(r, **extra):
        r.update(extra)
        log(json.dumps(r))
        out["results"].append(r)
        with open(args.out, "w") as f: json.dump(out, f, indent=1)

    try:
        import torch
        out["device"] = torch.cuda.get_device_name(0)
    except Exception:
        pass
    dirs = {m: make_model(m, work) for m in ("minilm", "bge-base")}
    for m, d in dirs.items():
        for g in (1, 0):
            rec(fathom(args.bench, "latency", "--model", d, "--dtype", "float16", "--len", 16, "--iters",
                       args.iters, "--graphs", g)[-1], model=m)
    seqs = make_workload(args.n)
    ids_path = os.path.join(work, "ids.bin")
    write_ids(ids_path, seqs)
    for g in (1, 0):
        rec(fathom(args.bench, "run", "--model", dirs["bge-base"], "--dtype", "float16", "--ids", ids_path,
                   "--graphs", g)[-1], model="bge-base", workload=f"{args.n} texts (ids)")
    # HTTP: texts decoded from the workload, in-process throughput on the same texts re-tokenized.
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(dirs["bge-base"], "tokenizer.json"))
    # The fixture tokenizer.json pads and truncates to 128; the server does neither, so neither may this.
    tok.no_padding()
    tok.no_truncation()
    texts = tok.decode_batch([s for s in seqs], skip_special_tokens=True)
    enc = [e.ids[:512] for e in tok.encode_batch(texts)]
    text_ids = os.path.join(work, "text_ids.bin")
    write_ids(text_ids, enc)
    rec(fathom(args.bench, "run", "--model", dirs["bge-base"], "--dtype", "float16", "--ids", text_ids,
               "--graphs", 1)[-1], model="bge-base", workload=f"{args.n} texts re-tokenized (HTTP texts)")
    rec(fathom(args.bench, "run", "--model", dirs["bge-base"], "--dtype", "float16", "--ids", text_ids,
               "--graphs", 1, "--batch-tokens", 4096)[-1], model="bge-base",
        workload=f"{args.n} texts re-tokenized (HTTP texts)")
    rec(http_bench(args.fathom, dirs["bge-base"], texts, args.seconds, True), model="bge-base")
    rec(http_bench(args.fathom, dirs["bge-base"], texts, args.seconds, False, port=18081), model="bge-base")


if __name__ == "__main__":
    main()
