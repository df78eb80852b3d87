# Usage (GPU machine, repo root, FATHOM_SOURCE_DIR=. and OUT set): python3 bench/gpu/f32_bench.py "B/run fathom_gpu_bench"
# f32 throughput side by side: fathom (the Registry-loaded model, graphs on) vs transformers AutoModel f32 SDPA.
import json, os, sys, time
sys.path.insert(0, "bench/gpu")
import torch
import bench_embed as be

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
work = "/tmp/f32bench"; os.makedirs(work, exist_ok=True)
seqs = be.make_workload(20000)
ids = os.path.join(work, "ids.bin"); be.write_ids(ids, seqs)
tokens = sum(map(len, seqs))
res = dict(device=torch.cuda.get_device_name(0), torch=torch.__version__, n=len(seqs), tokens=tokens, models={})
B = sys.argv[1]
from transformers import AutoModel
for name in ["minilm", "bge-base", "bge-large"]:
    d = be.make_model(name, work)
    r = res["models"].setdefault(name, {})
    r["fathom_f32"] = be.fathom(B, "run", "--model", d, "--dtype", "float32", "--ids", ids,
                                "--batch-tokens", 16384, "--max-seqs", 512, "--graphs", 1)[-1]
    hf = AutoModel.from_pretrained(d, attn_implementation="sdpa", dtype=torch.float32).cuda().eval()
    s = be.timed(lambda: be.hf_embed(hf, seqs, dtype=torch.float32))
    r["hf_sdpa_f32"] = dict(seconds=s, texts_per_s=len(seqs) / s)
    del hf; torch.cuda.empty_cache()
    print(name, "fathom f32", round(r["fathom_f32"]["texts_per_s"]), "HF f32", round(r["hf_sdpa_f32"]["texts_per_s"]),
          flush=True)
    json.dump(res, open(os.environ["OUT"] + "/h100_f32_20k.json", "w"), indent=1)
