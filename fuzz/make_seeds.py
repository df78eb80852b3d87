#!/usr/bin/env python3
"""Writes the committed seed corpora under fuzz/corpus/<target>/ (small inputs; standard library only,
plus the ffmpeg command line for the compressed audio seeds when it is installed).

Run from the repository root: python3 fuzz/make_seeds.py
The first byte(s) of some seeds are the target's choice bytes (see each *_fuzzer.cpp)."""
import json, math, os, shutil, struct, subprocess, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
FIX = os.path.join(ROOT, "tests", "fixtures")


def out(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def reset(target):
    shutil.rmtree(os.path.join(CORPUS, target), ignore_errors=True)


# --- tokenizer_encode: [tokenizer][flags] text --------------------------------------------------------
reset("tokenizer_encode")
texts = ["Hello, world! It's a test.", "naïve café — 東京タワー 😀 \t\n", "[CLS] hello [SEP] [MASK]",
         "<s> a </s> <mask>", "<|startoftranscript|><|en|><|transcribe|><|0.00|> And so my fellow Americans<|2.00|>",
         "  multiple   spaces\u3000and\u00a0nbsp ", "1234567890 3.14 $100 #hashtag @user",
         "Ünïcödé ÀÉÎÕÜ ǅ ﬁ ① ｆｕｌｌ", "a" * 300, "\x00\x01\x7f control"]
for i, t in enumerate(texts):
    out("tokenizer_encode", f"text{i}", bytes([i % 4, (i * 5) % 256]) + t.encode())
out("tokenizer_encode", "invalid_utf8", b"\x01\x01ab\xff\xfe\xc3")

# --- tokenizer_decode: [tokenizer][flags] u16 values ---------------------------------------------------
reset("tokenizer_decode")
for i in range(4):
    vals = [(i * 1237 + k * 811) % 0xFF00 for k in range(24)] + [0xFF08, 5, 0xFFF1, 0x20]
    out("tokenizer_decode", f"ids{i}", bytes([i, i * 3]) + b"".join(struct.pack("<H", v) for v in vals))
out("tokenizer_decode", "specials", bytes([2, 9]) + b"".join(struct.pack("<H", v) for v in range(0, 60, 3)))

# --- tokenizer_json: [flags] tokenizer.json -----------------------------------------------------------
reset("tokenizer_json")
wp_vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "hello": 4, "world": 5, "##s": 6, ",": 7, "!": 8, "a": 9, "##b": 10}
tok_wordpiece = {
    "version": "1.0",
    "added_tokens": [{"id": 2, "content": "[CLS]", "special": True, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False},
                     {"id": 3, "content": "[SEP]", "special": True, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False}],
    "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True, "strip_accents": None, "lowercase": True},
    "pre_tokenizer": {"type": "BertPreTokenizer"},
    "post_processor": {"type": "TemplateProcessing",
                       "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
                       "pair": [], "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]}, "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
    "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
    "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": wp_vocab},
}
bl_vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "H": 4, "e": 5, "l": 6, "o": 7, "Ġ": 8, "w": 9, "r": 10, "d": 11,
            "He": 12, "ll": 13, "Hell": 14, "Hello": 15, "Ġw": 16, "or": 17, "Ġwor": 18, "Ġworld": 19, "<mask>": 20}
