#!/usr/bin/env python3
"""Where does fathom's f32 error against an fp64 reference come from? Random-weight BERT models at the
MiniLM configuration and variants of it (head size 64 instead of 32, one layer), and bge-base for scale:
max and mean |pooled - fp64| over 256 texts for fathom f32 on CUDA (graphs on and off) and on the CPU
(MiniLM variants only), and for PyTorch f32 (SDPA and eager attention). Same texts, same weights, TF32 off.

usage (GPU machine, repo root, bundle B with fathom_gpu_bench):
  python3 bench/gpu/f32_error_probe.py "B/run fathom_gpu_bench" OUT.json
"""
import json, os, sys, tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__))))
import bench_embed as be  # noqa: E402

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False

VARIANTS = {
    "minilm": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536),
    "minilm-hd64": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=6, intermediate_size=1536),
    "minilm-1layer": dict(hidden_size=384, num_hidden_layers=1, num_attention_heads=12, intermediate_size=1536),
    "bge-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
}


def errors(x, ref):
    d = np.abs(x - ref)
    return dict(max=float(d.max()), mean=float(d.mean()))


def main():
    cmd, out_path = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="f32probe_")
    seqs = be.make_workload(256, seed=1)
    ids = os.path.join(work, "ids.bin")
    be.write_ids(ids, seqs)
    from transformers import AutoModel
    res = dict(device=torch.cuda.get_device_name(0), torch=torch.__version__, texts=len(seqs), models={})
    for name, cfg in VARIANTS.items():
        be.CONFIGS[name] = cfg
        d = be.make_model(name, work)
        r = res["models"].setdefault(name, {"config": cfg})
        ref_m = AutoModel.from_pretrained(d, attn_implementation="eager", dtype=torch.float64).cuda().eval()
        ref = be.hf_embed(ref_m, seqs, bs=32, dtype=torch.float64).numpy()
        del ref_m
        r["ref_max_abs"] = float(np.abs(ref).max())
        for attn in ["sdpa", "eager"]:
            m = AutoModel.from_pretrained(d, attn_implementation=attn, dtype=torch.float32).cuda().eval()
            r[f"torch_f32_{attn}"] = errors(be.hf_embed(m, seqs, bs=32, dtype=torch.float32).numpy(), ref)
            del m
        runs = [("fathom_cuda_graphs", ["--graphs", 1]), ("fathom_cuda_eager", ["--graphs", 0])]
        if cfg["hidden_size"] <= 384:  # the CPU path only where it takes seconds
            runs.append(("fathom_cpu", ["--device", "cpu", "--graphs", 0]))
        for label, extra in runs:
            out = os.path.join(work, f"{name}.{label}.emb")
            try:
                be.fathom(cmd, "run", "--model", d, "--dtype", "float32", "--ids", ids, "--out", out,
                          "--batch-tokens", 16384, "--max-seqs", 512, "--repeat", 1, *extra)
                r[label] = errors(np.fromfile(out, dtype=np.float32).reshape(len(seqs), -1), ref)
            except Exception as e:  # noqa: BLE001 - record and go on
                r[label] = dict(error=str(e)[-500:])
        print(name, json.dumps({k: v for k, v in r.items() if k != "config"}), flush=True)
        torch.cuda.empty_cache()
        with open(out_path, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
