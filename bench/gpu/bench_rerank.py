#!/usr/bin/env python3
"""Cross-encoder reranking on the GPU machine: fathom vs transformers, same weights, same token ids.

A random-weight checkpoint at the real configuration of bge-reranker-base (XLMRobertaForSequenceClassification,
12 layers, hidden 768, 12 heads, vocabulary 250002, one label scored by a sigmoid) is written with transformers;
fathom loads the same files through fathom_gpu_bench (the Registry-loaded classifier as the server runs it).

Workloads (token ids as the XLM-R pair template lays them out: <s> query </s></s> document </s>, capped at
512 tokens on the document side):
  * one rerank request: 1 query of 16 tokens x 100 documents whose lengths follow bench_embed.py's workload
    (mostly 16-128 tokens, a tail to 512); wall time of the whole request, p50 / p99 over 300 requests.
    fathom: `request-latency` (the 100 pairs batched under the 16,384-token budget, as the server batches a
    rerank). transformers: the 100 pairs in one padded batch, logits -> sigmoid -> host.
  * throughput: --pairs query-document pairs (default 20,000) of the same shape; fathom `run`, transformers in
    length-sorted batches of 128.
Baselines: AutoModelForSequenceClassification fp16 with SDPA, and the same under torch.compile(dynamic=True).
The scores of the two stacks are compared (max |sigmoid difference| over the throughput pairs).

usage: bench_rerank.py --fathom "CMD" [--pairs 20000] [--out F] [--skip compile]
"""
import argparse, json, os, shutil, sys, time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_embed import fathom, hf_batches, log, timed, write_ids  # noqa: E402

REPO = os.environ.get("FATHOM_SOURCE_DIR", os.getcwd())
TOKENIZER_DIR = os.path.join(REPO, "tests", "fixtures", "models", "xlmr-rerank-f32")
MAX_LEN = 512


def make_model(workdir):
    from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification
    d = os.path.join(workdir, "bge-reranker-base")
    if os.path.exists(d):
        shutil.rmtree(d)
    cfg = XLMRobertaConfig(vocab_size=250002, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                           intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1, pad_token_id=1,
                           bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5, num_labels=1,
                           initializer_range=0.02)
    cfg.architectures = ["XLMRobertaForSequenceClassification"]
    torch.manual_seed(0)
    XLMRobertaForSequenceClassification(cfg).to(torch.float16).eval().save_pretrained(d)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(TOKENIZER_DIR, f), os.path.join(d, f))
    tc = json.load(open(os.path.join(d, "tokenizer_config.json")))
    tc["model_max_length"] = MAX_LEN
    json.dump(tc, open(os.path.join(d, "tokenizer_config.json"), "w"))
    return d


def doc_lengths(n, rng):
    lens = np.clip(rng.lognormal(mean=np.log(48), sigma=0.55, size=n), 16, 128).astype(int)
    tail = rng.random(n) < 0.06
    lens[tail] = rng.integers(129, 513, size=int(tail.sum()))
    return lens


def make_pairs(n, seed, query_len=16):
    """n pairs: one fresh query per 100 documents, ids in 5..2999 (valid in the fixture vocabulary)."""
    rng = np.random.default_rng(seed)
    pairs, query = [], None
    for i, L in enumerate(doc_lengths(n, rng)):
        if i % 100 == 0:
            query = rng.integers(5, 3000, size=query_len - 2).tolist()
        room = MAX_LEN - len(query) - 4
        doc = rng.integers(5, 3000, size=int(min(L, room))).tolist()
        pairs.append([0] + query + [2, 2] + doc + [2])
    return pairs


def padded(seqs):
    L = max(map(len, seqs))
    ids = torch.ones(len(seqs), L, dtype=torch.long)  # pad id 1, so XLM-R's position ids stay right
    mask = torch.zeros(len(seqs), L, dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, :len(s)] = torch.tensor(s)
        mask[r, :len(s)] = 1
    return ids, mask


