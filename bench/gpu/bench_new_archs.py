#!/usr/bin/env python3
"""Embedding throughput of the newer architectures on the GPU machine: fathom vs transformers, same weights.

Random-weight checkpoints at the real configurations of Qwen3-Embedding-0.6B (28 layers, hidden 1024, 16/8
heads of 128, last-token pooling) and ModernBERT-base (22 layers, hidden 768, alternating global/local
attention, mean pooling) are written with transformers; fathom loads the same files through
fathom_gpu_bench (the Registry-loaded model as the server runs it). Workload: bench_embed.py's (N texts,
lengths mostly 16-128 with a tail to 512, the same token ids for every runner). Baselines: transformers
AutoModel fp16 with SDPA (batches of 128 texts sorted by length, padded; ModernBERT unpads internally when
given the attention mask), and the same under torch.compile(dynamic=True). Medians of 3 timed passes after
a warm-up.

usage: bench_new_archs.py --fathom "CMD" [--models qwen3-embed-0.6b,modernbert-base] [--n 8000] [--out F]
"""
import argparse, json, os, sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_embed import fathom, hf_batches, log, make_workload, mean_pool, timed, write_ids  # noqa: E402

REPO = os.environ.get("FATHOM_SOURCE_DIR", os.getcwd())


def write_st(d, dim, pooling):
    def dump(path, obj):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        json.dump(obj, open(path, "w"))
    dump(os.path.join(d, "modules.json"), [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])
    dump(os.path.join(d, "2_Normalize", "config.json"), {})
    dump(os.path.join(d, "1_Pooling", "config.json"), {"word_embedding_dimension": dim, "pooling_mode": pooling})
    dump(os.path.join(d, "sentence_bert_config.json"), {"max_seq_length": 512})


def make_model(name, workdir):
    import shutil
    d = os.path.join(workdir, name)
    if os.path.exists(d):
        shutil.rmtree(d)
    torch.manual_seed(0)
    if name == "qwen3-embed-0.6b":
        from transformers import Qwen3Config, Qwen3Model
        cfg = Qwen3Config(vocab_size=151669, hidden_size=1024, num_hidden_layers=28, num_attention_heads=16,
                          num_key_value_heads=8, head_dim=128, intermediate_size=3072, max_position_embeddings=32768,
                          rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, initializer_range=0.02)
        cfg.architectures = ["Qwen3ForCausalLM"]
        Qwen3Model(cfg).to(torch.float16).save_pretrained(d)
        tok_src, pooling = "qwen3-embed-f32", "lasttoken"
    elif name == "modernbert-base":
        from transformers import ModernBertConfig, ModernBertModel
        cfg = ModernBertConfig(vocab_size=50368, hidden_size=768, num_hidden_layers=22, num_attention_heads=12,
                               intermediate_size=1152, max_position_embeddings=8192, local_attention=128,
                               pad_token_id=50283, initializer_range=0.02)
        cfg.architectures = ["ModernBertModel"]
        ModernBertModel(cfg).to(torch.float16).save_pretrained(d)
        tok_src, pooling = "modernbert-mean", "mean"
    else:
        raise ValueError(name)
    src = os.path.join(REPO, "tests", "fixtures", "models", tok_src)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(src, f), os.path.join(d, f))
    tc = json.load(open(os.path.join(d, "tokenizer_config.json")))
    tc["model_max_length"] = 512
    json.dump(tc, open(os.path.join(d, "tokenizer_config.json"), "w"))
    write_st(d, cfg.hidden_size, pooling)
    return d, pooling


@torch.inference_mode()
def hf_embed(model, seqs, pooling, bs=128):
    out = torch.empty(len(seqs), model.config.hidden_size, dtype=torch.float32)
    for idx, ids, mask in hf_batches(seqs, bs):
        ids, mask = ids.cuda(non_blocking=True), mask.cuda(non_blocking=True)
        h = model(input_ids=ids, attention_mask=mask).last_hidden_state
        if pooling == "lasttoken":  # right padding: the last real position of each row
            last = mask.sum(1) - 1
            e = h[torch.arange(h.shape[0], device=h.device), last].float()
        else:
            e = mean_pool(h.float(), mask)
        out[idx] = torch.nn.functional.normalize(e, dim=-1).cpu()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fathom", required=True)
    ap.add_argument("--models", default="qwen3-embed-0.6b,modernbert-base")
    ap.add_argument("--n", type=int, default=8000)
    ap.add_argument("--workdir", default="/tmp/fathom-bench-new")
    ap.add_argument("--out", default="bench_new_archs.json")
    ap.add_argument("--skip", default="", help="comma list of: compile")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    os.makedirs(args.workdir, exist_ok=True)
    seqs = [[min(x, 2999) for x in s] for s in make_workload(args.n)]  # ids valid in every tokenizer used
    ids_path = os.path.join(args.workdir, "ids.bin")
    write_ids(ids_path, seqs)
    tokens = sum(map(len, seqs))
    res = dict(device=torch.cuda.get_device_name(0), torch=torch.__version__, n=args.n, tokens=tokens, models={})
    log(f"workload: {len(seqs)} texts, {tokens} tokens")

    def save():
        json.dump(res, open(args.out, "w"), indent=1)

    for name in args.models.split(","):
        r = res["models"].setdefault(name, {})
        mdir, pooling = make_model(name, args.workdir)
        try:
            r["fathom_float16"] = fathom(args.fathom, "run", "--model", mdir, "--dtype", "float16", "--ids", ids_path,
                                         "--batch-tokens", 16384, "--max-seqs", 512, "--graphs", 1,
                                         "--out", os.path.join(args.workdir, name + ".emb"))[-1]
        except Exception as e:
            r["fathom_float16"] = dict(error=str(e)[-1500:])
        log(name, "fathom", r["fathom_float16"])
        save()
        from transformers import AutoModel
        model = AutoModel.from_pretrained(mdir, dtype=torch.float16, attn_implementation="sdpa").cuda().eval()
        s = timed(lambda: hf_embed(model, seqs, pooling), repeat=3)
        r["hf_sdpa_fp16"] = dict(seconds_median=s, texts_per_s=len(seqs) / s, tokens_per_s=tokens / s)
        log(name, "hf", r["hf_sdpa_fp16"])
        save()
        if "compile" not in skip:
            try:
                cm = torch.compile(model, dynamic=True)
                s = timed(lambda: hf_embed(cm, seqs, pooling), repeat=3)
                r["hf_compile_fp16"] = dict(seconds_median=s, texts_per_s=len(seqs) / s, tokens_per_s=tokens / s)
            except Exception as e:
                r["hf_compile_fp16"] = dict(error=str(e)[-1500:])
            log(name, "compile", r["hf_compile_fp16"])
            save()
        f = r["fathom_float16"].get("texts_per_s")
        best = max(v.get("texts_per_s", 0) for k, v in r.items() if k.startswith("hf_"))
        if f and best:
            r["fathom_vs_best_pytorch"] = f / best
        del model
        torch.cuda.empty_cache()
        save()
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