tok_bytelevel = {
    "added_tokens": [{"id": 0, "content": "<s>", "special": True}, {"id": 2, "content": "</s>", "special": True},
                     {"id": 20, "content": "<mask>", "special": True, "lstrip": True, "normalized": False},
                     {"id": 21, "content": "<|0.00|>", "special": False, "normalized": False}],
    "normalizer": None,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
    "post_processor": {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0], "trim_offsets": True, "add_prefix_space": False},
    "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
    "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "", "end_of_word_suffix": "",
              "fuse_unk": False, "byte_fallback": False, "vocab": bl_vocab,
              "merges": ["H e", "l l", "He ll", "Hell o", "Ġ w", "o r", "Ġw or", "Ġwor l", "Ġworl d"]},
}
sp_vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "▁": 3, "a": 4, "b": 5, "▁a": 6, "ab": 7, "<0x41>": 8, "<0xC3>": 9, "<0xA9>": 10}
tok_metaspace = {
    "added_tokens": [{"id": 1, "content": "<s>", "special": True, "single_word": True}],
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "Lowercase"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
                                                         {"type": "Prepend", "prepend": "▁"}, {"type": "Strip", "strip_left": True, "strip_right": True}]},
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\p{N}+|[^\\s\\p{L}]+"}, "behavior": "Isolated", "invert": False},
                                                            {"type": "Digits", "individual_digits": True}, {"type": "Punctuation", "behavior": "Contiguous"}]},
    "post_processor": {"type": "Sequence", "processors": [{"type": "ByteLevel", "trim_offsets": False},
                                                          {"type": "TemplateProcessing", "single": ["<s>", "$A", "</s>"], "pair": [],
                                                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}, "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}}]},
    "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"},
                                                 {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
    "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": True, "byte_fallback": True, "vocab": sp_vocab, "merges": [["▁", "a"], ["a", "b"]]},
}
tok_whitespace = {
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFD"}, {"type": "StripAccents"}, {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "}]},
    "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True},
    "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True},
    "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
    "model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": wp_vocab},
}
tok_split = dict(tok_whitespace, pre_tokenizer={"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"}, {"type": "Whitespace"},
    {"type": "Split", "pattern": {"String": "-"}, "behavior": "Removed", "invert": True}, {"type": "Split", "pattern": {"Regex": "(?i:'s|'t)|\\s+(?!\\S)"}, "behavior": "MergedWithPrevious"}]})
for i, t in enumerate([tok_wordpiece, tok_bytelevel, tok_metaspace, tok_whitespace, tok_split]):
    out("tokenizer_json", f"tok{i}", bytes([i * 7 + (1 if i == 1 else 0) + (2 if i == 1 else 0) + 4]) + json.dumps(t, ensure_ascii=(i % 2 == 0)).encode())
out("tokenizer_json", "unsupported", b"\x00" + json.dumps({"model": {"type": "Unigram", "vocab": []}}).encode())
tok_unigram = {
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "Strip", "strip_left": False, "strip_right": True},
                                                      {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": "▁"}]},
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"}, {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True}]},
    "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
    "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                       "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}, "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}},
    "added_tokens": [{"id": i, "content": c, "special": True, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False} for i, c in enumerate(["<unk>", "<s>", "</s>"])],
    "model": {"type": "Unigram", "unk_id": 0, "byte_fallback": True,
              "vocab": [["<unk>", 0.0], ["<s>", 0.0], ["</s>", 0.0], ["<0x41>", 0.0], ["<0xC3>", 0.0], ["▁", -2.0], ["▁a", -3.0], ["a", -2.5], ["b", -4.0], ["ab", -3.5], ["é", -5.0]]},
}
out("tokenizer_json", "unigram", b"\x05" + json.dumps(tok_unigram, ensure_ascii=False).encode())

# --- safetensors ----------------------------------------------------------------------------------------
reset("safetensors")


def safetensors(tensors, metadata=None, pad=0):
    header, data, off = {}, b"", 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        data += raw
        off += len(raw)
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode() + b" " * pad
    return struct.pack("<Q", len(h)) + h + data


