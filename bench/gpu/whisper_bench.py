# Whisper on the GPU machine: fathom (real model + scheduler, in-process, bench/gpu/fathom_whisper_bench)
# against transformers fp16 SDPA batched generate(), random weights at the large-v3 and large-v3-turbo
# configurations, the same 30 s window of real speech (jfk.wav tiled to 30 s) and the same number of
# decoded tokens per window on both sides (EOS suppressed on both: added to the checkpoint's
# generation_config suppress_tokens; transformers also gets min_new_tokens).
#
# Usage (repo root, OUT set): python3 bench/gpu/whisper_bench.py "RUN_PREFIX fathom_whisper_bench" [models]
#   models: comma list of large-v3-turbo,large-v3 (default both). Results: $OUT/whisper_h100.json.
#   WHISPER_BENCH_GRAPHS_OFF=1,64 also runs fathom with --cuda-graphs off at those concurrencies;
#   WHISPER_HOST_BENCH="... whisper_host_bench" adds the host ms per step at batch 64 (host_step).
import json, os, shutil, subprocess, sys, time, wave

import numpy as np
import torch

OUT = os.environ.get("OUT", "/tmp")
BENCH = sys.argv[1].split()
MODELS = (sys.argv[2] if len(sys.argv) > 2 else "large-v3-turbo,large-v3").split(",")
TOKENS = int(os.environ.get("WHISPER_BENCH_TOKENS", "64"))
CONC = [int(c) for c in os.environ.get("WHISPER_BENCH_CONC", "1,64").split(",")]
# Optional: concurrencies to rerun fathom with --cuda-graphs off, and the host-step harness command
# (bench/whisper_host_bench, e.g. "RUN_PREFIX whisper_host_bench").
GRAPHS_OFF = [int(c) for c in os.environ.get("WHISPER_BENCH_GRAPHS_OFF", "").split(",") if c]
HOST_BENCH = os.environ.get("WHISPER_HOST_BENCH", "").split()
FIXTURE = "tests/fixtures/models/whisper-v3-random-f16"
WORK = "/tmp/whisper_bench"
os.makedirs(WORK, exist_ok=True)
shared = os.environ.get("FATHOM_SHARED_DIR", "../shared")

# 30 s of real speech: jfk.wav (11 s, 16 kHz mono PCM16) tiled.
with wave.open(os.path.join(shared, "assets/whisper/jfk.wav")) as w:
    pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0
