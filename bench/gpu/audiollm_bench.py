#!/usr/bin/env python3
"""The FunASR-Nano audio-LLM and the Qwen3 decoder core, fathom against PyTorch on the same GPU, same run.

  python3 bench/gpu/audiollm_bench.py "BUNDLE/run" [--out results.json] [--work /tmp/audiollm-bench]

BUNDLE/run runs fathom's CUDA bench programs (fathom_speech_bench, fathom_decoder_bench). The script writes a
random-weight model at a realistic size in the FunASR-Nano layout: SenseVoice-Small encoder (50 + 20 SAN-M blocks,
width 512, 4 heads, FFN 2048), the Transformer adaptor (2 blocks, 512 -> 1024) and a Qwen3-0.6B decoder config
(28 layers, hidden 1024, 16 / 8 heads of 128, FFN 3072, vocab 151,936, tied embeddings), float16 weights, the
tokenizer and chat template of the test fixture's Qwen3-tiny (the prompt ids are the same), and the decoder
alone as a Hugging Face directory.

Workloads (fp16 on both sides):
  audio-LLM   the same 30 s window (jfk.wav tiled) for every request, 64 generated tokens per request.
              fathom: the registry-loaded model and its SpeechScheduler in-process (samples in: fbank, LFR, CMVN
              on the host, encoder, adaptor, continuous batching in the decoder with graphs), c=1 (8 requests one
              at a time) and c=64 (128 requests, 64 in flight).
              PyTorch: LFR+CMVN features precomputed (not timed), a batched SenseVoice encoder and adaptor with
              scaled_dot_product_attention, then transformers' generate() on inputs_embeds (SDPA, greedy,
              min_new_tokens = max_new_tokens = 64), batch = c; wall time of the whole batch.
  decoder     Qwen3-0.6B: batch 1 and 64 prompts of 32 ids, exactly 128 generated tokens each; tokens/s.
              fathom: fathom_decoder_bench (Generator, graphs); transformers: generate(), SDPA, greedy.
RTFx = audio seconds / wall seconds. Medians over repeats.
"""
import argparse, json, math, os, shlex, shutil, statistics, subprocess, sys, time, wave

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "models", "funasr-nano-random-a")

ENC = dict(input_size=560, output_size=512, attention_heads=4, linear_units=2048, num_blocks=50, tp_blocks=20,
           kernel_size=11, sanm_shfit=0)
ADA = dict(downsample_rate=1, encoder_dim=512, llm_dim=1024, ffn_dim=2048, n_layer=2, attention_heads=8)
QWEN3_06B = dict(architectures=["Qwen3ForCausalLM"], model_type="qwen3", hidden_size=1024, num_hidden_layers=28,
                 num_attention_heads=16, num_key_value_heads=8, head_dim=128, intermediate_size=3072,
                 vocab_size=151936, max_position_embeddings=40960, rms_norm_eps=1e-6, rope_theta=1000000.0,
                 tie_word_embeddings=True, hidden_act="silu", attention_bias=False, torch_dtype="float16",
                 bos_token_id=151643, eos_token_id=151645)
TOKENS = 64
WINDOW_S = 30.0


def sync():
    torch.cuda.synchronize()


def median_time(fn, repeats):
    fn()  # warm-up
    sync()
    walls = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        walls.append(time.perf_counter() - t)
    return statistics.median(walls)


# ------------------------------------------------------------------------------------------- the model files