@torch.inference_mode()
def hf_request_latency(model, pairs, iters=300):
    ids, mask = padded(pairs)
    ms = []
    for i in range(iters + 20):
        t0 = time.perf_counter()
        logits = model(input_ids=ids.cuda(non_blocking=True), attention_mask=mask.cuda(non_blocking=True)).logits
        torch.sigmoid(logits.float()).cpu()
        ms.append((time.perf_counter() - t0) * 1e3)
    ms = sorted(ms[20:])
    return dict(p50_ms=ms[len(ms) // 2], p99_ms=ms[int(0.99 * len(ms))], min_ms=ms[0])


@torch.inference_mode()
def hf_scores(model, pairs, bs=128):
    out = torch.empty(len(pairs), dtype=torch.float32)
    for idx, _, _ in hf_batches(pairs, bs):
        ids, mask = padded([pairs[i] for i in idx])
        logits = model(input_ids=ids.cuda(non_blocking=True), attention_mask=mask.cuda(non_blocking=True)).logits
        out[idx] = torch.sigmoid(logits.float()[:, 0]).cpu()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fathom", required=True)
    ap.add_argument("--pairs", type=int, default=20000)
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--workdir", default="/tmp/fathom-bench-rerank")
    ap.add_argument("--out", default="bench_rerank.json")
    ap.add_argument("--skip", default="", help="comma list of: compile")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    os.makedirs(args.workdir, exist_ok=True)
    mdir = make_model(args.workdir)
    request = make_pairs(100, seed=1)
    work = make_pairs(args.pairs, seed=2)
    req_path, work_path = os.path.join(args.workdir, "request.bin"), os.path.join(args.workdir, "pairs.bin")
    write_ids(req_path, request)
    write_ids(work_path, work)
    res = dict(device=torch.cuda.get_device_name(0), torch=torch.__version__, model="bge-reranker-base config",
               request=dict(documents=len(request), tokens=sum(map(len, request)), max_len=max(map(len, request))),
               throughput=dict(pairs=len(work), tokens=sum(map(len, work))), runs={})
    log("request:", res["request"], "workload:", res["throughput"])

    def save():
        json.dump(res, open(args.out, "w"), indent=1)

    runs = res["runs"]
    for graphs in (1, 0):
        key = f"fathom_float16_graphs{graphs}"
        try:
            runs[key] = dict(request=fathom(args.fathom, "request-latency", "--model", mdir, "--dtype", "float16",
                                            "--ids", req_path, "--iters", args.iters, "--graphs", graphs)[-1])
            if graphs:
                runs[key]["throughput"] = fathom(args.fathom, "run", "--model", mdir, "--dtype", "float16", "--ids",
                                                 work_path, "--batch-tokens", 16384, "--max-seqs", 512, "--graphs", 1,
                                                 "--out", os.path.join(args.workdir, "fathom.logits"))[-1]
        except Exception as e:
            runs[key] = dict(error=str(e)[-1500:])
        log(key, runs[key])
        save()

    from transformers import AutoModelForSequenceClassification
    model = AutoModelForSequenceClassification.from_pretrained(mdir, dtype=torch.float16,
                                                               attn_implementation="sdpa").cuda().eval()
    variants = [("hf_sdpa_fp16", model)]
    if "compile" not in skip:
        variants.append(("hf_compile_fp16", torch.compile(model, dynamic=True)))
    ref = None
    for key, m in variants:
        try:
            r = dict(request=hf_request_latency(m, request, args.iters))
            s = timed(lambda: hf_scores(m, work), repeat=3)
            r["throughput"] = dict(seconds_median=s, pairs_per_s=len(work) / s)
            if ref is None:
                ref = hf_scores(m, work)
        except Exception as e:
            r = dict(error=str(e)[-1500:])
        runs[key] = r
        log(key, r)
        save()

    f = runs.get("fathom_float16_graphs1", {})
    if ref is not None and os.path.exists(os.path.join(args.workdir, "fathom.logits")):
        logits = np.fromfile(os.path.join(args.workdir, "fathom.logits"), dtype=np.float32)
        mine = 1 / (1 + np.exp(-logits.astype(np.float64)))
        res["max_abs_score_diff_vs_hf_fp16"] = float(np.abs(mine - ref.numpy()).max())
    hf = [v for k, v in runs.items() if k.startswith("hf_") and "request" in v]
    if "request" in f and hf:
        best = min(v["request"]["p50_ms"] for v in hf)
        res["request_p50_ms_fathom"] = f["request"]["p50_ms"]
        res["request_p50_speedup_vs_best_pytorch"] = best / f["request"]["p50_ms"]
    if "throughput" in f and hf:
        best = max(v["throughput"]["pairs_per_s"] for v in hf if "throughput" in v)
        res["throughput_vs_best_pytorch"] = f["throughput"]["texts_per_s"] / best
    save()
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
