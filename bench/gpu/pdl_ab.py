#!/usr/bin/env python3
"""Single short requests with and without programmatic dependent launch (PDL).

Random-weight BERT models at the all-MiniLM-L6-v2 (6x384) and bge-base-en-v1.5 (12x768) configurations
(bench_embed.make_model). For each, `fathom_gpu_bench latency --len 16` (f16, 1,000 iterations) with CUDA
graphs on and off, under two settings, alternating over --rounds rounds so that drift hits both alike:
  no-pdl  FATHOM_CUDA_PDL=0 (every kernel waits for the previous one to finish before it is scheduled)
  pdl     FATHOM_CUDA_PDL=1, the default (LayerNorm and attention kernels are scheduled while the kernel
          before them finishes, and wait for its results in-kernel)
Reports each p50/p99 and the medians over rounds, plus the graphs-on/graphs-off speed-up per setting.

usage: pdl_ab.py --bench "B/run fathom_gpu_bench" --out results.json [--rounds 3] [--models minilm,bge-base]
"""
import argparse, json, os, statistics, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_embed import make_model, fathom, log  # noqa: E402

SETTINGS = {
    "no-pdl": {"FATHOM_CUDA_PDL": "0"},
    "pdl": {"FATHOM_CUDA_PDL": "1"},
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=1000)
    ap.add_argument("--models", default="minilm,bge-base")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="pdl_ab_")
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "command": " ".join(sys.argv),
              "runs": [], "summary": {}}
    try:
        import torch
        result["device"] = torch.cuda.get_device_name(0)
    except Exception:
        pass
    for name in args.models.split(","):
        mdir = make_model(name, work)
        for rnd in range(args.rounds):
            for setting, env in SETTINGS.items():
                os.environ.update(env)
                for graphs in (1, 0):
                    r = fathom(args.bench, "latency", "--model", mdir, "--dtype", "float16", "--len", 16, "--iters",
                               args.iters, "--graphs", graphs)[-1]
                    run = {"model": name, "round": rnd, "setting": setting, "graphs": graphs,
                           "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"]}
                    result["runs"].append(run)
                    log(json.dumps(run))
        for setting in SETTINGS:
            def med(graphs, key):
                return statistics.median(x[key] for x in result["runs"]
                                         if x["model"] == name and x["setting"] == setting and x["graphs"] == graphs)
            pairs = [(x, y) for x in result["runs"] for y in result["runs"]
                     if x["model"] == y["model"] == name and x["setting"] == y["setting"] == setting
                     and x["round"] == y["round"] and x["graphs"] == 1 and y["graphs"] == 0]
            result["summary"][f"{name}/{setting}"] = {
                "graphs_p50_ms": med(1, "p50_ms"), "graphs_p99_ms": med(1, "p99_ms"),
                "eager_p50_ms": med(0, "p50_ms"), "eager_p99_ms": med(0, "p99_ms"),
                "speedup_per_round": [y["p50_ms"] / x["p50_ms"] for x, y in pairs]}
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    log(json.dumps(result["summary"], indent=1))


if __name__ == "__main__":
    main()
