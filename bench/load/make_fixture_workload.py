#!/usr/bin/env python3
"""Writes bench/load/workloads/fixtures_{mixed,1000}.json: fathom_load workloads over the committed fixtures with
their reference answers (no ML stack needed; only the fixtures' reference JSON and tokenizer.json are read).

Embeddings: bert-mean-norm, roberta-cls, xlmr-bf16-max, each with single-string requests (one entry per
reference case that is not truncated) and one 9-input batch, expected = transformers' embeddings.
Transcriptions: whisper-tiny-random-f32 on shared/assets/whisper/jfk.wav (language en, 24 tokens), expected =
the transformers generate() tokens of the reference, decoded with the byte-level BPE vocabulary.
Model names in the workload are the fixture folder names; serve the fixtures under those names.
"""
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIX = ROOT / "tests/fixtures/models"
OUT_DIR = ROOT / "bench/load/workloads"


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def whisper_text(model):
    ref = json.loads((FIX / f"{model}.reference.json").read_text())
    tok = json.loads((FIX / model / "tokenizer.json").read_text())
    inv = {i: t for t, i in tok["model"]["vocab"].items()}
    dec = {c: b for b, c in bytes_to_unicode().items()}
    ids = [t for t in ref["generate"]["transcribe_en"]["tokens"] if t < 50257]
    data = bytes(dec[c] for t in ids for c in inv[t])
    return data.decode("utf-8", errors="replace")


def workload(whisper_weight):
    entries = []
    for model in ("bert-mean-norm", "roberta-cls", "xlmr-bf16-max"):
        ref = json.loads((FIX / f"{model}.reference.json").read_text())
        cases = [c for c in ref["cases"] if not c["truncated"]]
        thr = 0.999 if ref["dtype"] == "float32" else 0.99  # bf16 weights: fathom and torch round differently
        for i, c in enumerate(cases):
            entries.append({"name": f"{model}/{i}", "weight": 1, "kind": "embeddings", "model": model,
                            "input": c["text"], "expected": c["embedding"], "threshold": thr})
        entries.append({"name": f"{model}/batch", "weight": 3, "kind": "embeddings", "model": model,
                        "input": [c["text"] for c in cases], "expected": [c["embedding"] for c in cases], "threshold": thr})
    entries.append({"name": "whisper-tiny/jfk", "weight": whisper_weight, "kind": "transcriptions",
                    "model": "whisper-tiny-random-f32", "file": "../../../../shared/assets/whisper/jfk.wav",
                    "fields": {"language": "en", "max_completion_tokens": "24"},
                    "expected": whisper_text("whisper-tiny-random-f32")})
    return entries


def main():
    # Weights: 24 single-input entries (1 each) + 3 batches (3 each) = 33 for embeddings.
    for name, whisper_weight in (("fixtures_mixed.json", 6), ("fixtures_1000.json", 1)):
        out = OUT_DIR / name
        entries = workload(whisper_weight)
        out.write_text(json.dumps(entries, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {out} ({len(entries)} entries)")


if __name__ == "__main__":
    main()