out("safetensors", "f32", safetensors({"w": ("F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4))}, {"format": "pt"}))
out("safetensors", "mixed", safetensors({"a.bias": ("BF16", [3], b"\x80\x3f" * 3), "b": ("I64", [1], struct.pack("<q", 7)),
                                         "c": ("F16", [2, 1], b"\x00\x3c" * 2), "d": ("I32", [], struct.pack("<i", 1)),
                                         "e": ("U8", [2], b"\x01\x02"), "f": ("F64", [0], b"")}, pad=5))
out("safetensors", "bad_offsets", safetensors({"w": ("F32", [2], struct.pack("<2f", 1, 2))})[:-3])
out("safetensors", "empty", safetensors({}))

# --- model_config: [which file] json ---------------------------------------------------------------------
reset("model_config")
def fixture_text(rel):
    with open(os.path.join(FIX, rel), "rb") as f:
        return f.read()
out("model_config", "whisper_config", b"\x00" + fixture_text("models/whisper-tiny-random-f32/config.json"))
out("model_config", "generation_config", b"\x01" + fixture_text("models/whisper-tiny-random-f32/generation_config.json"))
out("model_config", "modules", b"\x02" + fixture_text("models/bert-mean-norm/modules.json"))
out("model_config", "pooling_new", b"\x03" + b'{"word_embedding_dimension": 32, "pooling_mode": "lasttoken"}')
out("model_config", "pooling_old", b"\x03" + fixture_text("models/bert-mean-norm/1_Pooling/config.json"))
out("model_config", "sbert", b"\x04" + fixture_text("models/bert-mean-norm/sentence_bert_config.json"))
out("model_config", "tokenizer_config", b"\x05" + b'{"model_max_length": 1e30, "tokenizer_class": "BertTokenizer", "clean_up_tokenization_spaces": true}')
out("model_config", "index", b"\x06" + json.dumps({"metadata": {"total_size": 8}, "weight_map": {"a.weight": "model-00001-of-00001.safetensors"}}).encode())
out("model_config", "index_bad", b"\x06" + json.dumps({"weight_map": {"b": "../missing.safetensors", "a.weight": "model-00001-of-00001.safetensors"}}).encode())

# --- audio_wav -------------------------------------------------------------------------------------------
reset("audio_wav")


def wav(fmt_tag, channels, rate, bits, frames, extensible=False, extra_chunks=b""):
    block = channels * bits // 8
    if extensible:
        sub = struct.pack("<H", fmt_tag) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt = struct.pack("<HHIIHH", 0xFFFE, channels, rate, rate * block, block, bits) + struct.pack("<HHI", 22, bits, 3) + sub
    else:
        fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra_chunks + b"data" + struct.pack("<I", len(frames)) + frames
    if len(frames) % 2:
        body += b"\x00"
    return b"RIFF" + struct.pack("<I", len(body)) + body


n = 64
sine = [math.sin(2 * math.pi * 440 * k / 8000) for k in range(n)]
out("audio_wav", "pcm16_mono_8k", wav(1, 1, 8000, 16, b"".join(struct.pack("<h", int(s * 30000)) for s in sine)))
out("audio_wav", "pcm8_stereo_22k", wav(1, 2, 22050, 8, bytes(int(128 + 100 * s) for s in sine for _ in range(2))))
out("audio_wav", "pcm24_16k", wav(1, 1, 16000, 24, b"".join(struct.pack("<i", int(s * 8e6))[:3] for s in sine)))
out("audio_wav", "pcm32_48k_ext", wav(1, 2, 48000, 32, b"".join(struct.pack("<i", int(s * 2e9)) * 2 for s in sine), extensible=True))
out("audio_wav", "float32_44k", wav(3, 1, 44100, 32, b"".join(struct.pack("<f", s) for s in sine), extra_chunks=b"LIST\x04\x00\x00\x00INFO"))
out("audio_wav", "float64_16k_ext", wav(3, 1, 16000, 64, b"".join(struct.pack("<d", s) for s in sine), extensible=True))
out("audio_wav", "truncated", wav(1, 1, 16000, 16, b"\x00\x01" * 32)[:-20])
out("audio_wav", "odd_chunk", wav(1, 1, 16000, 8, bytes(range(33)), extra_chunks=b"junk\x03\x00\x00\x00abc\x00"))

# --- audio_decode: every format the endpoint accepts, tiny -------------------------------------------------
reset("audio_decode")
os.makedirs(os.path.join(CORPUS, "audio_decode"))
for name in os.listdir(os.path.join(CORPUS, "audio_wav")):
    shutil.copy(os.path.join(CORPUS, "audio_wav", name), os.path.join(CORPUS, "audio_decode", "wav_" + name))
out("audio_decode", "no_audio.webm", fixture_text("audio/no_audio.webm"))
if shutil.which("ffmpeg"):
    src = os.path.join(FIX, "audio", "jfk_2s5_16k.flac")
    formats = [("mp3", ["-c:a", "libmp3lame", "-b:a", "32k"], "mp3"), ("flac", ["-c:a", "flac"], "flac"),
               ("ogg", ["-c:a", "libvorbis", "-q:a", "0"], "ogg"), ("opus.ogg", ["-c:a", "libopus", "-b:a", "16k"], "ogg"),
               ("webm", ["-c:a", "libopus", "-b:a", "16k"], "webm"), ("m4a", ["-c:a", "aac", "-b:a", "24k"], "ipod"),
               ("mp4", ["-c:a", "aac", "-b:a", "24k", "-ac", "2"], "mp4"), ("mpeg", ["-c:a", "mp2", "-b:a", "32k"], "mpeg"),
               ("mp2", ["-c:a", "mp2", "-b:a", "32k"], "mp2")]
    with tempfile.TemporaryDirectory() as tmp:
        for ext, codec, fmt in formats:
            dst = os.path.join(tmp, "clip." + ext)
            r = subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", src, "-t", "0.25", "-ar", "16000"] + codec + ["-f", fmt, dst],
                               capture_output=True)
            if r.returncode == 0:
                shutil.copy(dst, os.path.join(CORPUS, "audio_decode", "clip." + ext))
            else:
                print("ffmpeg could not make", ext, r.stderr.decode()[-200:])

# --- embeddings_request: [facts] body ----------------------------------------------------------------------
reset("embeddings_request")
bodies = [{"model": "m", "input": "Hello world"},
          {"model": "m", "input": ["a b c", "naïve café 東京", "[CLS] x [SEP]"], "encoding_format": "base64", "dimensions": 16},
          {"model": "m", "input": [101, 7592, 102], "truncate_prompt_tokens": 2, "normalize": False},
          {"model": "m", "input": [[0, 1, 2], [3, 4]], "truncate_prompt_tokens": -1, "user": "u"},
          {"model": "m", "input": "x " * 40, "truncate_prompt_tokens": 4, "encoding_format": "float", "dimensions": None},
          {"model": "", "input": []}, {"input": [1.5]}, {"model": "m", "input": [[]], "dimensions": 2147483648}]
for i, b in enumerate(bodies):
    out("embeddings_request", f"body{i}", bytes([i * 2 + (16 if i % 3 == 0 else 0) + (32 if i % 2 else 0)]) + json.dumps(b, ensure_ascii=False).encode())
out("embeddings_request", "not_object", b"\x00[1, 2]")
out("embeddings_request", "bad_json", b"\x10{\"model\": \"m\", \"input\": \"a\"")

# --- multipart_form: [task] name=value (0x1e name=value)* -----------------------------------------------------
reset("multipart_form")
forms = [[("model", "whisper"), ("language", "en"), ("response_format", "json")],
         [("response_format", "verbose_json"), ("timestamp_granularities[]", "segment"), ("temperature", "0.2"),
          ("top_p", "0.9"), ("seed", "7")],
         [("use_beam_search", "true"), ("n", "4"), ("max_completion_tokens", " 24 ")],
         [("stream", "true"), ("response_format", "text"), ("prompt", "naïve café\r\n")],
         [("response_format", "srt"), ("language", "fr")],
         [("n", "2")], [("temperature", "1e400")], [("timestamp_granularities[]", "word")],
         [("stream", "true"), ("response_format", "vtt")], [("seed", "99999999999999999999")]]
for i, fields in enumerate(forms):
    out("multipart_form", f"form{i}", bytes([i % 2]) + b"\x1e".join(f"{k}={v}".encode() for k, v in fields))

# --- transcription_format: [format] (start u16, length u16, count, ids u16...)* ------------------------------
reset("transcription_format")
for f in range(5):
    seg = b""
    for k in range(3):
        ids = [(50258 + 3 * k + f) % 51865, 440 + k * 97, 1002 + k, 13, 50365 + k * 10]
        seg += struct.pack("<HHB", k * 250, 180 + k, len(ids)) + b"".join(struct.pack("<H", v) for v in ids)
    out("transcription_format", f"fmt{f}", bytes([f + 8 * (f % 2)]) + seg)

# --- torch_state_dict: [mode] pickle (even mode) or zip image (odd mode) ------------------------------------
reset("torch_state_dict")


def pk_str(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def pk_global(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def pk_tensor(key, cls, storage_key, numel, offset, size, stride):
    def tup(v):
        return b"(" + b"".join(b"K" + bytes([x]) for x in v) + b"t"
    return (pk_str(key) + pk_global("torch._utils", "_rebuild_tensor_v2") + b"((" + pk_str("storage") +
            pk_global("torch", cls) + pk_str(storage_key) + pk_str("cpu") + b"K" + bytes([numel]) + b"tQ" +
            b"K" + bytes([offset]) + tup(size) + tup(stride) + b"\x89" + pk_global("collections", "OrderedDict") +
            b")RtR")


def pk_state_dict(entries):
    return (b"\x80\x02" + pk_global("collections", "OrderedDict") + b"q\x00)Rq\x01(" + b"".join(entries) +
            b"u}" + pk_str("_metadata") + b"h\x00)R" + pk_str("") + b"}" + pk_str("version") + b"K\x01sssb.")


def torch_zip(records):
    import io, zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, data in records:
            z.writestr(name, data)
    return buf.getvalue()


linear = pk_state_dict([pk_tensor("weight", "FloatStorage", "0", 6, 0, [2, 3], [3, 1]),
                        pk_tensor("bias", "FloatStorage", "1", 2, 0, [2], [1])])
mixed = pk_state_dict([pk_tensor("h", "HalfStorage", "0", 4, 1, [3], [1]),
                       pk_tensor("b", "BFloat16Storage", "1", 2, 0, [1, 2], [2, 1]),
                       pk_tensor("steps", "LongStorage", "2", 1, 0, [], []),
                       pk_tensor("a", "FloatStorage", "3", 10, 4, [2, 3], [3, 1])])
out("torch_state_dict", "pickle_linear", b"\x00" + linear)
out("torch_state_dict", "pickle_mixed", b"\x02" + mixed)
out("torch_state_dict", "pickle_p4", b"\x04" + b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01w\x94"
    b"\x8c\x0bcollections\x94\x8c\x0bOrderedDict\x94\x93\x94)R\x94s.")
out("torch_state_dict", "pickle_forbidden", b"\x06\x80\x02" + pk_global("posix", "system") + pk_str("ls") + b"\x85R.")
out("torch_state_dict", "zip_linear", b"\x01" + torch_zip([
    ("archive/data.pkl", linear), ("archive/byteorder", b"little"),
    ("archive/data/0", struct.pack("<6f", 1, 2, 3, 4, 5, 6)), ("archive/data/1", struct.pack("<2f", 0.5, -1)),
    ("archive/version", b"3\n")]))
out("torch_state_dict", "zip_mixed", b"\x03" + torch_zip([
    ("m/data.pkl", mixed), ("m/data/0", struct.pack("<4H", 0x3c00, 0x4000, 0xc000, 0)),
    ("m/data/1", struct.pack("<2H", 0x3f80, 0x4000)), ("m/data/2", struct.pack("<q", 7)),
    ("m/data/3", struct.pack("<10f", *range(10)))]))