audio = np.tile(pcm, 480000 // len(pcm) + 1)[:480000].astype(np.float32)
audio_path = os.path.join(WORK, "window.f32")
audio.tofile(audio_path)

CONFIGS = {
    "large-v3": dict(encoder_layers=32, decoder_layers=32),
    "large-v3-turbo": dict(encoder_layers=32, decoder_layers=4),
}


def make_checkpoint(name):
    from transformers import WhisperConfig, WhisperForConditionalGeneration
    d = os.path.join(WORK, name)
    if os.path.exists(os.path.join(d, "model.safetensors")):
        return d
    os.makedirs(d, exist_ok=True)
    base = json.load(open(os.path.join(FIXTURE, "config.json")))
    base.update(d_model=1280, encoder_attention_heads=20, decoder_attention_heads=20, encoder_ffn_dim=5120,
                decoder_ffn_dim=5120, num_mel_bins=128, vocab_size=51866, max_source_positions=1500,
                max_target_positions=448, **CONFIGS[name])
    base.pop("dtype", None); base.pop("torch_dtype", None); base.pop("transformers_version", None)
    cfg = WhisperConfig(**{k: v for k, v in base.items() if k not in ("architectures", "model_type")})
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = WhisperForConditionalGeneration(cfg).half()
    model.save_pretrained(d, safe_serialization=True)
    del model
    torch.cuda.empty_cache()
    for f in ("tokenizer.json", "tokenizer_config.json"):
        if os.path.exists(os.path.join(FIXTURE, f)):
            shutil.copy(os.path.join(FIXTURE, f), d)
    gen = json.load(open(os.path.join(FIXTURE, "generation_config.json")))
    eos = gen["eos_token_id"]
    gen["suppress_tokens"] = sorted(set(gen.get("suppress_tokens", [])) | {eos})  # force TOKENS tokens
    json.dump(gen, open(os.path.join(d, "generation_config.json"), "w"), indent=1)
    c = json.load(open(os.path.join(d, "config.json")))
    c["dtype"] = "float16"
    json.dump(c, open(os.path.join(d, "config.json"), "w"), indent=1)
    return d


def hf_bench(d, conc):
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration
    model = WhisperForConditionalGeneration.from_pretrained(d, dtype=torch.float16, attn_implementation="sdpa").cuda().eval()
    fe = WhisperFeatureExtractor(feature_size=128)
    feats = fe(audio, sampling_rate=16000, return_tensors="pt").input_features.to("cuda", torch.float16)
    res = {}
    for c in conc:
        x = feats.repeat(c, 1, 1)
        kw = dict(language="en", task="transcribe", max_new_tokens=TOKENS, min_new_tokens=TOKENS, do_sample=False,
                  num_beams=1)
        with torch.inference_mode():
            out = model.generate(x, **kw)  # warm-up
            torch.cuda.synchronize()
            reps = 3 if c == 1 else 2
            t0 = time.perf_counter()
            for _ in range(reps):
                out = model.generate(x, **kw)
            torch.cuda.synchronize()
            wall = (time.perf_counter() - t0) / reps
        seq = out.sequences if hasattr(out, "sequences") else out
        res[str(c)] = dict(batch=c, wall_s=wall, rtfx=c * 30.0 / wall, latency_s=wall,
                           output_len=int(seq.shape[1]), note="input features precomputed (feature extraction not timed)")
        print(d, "HF", c, res[str(c)], flush=True)
    del model
    torch.cuda.empty_cache()
    return res


def fathom_bench(d, conc, graphs="on"):
    res = {}
    for c in conc:
        requests = 8 if c == 1 else 2 * c
        cmd = BENCH + ["--model", d, "--audio", audio_path, "--dtype", "float16", "--concurrency", str(c),
                       "--requests", str(requests), "--tokens", str(TOKENS), "--cuda-graphs", graphs]
        p = subprocess.run([str(x) for x in cmd], capture_output=True, text=True, timeout=400)
        if p.returncode != 0:
            res[str(c)] = dict(error=p.stderr[-2000:])
        else:
            res[str(c)] = json.loads(p.stdout.strip().splitlines()[-1])
        print(d, "fathom", graphs, c, res[str(c)], flush=True)
    return res


results = dict(device=torch.cuda.get_device_name(0), torch=torch.__version__, tokens_per_window=TOKENS,
               window_s=30, audio="jfk.wav tiled to 30 s", models={})
import transformers
results["transformers"] = transformers.__version__
for name in MODELS:
    t0 = time.perf_counter()
    d = make_checkpoint(name)
    r = results["models"].setdefault(name, {})
    r["checkpoint_s"] = time.perf_counter() - t0
    r["fathom"] = fathom_bench(d, CONC)
    if GRAPHS_OFF:
        r["fathom_graphs_off"] = fathom_bench(d, GRAPHS_OFF, "off")
    if HOST_BENCH:
        # Host ms per scheduler step at batch 64 (network call vs decoding on the host), this checkpoint.
        p = subprocess.run(HOST_BENCH + ["--model", d, "--device", "cuda", "--jobs", "64", "--tokens", str(TOKENS)],
                           capture_output=True, text=True, timeout=300)
        r["host_step"] = json.loads(p.stdout) if p.returncode == 0 else dict(error=p.stderr[-2000:])
        print(d, "host step", r["host_step"], flush=True)
    json.dump(results, open(os.path.join(OUT, "whisper_h100.json"), "w"), indent=1)
    r["transformers"] = hf_bench(d, CONC)
    for c in map(str, CONC):
        f, h = r["fathom"].get(c, {}), r["transformers"].get(c, {})
        if "rtfx" in f and "rtfx" in h:
            r.setdefault("speedup", {})[c] = f["rtfx"] / h["rtfx"]
    json.dump(results, open(os.path.join(OUT, "whisper_h100.json"), "w"), indent=1)
print(json.dumps(results, indent=1))