def front_tensors(gen):
    """Random fp16 tensors of the encoder and adaptor under FunASR's names (LayerNorms 1 / 0)."""
    t = {}
    d = ENC["output_size"]

    def lin(name, o, i):
        t[name + ".weight"] = torch.randn(o, i, generator=gen) * 0.02
        t[name + ".bias"] = torch.zeros(o)

    def norm(name, n):
        t[name + ".weight"] = torch.ones(n)
        t[name + ".bias"] = torch.zeros(n)

    def sanm(p, i):
        lin(p + ".self_attn.linear_q_k_v", 3 * d, i)
        t[p + ".self_attn.fsmn_block.weight"] = torch.randn(d, 1, ENC["kernel_size"], generator=gen) * 0.02
        lin(p + ".self_attn.linear_out", d, d)
        lin(p + ".feed_forward.w_1", ENC["linear_units"], d)
        lin(p + ".feed_forward.w_2", d, ENC["linear_units"])
        norm(p + ".norm1", i)
        norm(p + ".norm2", d)

    sanm("audio_encoder.encoders0.0", ENC["input_size"])
    for i in range(ENC["num_blocks"] - 1):
        sanm(f"audio_encoder.encoders.{i}", d)
    norm("audio_encoder.after_norm", d)
    for i in range(ENC["tp_blocks"]):
        sanm(f"audio_encoder.tp_encoders.{i}", d)
    norm("audio_encoder.tp_norm", d)
    L = ADA["llm_dim"]
    lin("audio_adaptor.linear1", ADA["ffn_dim"], ADA["encoder_dim"] * ADA["downsample_rate"])
    lin("audio_adaptor.linear2", L, ADA["ffn_dim"])
    for b in range(ADA["n_layer"]):
        p = f"audio_adaptor.blocks.{b}"
        for n in ["linear_q", "linear_k", "linear_v", "linear_out"]:
            lin(f"{p}.self_attn.{n}", L, L)
        lin(p + ".feed_forward.w_1", L // 4, L)
        lin(p + ".feed_forward.w_2", L, L // 4)
        norm(p + ".norm1", L)
        norm(p + ".norm2", L)
    return {k: v.half().contiguous() for k, v in t.items()}


def write_models(work):
    from safetensors.torch import save_file
    import transformers

    nano, qwen = os.path.join(work, "funasr-nano-0.6b"), os.path.join(work, "qwen3-0.6b")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(nano)
    gen = torch.Generator().manual_seed(7)
    torch.manual_seed(7)
    cfg = transformers.Qwen3Config(**{k: v for k, v in QWEN3_06B.items() if k not in ("architectures", "model_type", "torch_dtype")})
    llm = transformers.Qwen3ForCausalLM(cfg).half()
    llm.save_pretrained(qwen, safe_serialization=True)
    tensors = front_tensors(gen)
    for k, v in llm.state_dict().items():
        if k == "lm_head.weight":
            continue  # tied
        tensors["llm." + k] = v.contiguous()
    save_file(tensors, os.path.join(nano, "model.safetensors"))
    config = json.load(open(os.path.join(FIXTURE, "config.json"), encoding="utf-8"))
    config["audio_encoder_conf"], config["audio_adaptor_conf"] = ENC, ADA
    config["llm_conf"] = {"init_param_path": "Qwen3-0.6B"}
    json.dump(config, open(os.path.join(nano, "config.json"), "w", encoding="utf-8"), ensure_ascii=False, indent=1)
    shutil.copy(os.path.join(FIXTURE, "am.mvn"), nano)
    sub = os.path.join(nano, "Qwen3-0.6B")
    os.makedirs(sub)
    json.dump(QWEN3_06B, open(os.path.join(sub, "config.json"), "w"), indent=1)
    json.dump({"eos_token_id": [151645, 151643]}, open(os.path.join(sub, "generation_config.json"), "w"))
    for f in ["tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(os.path.join(FIXTURE, "Qwen3-tiny", f), sub)
        shutil.copy(os.path.join(FIXTURE, "Qwen3-tiny", f), qwen)
    return nano, qwen, tensors, llm


# ------------------------------------------------------------------------------- PyTorch audio-LLM pipeline

def sinusoidal(T, depth, device):
    pos = torch.arange(1, T + 1, dtype=torch.float32, device=device)
    inc = math.log(10000.0) / (depth / 2 - 1)
    inv = torch.exp(torch.arange(depth // 2, dtype=torch.float32, device=device) * -inc)
    s = pos[:, None] * inv[None, :]
    return torch.cat([torch.sin(s), torch.cos(s)], dim=1)


class TorchFront:
    """Batched SenseVoice encoder + adaptor over the same tensors, fp16, SDPA (equal-length utterances)."""

    def __init__(self, tensors):
        self.t = {k: v.cuda() for k, v in tensors.items()}

    def lin(self, x, n):
        return F.linear(x, self.t[n + ".weight"], self.t[n + ".bias"])

    def ln(self, x, n, eps):
        return F.layer_norm(x, x.shape[-1:], self.t[n + ".weight"], self.t[n + ".bias"], eps)

    def sanm(self, x, p, residual):
        B, T, _ = x.shape
        d, H = ENC["output_size"], ENC["attention_heads"]
        q, k, v = self.lin(self.ln(x, p + ".norm1", 1e-5), p + ".self_attn.linear_q_k_v").split(d, dim=-1)
        heads = lambda z: z.view(B, T, H, d // H).transpose(1, 2)
        a = F.scaled_dot_product_attention(heads(q), heads(k), heads(v)).transpose(1, 2).reshape(B, T, d)
        a = self.lin(a, p + ".self_attn.linear_out")
        left = (ENC["kernel_size"] - 1) // 2 + ENC["sanm_shfit"]
        vt = F.pad(v.transpose(1, 2), (left, ENC["kernel_size"] - 1 - left))
        mem = F.conv1d(vt, self.t[p + ".self_attn.fsmn_block.weight"], groups=d).transpose(1, 2) + v
        x = x + a + mem if residual else a + mem
        h = self.lin(torch.relu(self.lin(self.ln(x, p + ".norm2", 1e-5), p + ".feed_forward.w_1")), p + ".feed_forward.w_2")
        return x + h

    def encode(self, feats):  # [B, T, 560] fp16
        x = feats * ENC["output_size"] ** 0.5 + sinusoidal(feats.shape[1], feats.shape[2], feats.device).half()
        x = self.sanm(x, "audio_encoder.encoders0.0", False)
        for i in range(ENC["num_blocks"] - 1):
            x = self.sanm(x, f"audio_encoder.encoders.{i}", True)
        x = self.ln(x, "audio_encoder.after_norm", 1e-5)
        for i in range(ENC["tp_blocks"]):
            x = self.sanm(x, f"audio_encoder.tp_encoders.{i}", True)
        return self.ln(x, "audio_encoder.tp_norm", 1e-5)

    def adapt(self, x):  # downsample_rate 1
        B, T, _ = x.shape
        x = self.lin(torch.relu(self.lin(x, "audio_adaptor.linear1")), "audio_adaptor.linear2")
        L, H = ADA["llm_dim"], ADA["attention_heads"]
        for b in range(ADA["n_layer"]):
            p = f"audio_adaptor.blocks.{b}"
            h = self.ln(x, p + ".norm1", 1e-12)
            heads = lambda z: z.view(B, T, H, L // H).transpose(1, 2)
            q, k, v = (heads(self.lin(h, f"{p}.self_attn.{n}")) for n in ["linear_q", "linear_k", "linear_v"])
            a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, T, L)
            x = x + self.lin(a, p + ".self_attn.linear_out")
            x = x + self.lin(torch.relu(self.lin(self.ln(x, p + ".norm2", 1e-12), p + ".feed_forward.w_1")),
                             p + ".feed_forward.w_2")
        return x


def torch_audiollm(front, llm, prompt_ids, placeholder, c, repeats):
    at = prompt_ids.index(placeholder)
    before = torch.tensor(prompt_ids[:at], device="cuda")
    after = torch.tensor(prompt_ids[at + 1:], device="cuda")
    rows = math.ceil((1 + (int(WINDOW_S * 16000) - 400) // 160) / 6)  # LFR rows of a 30 s window
    feats = torch.randn(c, rows, ENC["input_size"], device="cuda").half()
    emb = llm.get_input_embeddings()

    def once():
        with torch.inference_mode():
            audio = front.adapt(front.encode(feats))
            e = torch.cat([emb(before)[None].expand(c, -1, -1), audio, emb(after)[None].expand(c, -1, -1)], dim=1)
            out = llm.generate(inputs_embeds=e, attention_mask=torch.ones(e.shape[:2], dtype=torch.long, device="cuda"),
                               max_new_tokens=TOKENS, min_new_tokens=TOKENS, do_sample=False, pad_token_id=0)
            assert out.shape[1] == TOKENS, out.shape
            return audio

    finite = bool(torch.isfinite(once()).all())
    wall = median_time(once, repeats)
    return {"concurrency": c, "wall_s": wall, "rtfx": c * WINDOW_S / wall, "latency_s": wall, "audio_rows": rows,
            "prompt_positions": len(prompt_ids) - 1 + rows, "adaptor_output_finite": finite}


def torch_decoder(llm, batch, prompt, tokens, repeats):
    vocab = QWEN3_06B["vocab_size"]
    ids = torch.tensor([[(1009 * b + 7919 * t + 13) % vocab for t in range(prompt)] for b in range(batch)], device="cuda")

    def once():
        with torch.inference_mode():
            out = llm.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens,
                               min_new_tokens=tokens, do_sample=False, pad_token_id=0)
            assert out.shape[1] == prompt + tokens

    wall = median_time(once, repeats)
    return {"batch": batch, "prompt": prompt, "tokens": tokens, "wall_s_median": wall, "tokens_per_s": batch * tokens / wall}


# ------------------------------------------------------------------------------------------------ fathom side

def fathom(run, prog, args):
    cmd = shlex.split(run) + [prog] + [str(a) for a in args]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        return {"error": p.stderr[-2000:], "cmd": " ".join(cmd)}
    return json.loads(p.stdout.strip().splitlines()[-1])


def jfk_30s(assets, path):
    with wave.open(os.path.join(assets, "whisper", "jfk.wav")) as w:
        x = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0
    n = int(WINDOW_S * 16000)
    np.resize(x, n).astype("<f4").tofile(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run", help="the bundle's run script, e.g. B/run")
    ap.add_argument("--out", default="audiollm_bench.json")
    ap.add_argument("--work", default="/tmp/audiollm-bench")
    ap.add_argument("--assets", default=os.path.join(ROOT, "..", "shared", "assets"))
    a = ap.parse_args()
    res = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    import transformers
    res["transformers"] = transformers.__version__
    t = time.time()
    nano, qwen, tensors, llm = write_models(a.work)
    res["write_models_s"] = time.time() - t
    audio = os.path.join(a.work, "jfk30.f32")
    jfk_30s(a.assets, audio)

    # fathom first (the PyTorch models are not on the GPU yet).
    res["fathom_audiollm"] = [
        fathom(a.run, "fathom_speech_bench", ["--model", nano, "--audio", audio, "--concurrency", 1, "--requests", 8, "--tokens", TOKENS]),
        fathom(a.run, "fathom_speech_bench", ["--model", nano, "--audio", audio, "--concurrency", 64, "--requests", 128, "--tokens", TOKENS]),
    ]
    res["fathom_decoder"] = [fathom(a.run, "fathom_decoder_bench", ["--model", qwen, "--batch", b, "--prompt", 32, "--tokens", 128])
                             for b in (1, 64)]
    print(json.dumps(res, indent=1), flush=True)

    llm = llm.cuda().eval()
    llm.config._attn_implementation = "sdpa"
    front = TorchFront(tensors)
    ref = json.load(open(FIXTURE + ".reference.json", encoding="utf-8"))
    case = ref["generate"]["cases"]["jfk_default"]
    prompt_ids, placeholder = case["prompt_ids"], ref["generate"]["audio_token_id"]
    res["torch_audiollm"] = [torch_audiollm(front, llm, prompt_ids, placeholder, 1, 5),
                             torch_audiollm(front, llm, prompt_ids, placeholder, 64, 3)]
    res["torch_decoder"] = [torch_decoder(llm, b, 32, 128, 3) for b in (1, 64)]
    for i, c in enumerate((1, 64)):
        f, p = res["fathom_audiollm"][i], res["torch_audiollm"][i]
        if "rtfx" in f:
            res.setdefault("ratios", {})[f"audiollm_c{c}_rtfx"] = f["rtfx"] / p["rtfx"]
        f, p = res["fathom_decoder"][i], res["torch_decoder"][i]
        if "tokens_per_s" in f:
            res.setdefault("ratios", {})[f"decoder_b{(1, 64)[i]}_tokens_per_s"] = f["tokens_per_s"] / p["tokens_per_s"]
    print(json.dumps(res, indent=1), flush=True)
    json.dump(res, open(a.out, "w"), indent=1)


if __name__ == "__main__":
    main()
