#!/usr/bin/env python3
"""Generate fathom's parity fixtures with transformers / sentence-transformers.

Runs on the GPU machine (it has torch, transformers and sentence-transformers); the outputs are
committed under tests/fixtures/ so that CI (no Python ML stack, no GPU) can compare against them.

  python3 scripts/make_fixtures.py --assets ../shared/assets --out tests/fixtures

Every checkpoint is a tiny random-weight model in Hugging Face layout using a REAL tokenizer.
LayerNorm weights and biases are randomised too, so no layer is an identity. References are
computed in float32 on the CPU (bf16/f16 checkpoints are upcast first, as fathom's CPU path does).
Each part is independent: a failure is reported and the other parts still get written.
"""
import argparse, base64, json, os, shutil, sys, traceback, wave

import numpy as np
import torch

torch.manual_seed(0)
np.random.seed(0)

ap = argparse.ArgumentParser()
ap.add_argument("--assets", required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--only", default="", help="comma-separated part names")
args = ap.parse_args()
OUT = os.path.abspath(args.out)
ASSETS = os.path.abspath(args.assets)
os.makedirs(OUT, exist_ok=True)
FAILURES = []

# ---------------------------------------------------------------------------------------------
# Texts

TOKENIZER_CORPUS = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "Café déjà vu — naïve résumé, Ångström, façade, Øresund, São Paulo.",
    "ÀÉÎÕÜ àéîõü ÇÑ çñ ß œ æ",
    "北京是中国的首都。東京は日本の首都です。서울은 한국의 수도입니다.",
    "Mixed 中文 and English 混合 text 123.",
    "Emoji: 😀🎉👍🏽 👨‍👩‍👧‍👦 ❤️ 🇫🇷",
    "   leading and trailing spaces   ",
    "multiple    spaces\tand\ttabs\n\nand newlines\r\n",
    "I'm sure they'll say it's what we've done; we'd rather you'd not.",
    "DON'T SHOUT! I'LL WHISPER.",
    "Numbers: 3.14159, 1,000,000, 2026-11-27, $42.50, 100%",
    "snake_case camelCase kebab-case PascalCase email@example.com https://example.org/a?b=c",
    "Control\u0000chars\u0007and\u200bzero\u200dwidth\ufeffmarks",
    "Combining: e\u0301 a\u0308 n\u0303 (decomposed accents)",
    "Ελληνικά, русский текст, עברית, العربية, हिन्दी, ไทย",
    "unaffable unbelievably antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "",
    " ",
    "a",
    "<s> [CLS] [SEP] <|endoftext|> special-looking text",
    "tab\tseparated\tvalues\tin\ta\trow",
    "Ünïcödé    \u3000full-width\u3000space ｆｕｌｌｗｉｄｔｈ",
    ("A very long text that goes on and on. " * 60).strip(),
]

MODEL_TEXTS = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "Café déjà vu — naïve résumé.",
    "北京是中国的首都。",
    "Embeddings map sentences to vectors; similar meanings land close together.",
    "a",
    "I'm sure they'll say it's what we've done.",
    "Numbers like 3.14159 and 2026 appear too, with emoji 😀.",
    ("This longer passage repeats itself to exercise the attention over many positions. " * 3).strip(),
    ("A text well past the model's limit so that truncation matters. " * 30).strip(),
]


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)


def part(name):
    def deco(fn):
        if args.only and name not in args.only.split(","):
            return fn
        print(f"== {name}", flush=True)
        try:
            fn()
            print(f"   {name}: ok", flush=True)
        except Exception:
            traceback.print_exc()
            FAILURES.append(name)
        return fn
    return deco


# ---------------------------------------------------------------------------------------------
# Tokenizers

from tokenizers import Tokenizer, models, pre_tokenizers, decoders, processors, AddedToken
from transformers import PreTrainedTokenizerFast

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

LANGUAGES = ["en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv",
             "it", "id", "hi", "fi", "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no",
             "th", "ur", "hr", "bg", "lt", "la", "mi", "ml", "cy", "sk", "te", "fa", "lv", "bn", "sr",
             "az", "sl", "kn", "et", "mk", "br", "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw",
             "gl", "mr", "pa", "si", "km", "sn", "yo", "so", "af", "oc", "ka", "be", "tg", "sd", "gu",
             "am", "yi", "lo", "uz", "fo", "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl",
             "mg", "as", "tt", "haw", "ln", "ha", "ba", "jw", "su"]
assert len(LANGUAGES) == 99


def tiktoken_vocab_merges(path):
    from transformers.convert_slow_tokenizer import TikTokenConverter
    conv = TikTokenConverter(vocab_file=path, pattern=GPT2_PATTERN)
    vocab, merges = conv.extract_vocab_merges_from_model(path)
    return vocab, merges


def whisper_tokenizer(with_yue):
    from transformers.convert_slow_tokenizer import TikTokenConverter
    from transformers import WhisperTokenizerFast
    tok = TikTokenConverter(vocab_file=os.path.join(ASSETS, "whisper/multilingual.tiktoken"),
                            pattern=GPT2_PATTERN).converted()
    langs = LANGUAGES + (["yue"] if with_yue else [])
    specials = ["<|endoftext|>", "<|startoftranscript|>"] + [f"<|{l}|>" for l in langs] + [
        "<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>",
        "<|notimestamps|>"]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    tok.add_tokens([AddedToken(f"<|{i * 0.02:.2f}|>", special=False, normalized=False) for i in range(1501)])
    fast = WhisperTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                unk_token="<|endoftext|>", pad_token="<|endoftext|>")
    base = 50257
    assert fast.convert_tokens_to_ids("<|endoftext|>") == base
    assert fast.convert_tokens_to_ids("<|startoftranscript|>") == base + 1
    assert fast.convert_tokens_to_ids("<|en|>") == base + 2
    off = 1 if with_yue else 0
    assert fast.convert_tokens_to_ids("<|notimestamps|>") == 50363 + off
    assert fast.convert_tokens_to_ids("<|0.00|>") == 50364 + off
    assert fast.convert_tokens_to_ids("<|30.00|>") == 51864 + off
    return fast


ROBERTA_RANKS = 8000


def roberta_style_tokenizer():
    """Byte-level BPE over the GPT-2 ranks with RoBERTa's specials at ids 0-3 and `<s> $A </s>`."""
    # The first ROBERTA_RANKS ranks of GPT-2's byte-level BPE: a genuine BPE with fewer merges, which
    # keeps the fixture checkpoints small (embedding rows scale with the vocabulary).
    src = os.path.join(ASSETS, "whisper/gpt2.tiktoken")
    small = os.path.join("/tmp", "gpt2-small.tiktoken")
    with open(src) as f, open(small, "w") as g:
        g.writelines(f.readlines()[:ROBERTA_RANKS])
    vocab, merges = tiktoken_vocab_merges(small)
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    full = {s: i for i, s in enumerate(specials)}
    for k, v in vocab.items():
        full[k] = v + len(specials)
    full["<mask>"] = len(full)
    tok = Tokenizer(models.BPE(full, merges, unk_token=None, fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True,
                                                      add_prefix_space=False)
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials + ["<mask>"]])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                   cls_token="<s>", pad_token="<pad>", unk_token="<unk>", mask_token="<mask>",
                                   model_max_length=128)
    return fast


def bert_tokenizer():
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(os.path.join(ASSETS, "bert-uncased-tokenizer"))


def tokenizer_reference(tok, corpus):
    cases = []
    for text in corpus:
        with_special = tok(text, add_special_tokens=True)["input_ids"]
        without = tok(text, add_special_tokens=False)["input_ids"]
        cases.append({"text": text, "ids": with_special, "ids_no_special": without,
                      "decoded": tok.decode(without, skip_special_tokens=False),
                      "decoded_skip_special": tok.decode(with_special, skip_special_tokens=True)})
    trunc = tok(corpus[-1], add_special_tokens=True, truncation=True, max_length=16)["input_ids"]
    return {"cases": cases, "truncation": {"text": corpus[-1], "max_length": 16, "ids": trunc}}


@part("tokenizers")
def make_tokenizers():
    # Each reference names the tokenizer.json it was computed from: the BERT one is read from
    # shared/assets, the byte-level BPE ones from the model fixtures that carry them (no copies).
    base = os.path.join(OUT, "tokenizers")
    for name, tok, source in [
            ("bert-uncased", bert_tokenizer(), "shared/assets/bert-uncased-tokenizer/tokenizer.json"),
            ("roberta-bpe", roberta_style_tokenizer(), "tests/fixtures/models/roberta-cls/tokenizer.json"),
            ("whisper-multilingual", whisper_tokenizer(False),
             "tests/fixtures/models/whisper-tiny-random-f32/tokenizer.json")]:
        ref = tokenizer_reference(tok, TOKENIZER_CORPUS)
        ref["tokenizer_json"] = source
        write_json(os.path.join(base, name + ".reference.json"), ref)


# ---------------------------------------------------------------------------------------------
# Embedding models

def randomise_layernorms(model, gen):
    for m in model.modules():
        if isinstance(m, torch.nn.LayerNorm):
            with torch.no_grad():
                m.weight.copy_(1.0 + 0.2 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))


def save_tokenizer(tok, d):
    tok.save_pretrained(d)
    for extra in ["vocab.json", "merges.txt", "added_tokens.json"]:
        p = os.path.join(d, extra)
        if os.path.exists(p):
            os.remove(p)


def embedding_fixture(name, arch_cls, cfg, tok, pooling, normalize, dtype=torch.float32, shard=None,
                      extra_config=None, seed=1):
    from sentence_transformers import SentenceTransformer, models as st_models
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    d = os.path.join(OUT, "models", name)
    if os.path.exists(d):
        shutil.rmtree(d)
    raw = d + ".raw"
    model = arch_cls(cfg)
    randomise_layernorms(model, gen)
    model = model.to(dtype)
    kw = {"max_shard_size": shard} if shard else {}
    model.save_pretrained(raw, safe_serialization=True, **kw)
    save_tokenizer(tok, raw)
    tr = st_models.Transformer(raw, max_seq_length=64, model_args={"dtype": torch.float32})
    mods = [tr, st_models.Pooling(cfg.hidden_size, pooling_mode=pooling)]
    if normalize:
        mods.append(st_models.Normalize())
    st = SentenceTransformer(modules=mods, device="cpu")
    st.save(d)
    shutil.rmtree(raw)
    # sentence-transformers re-saves the transformer in float32; put the original weights back so the
    # checkpoint really is bf16 / sharded as intended.
    for f in os.listdir(d):
        if f.startswith("model") and (f.endswith(".safetensors") or f.endswith(".index.json")):
            os.remove(os.path.join(d, f))
    model.save_pretrained(d, safe_serialization=True, **kw)
    if os.path.exists(os.path.join(d, "README.md")):
        os.remove(os.path.join(d, "README.md"))
    if extra_config:
        cp = os.path.join(d, "config.json")
        c = json.load(open(cp))
        c.update(extra_config)
        write_json(cp, c)
    # Reference: reload exactly as a user would, in float32.
    st2 = SentenceTransformer(d, device="cpu", model_kwargs={"dtype": torch.float32})
    st2.eval()
    texts = MODEL_TEXTS
    with torch.no_grad():
        emb = st2.encode(texts, batch_size=4, convert_to_numpy=True, normalize_embeddings=False)
    feats = st2.tokenize(texts)
    ids = [[int(t) for t, m in zip(row, mask) if m] for row, mask in zip(feats["input_ids"].tolist(),
                                                                           feats["attention_mask"].tolist())]
    full_ids = [st2.tokenizer(t, add_special_tokens=True)["input_ids"] for t in texts]
    cases = []
    for t, e, i, fi in zip(texts, emb, ids, full_ids):
        cases.append({"text": t, "token_ids": i, "truncated": len(fi) > len(i), "full_length": len(fi),
                      "embedding": [float(x) for x in e]})
    write_json(os.path.join(OUT, "models", name + ".reference.json"),
               {"model": name, "architecture": cfg.architectures[0] if cfg.architectures else arch_cls.__name__,
                "pooling": pooling, "normalize": normalize, "max_seq_length": st2.max_seq_length,
                "dtype": str(dtype).replace("torch.", ""), "cases": cases})
    print(f"   {name}: dim={emb.shape[1]} files={sorted(os.listdir(d))}")


@part("embedding-models")
def make_embedding_models():
    from transformers import (BertConfig, BertModel, BertForMaskedLM, RobertaConfig, RobertaModel,
                              XLMRobertaConfig, XLMRobertaModel)
    btok = bert_tokenizer()
    rtok = roberta_style_tokenizer()
    common = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                  initializer_range=0.08, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    cfg = BertConfig(vocab_size=btok.vocab_size, max_position_embeddings=64, type_vocab_size=2, **common)
    cfg.architectures = ["BertModel"]
    embedding_fixture("bert-mean-norm", BertModel, cfg, btok, "mean", True, seed=11,
                      extra_config={"is_matryoshka": True, "matryoshka_dimensions": [8, 16, 32]})
    cfg = BertConfig(vocab_size=btok.vocab_size, max_position_embeddings=64, hidden_act="gelu_new",
                     **common)
    cfg.architectures = ["BertForMaskedLM"]
    embedding_fixture("bert-mlm-sharded-lasttoken", BertForMaskedLM, cfg, btok, "lasttoken", True,
                      dtype=torch.float16, shard="600KB", seed=12)
    cfg = RobertaConfig(vocab_size=len(rtok), max_position_embeddings=66, pad_token_id=1, bos_token_id=0,
                        eos_token_id=2, type_vocab_size=1, **common)
    cfg.architectures = ["RobertaModel"]
    embedding_fixture("roberta-cls", RobertaModel, cfg, rtok, "cls", False, seed=13)
    cfg = XLMRobertaConfig(vocab_size=len(rtok), max_position_embeddings=66, pad_token_id=1, bos_token_id=0,
                           eos_token_id=2, type_vocab_size=1, **common)
    cfg.architectures = ["XLMRobertaModel"]
    embedding_fixture("xlmr-bf16-max", XLMRobertaModel, cfg, rtok, "max", False, dtype=torch.bfloat16,
                      seed=14)


# ---------------------------------------------------------------------------------------------
# SentencePiece Unigram tokenizers (the XLM-RoBERTa family: multilingual-e5, bge-m3, paraphrase-multilingual)
#
# A small Unigram model is trained with sentencepiece (nmt_nfkc normalisation, as XLM-R's) on the text
# below and converted to tokenizer.json three ways: transformers' XLMRobertaTokenizerFast (the layout
# of current XLM-R files: Precompiled + WhitespaceSplit/Metaspace), the older converter layout
# (Precompiled + Strip + Replace, Metaspace with `add_prefix_space`), and a byte_fallback model in the
# Llama/T5 style (no pre-tokenizer, ByteFallback/Fuse/Strip decoders).

SPM_SENTENCES = [
    "The quick brown fox jumps over the lazy dog while the cat sleeps on the warm windowsill.",
    "Multilingual sentence embeddings map texts in many languages into one shared vector space.",
    "Search engines rank passages by their similarity to the query, then rerank the best ones.",
    "She sells sea shells by the sea shore, and the shells she sells are surely sea shells.",
    "In 2024 the company reported revenue of $3.5 billion, up 12% from 2023.",
    "Call me at +1 (555) 010-2030 or write to info@example.com before 5:30 pm.",
    "Der schnelle braune Fuchs springt über den faulen Hund, während die Katze schläft.",
    "Die Straße war nass, und die Größe der Äpfel überraschte alle Käufer auf dem Markt.",
    "Sprachmodelle lernen Bedeutungen aus großen Mengen von Texten in vielen Sprachen.",
    "Le renard brun rapide saute par-dessus le chien paresseux pendant que le chat dort.",
    "À l'été, nous irons à la plage ; où est-ce que tu veux aller ? C'est déjà décidé.",
    "Les élèves étudient la géographie, l'histoire et les mathématiques au lycée.",
    "El rápido zorro marrón salta sobre el perro perezoso mientras el gato duerme.",
    "¿Dónde está la biblioteca? ¡Qué día tan bonito para pasear por la ciudad!",
    "O rápido raposa marrom pula sobre o cão preguiçoso; a informação está disponível.",
    "Il veloce volpe marrone salta sopra il cane pigro, e la città è piena di gente.",
    "Быстрая коричневая лиса прыгает через ленивую собаку, пока кошка спит.",
    "Москва является столицей России, а Санкт-Петербург называют северной столицей.",
    "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Швидка руда лисиця перестрибує через ледачого пса.",
    "Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο.",
    "الثعلب البني السريع يقفز فوق الكلب الكسول بينما القطة نائمة.",
    "مرحبا بكم في عالم معالجة اللغات الطبيعية والتعلم الآلي.",
    "השועל החום המהיר קופץ מעל הכלב העצלן.",
    "तेज़ भूरी लोमड़ी आलसी कुत्ते के ऊपर कूदती है।",
    "भाषा मॉडल कई भाषाओं में पाठ को समझते हैं।",
    "北京是中国的首都，上海是最大的城市。我们喜欢学习自然语言处理。",
    "今天天气很好，我们去公园散步吧。机器学习和深度学习正在改变世界。",
    "東京は日本の首都です。私は毎朝コーヒーを飲みます。",
    "ひらがなとカタカナと漢字を使って日本語を書きます。",
    "서울은 한국의 수도입니다. 저는 매일 아침 커피를 마십니다.",
    "한국어와 영어를 함께 사용하는 문장도 많습니다.",
    "Hızlı kahverengi tilki tembel köpeğin üzerinden atlar.",
    "Szybki brązowy lis przeskakuje nad leniwym psem.",
    "Příliš žluťoučký kůň úpěl ďábelské ódy.",
    "Snabba bruna räven hoppar över den lata hunden.",
    "De snelle bruine vos springt over de luie hond.",
    "Nhanh chóng con cáo nâu nhảy qua con chó lười.",
    "สุนัขจิ้งจอกสีน้ำตาลกระโดดข้ามสุนัขขี้เกียจ",
    "I'm happy 😀, you're great 🎉 and we'll win 👍!",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000 3.14 2.718 1,000,000 42.",
    "Dates like 2026-11-27, 27/11/2026 and 11.27.2026 appear in many documents.",
    "Ünïcödé text with ﬁ ligatures, ① circled digits, ｆｕｌｌｗｉｄｔｈ letters and ™ signs.",
]

SPM_WORDS = {
    "en": ("time year people way day man thing woman life child world school state family student group country "
           "problem hand part place case week company system program question work government number night point "
           "home water room mother area money story fact month lot right study book eye job word business issue "
           "side kind head house service friend father power hour game line end member law car city community name "
           "president team minute idea kid body information back parent face others level office door health person "
           "art war history party result change morning reason research girl guy moment air teacher force education "
           "embedding vector model language search query passage document retrieval similarity sentence token "
           "running jumped quickly unbelievable national international understanding together"),
    "de": ("Zeit Jahr Mensch Weg Tag Mann Ding Frau Leben Kind Welt Schule Staat Familie Gruppe Land Problem Hand "
           "Teil Platz Woche Firma System Frage Arbeit Regierung Zahl Nacht Punkt Haus Wasser Zimmer Mutter Geld "
           "Geschichte Monat Buch Auge Wort Geschäft Freund Vater Stunde Spiel Stadt Gesetz Straße Größe Äpfel "
           "schön grün über müssen können möchten Übersetzung Wissenschaft Zusammenarbeit Bundesregierung"),
    "fr": ("temps année personne chemin jour homme chose femme vie enfant monde école état famille groupe pays "
           "problème main partie place semaine entreprise système question travail gouvernement nombre nuit point "
           "maison eau chambre mère argent histoire mois livre œil mot affaire ami père heure jeu ville loi été "
           "déjà très où à ça français élève forêt fenêtre hôpital château garçon cœur naïve"),
    "es": ("tiempo año persona camino día hombre cosa mujer vida niño mundo escuela estado familia grupo país "
           "problema mano parte lugar semana empresa sistema pregunta trabajo gobierno número noche punto casa agua "
           "habitación madre dinero historia mes libro ojo palabra negocio amigo padre hora juego ciudad ley "
           "señor mañana corazón canción también información"),
    "ru": ("время год человек путь день мужчина вещь женщина жизнь ребёнок мир школа государство семья группа "
           "страна проблема рука часть место неделя компания система вопрос работа правительство число ночь точка "
           "дом вода комната мать деньги история месяц книга глаз слово дело друг отец час игра город закон "
           "хорошо большой новый первый последний русский язык"),
    "zh": "时间 年 人 路 天 男人 东西 女人 生活 孩子 世界 学校 国家 家庭 学生 问题 手 地方 公司 系统 工作 政府 数字 晚上 家 水 房间 母亲 钱 故事 月 书 眼睛 朋友 父亲 小时 城市 法律 语言 模型 向量 搜索",
    "ja": "時間 年 人 道 日 男 物 女 生活 子供 世界 学校 国 家族 学生 問題 手 場所 会社 仕事 政府 番号 夜 家 水 部屋 母 お金 物語 月 本 目 言葉 友達 父 ゲーム 都市 ことば です ます した",
    "ko": "시간 년 사람 길 날 남자 물건 여자 생활 아이 세계 학교 나라 가족 학생 문제 손 장소 회사 일 정부 숫자 밤 집 물 방 어머니 돈 이야기 달 책 눈 말 친구 아버지",
    "ar": "وقت سنة شخص طريق يوم رجل شيء امرأة حياة طفل عالم مدرسة دولة عائلة مجموعة بلد مشكلة يد جزء مكان أسبوع شركة نظام سؤال عمل حكومة رقم ليلة بيت ماء غرفة أم مال قصة شهر كتاب عين كلمة صديق أب",
    "hi": "समय साल व्यक्ति रास्ता दिन आदमी चीज़ औरत जीवन बच्चा दुनिया स्कूल राज्य परिवार समूह देश समस्या हाथ हिस्सा जगह सप्ताह कंपनी प्रणाली सवाल काम सरकार संख्या रात घर पानी",
    "el": "χρόνος έτος άνθρωπος δρόμος ημέρα άνδρας πράγμα γυναίκα ζωή παιδί κόσμος σχολείο κράτος οικογένεια ομάδα χώρα πρόβλημα χέρι μέρος",
}


def spm_training_lines():
    import random
    rng = random.Random(7)
    lines = list(SPM_SENTENCES) * 3
    for lang, words in SPM_WORDS.items():
        ws = words.split()
        sep = "" if lang in ("zh", "ja") else " "
        for _ in range(300):
            n = rng.randint(4, 14)
            s = sep.join(rng.choice(ws) for _ in range(n))
            if lang not in ("zh", "ja", "ko", "ar", "hi") and rng.random() < 0.5:
                s = s[0].upper() + s[1:]
            s += rng.choice([".", "!", "?", ",", ";", "", "。" if sep == "" else "."])
            if rng.random() < 0.2:
                s += f" {rng.randint(0, 99999)}"
            lines.append(s)
    return lines


SPM_CASES = TOKENIZER_CORPUS[:-1] + [
    "Unseen words: blorfticating zyxwv quizzaciously Überschallgeschwindigkeitsflugzeug",
    "Rare scripts: தமிழ் ქართული ᚠᚢᚦ 𓀀 ꦗꦮ ጤና ᏣᎳᎩ",
    "Symbols ⚛ ♞ ∮ ∂x/∂t ≠ ≤ ∞ 𝄞 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛",
    "NFKC: ﬁne ﬂow ① ② ㍻ ™ ½ ² Ⅻ ｶﾀｶﾅ ＡＢＣ１２３ ㈱ ℡",
    "Spaces:\u00a0nbsp\u2003em\u2009thin\u200a hair \u3000 ideographic \u202f narrow",
    "Line\nbreaks\r\nand\rcarriage\u2028separator\u2029paragraph\u0085next",
    "Zero\u200bwidth\u200c\u200djoiners\u2060word\ufeffjoiner\u00adsoft",
    "Combining: q\u0307\u0323 a\u0300\u0301\u0302 e\u0301 \u0301start \u1112\u1161\u11ab 각 o\u0308\u0304",
    "Ｔｈｅ ｑｕｉｃｋ ｂｒｏｗｎ — ｆｕｌｌ　ｗｉｄｔｈ",
    "▁ already ▁▁ metaspace ▁x▁ chars▁",
    "<mask> is masked: the <mask> sat on the mat<mask>",
    "<s>inline</s> <pad> <unk> specials </s>",
    "Price: 12,345.67 € / ¥9800 / £5 — 50% off!!! ??? ... ‘quotes’ “double” „low“ «guillemets»",
    "Deutsch: Größe, Straße, Äpfel, Öl, Übermut, ẞ",
    "Français : « Où est-ce que tu vas ? » — l'été, à bientôt…",
    "Русский: Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "العربية: مرحبا بالعالم، كيف حالك؟ ١٢٣٤٥ مُحَمَّد",
    "日本語のテキスト：ひらがな、カタカナ、漢字。ﾊﾝｶｸ ｶﾞｷﾞ",
    "中文：我爱自然语言处理！（测试）龘𠀀𪚥",
    "한국어 텍스트와 English 혼합 ㄱㄴㄷ",
    "Emoji sequences: 🏳️‍🌈 👩🏾‍💻 🤷‍♂️ 1️⃣ #️⃣ ☺︎ ✌🏻",
    "\t\t  \n  ",
    "x" * 300,
    "a" + " " * 50 + "b",
    "don't can't won't it's y'all",
    "UPPER lower MiXeD İstanbul ǅ ß ﬀ",
    "\u0001\u0002\u007f control \u001b[0m escape",
    "Hello, world! Bonjour le monde! Hallo Welt! Привет, мир! こんにちは世界 你好，世界 안녕하세요 세계",
    TOKENIZER_CORPUS[-1],
]


def spm_train(prefix, vocab_size, byte_fallback):
    import sentencepiece as spm
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(spm_training_lines()), model_prefix=prefix, model_type="unigram",
        vocab_size=vocab_size, normalization_rule_name="nmt_nfkc", byte_fallback=byte_fallback,
        character_coverage=0.9995, hard_vocab_limit=False, num_threads=1, minloglevel=2)
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    print(f"   sentencepiece {prefix}: {sp.get_piece_size()} pieces")
    return prefix + ".model", sp


def precompiled_charsmap(tokenizer_json):
    def walk(n):
        if isinstance(n, dict):
            if n.get("type") == "Precompiled":
                return n["precompiled_charsmap"]
            for v in n.values():
                r = walk(v)
                if r:
                    return r
        elif isinstance(n, list):
            for v in n:
                r = walk(v)
                if r:
                    return r
        return None
    return walk(tokenizer_json.get("normalizer"))


def xlmr_unigram_tokenizer(model_file, sp):
    """transformers' own conversion of a SentencePiece model into XLM-R's fast tokenizer."""
    import transformers
    cls = getattr(transformers, "XLMRobertaTokenizerFast", None) or transformers.XLMRobertaTokenizer
    try:
        tok = cls(vocab_file=model_file)
        j = json.loads(tok.backend_tokenizer.to_str())
    except Exception:
        traceback.print_exc()
        j = {"model": {"type": "failed"}, "normalizer": None}
    if j["model"]["type"] != "Unigram" or not precompiled_charsmap(j):
        # Conversion by hand, as transformers' XLMRobertaConverter does.
        print("   vocab_file conversion gave", j["model"]["type"], json.dumps(j["normalizer"])[:200])
        vocab = ([("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] +
                 [(sp.id_to_piece(i), sp.get_score(i)) for i in range(3, sp.get_piece_size())] + [("<mask>", 0.0)])
        from transformers.convert_slow_tokenizer import import_protobuf
        pb = import_protobuf()
        proto = pb.ModelProto()
        proto.ParseFromString(open(model_file, "rb").read())
        tok = transformers.XLMRobertaTokenizer(vocab=vocab,
                                               _spm_precompiled_charsmap=proto.normalizer_spec.precompiled_charsmap)
        j = json.loads(tok.backend_tokenizer.to_str())
    assert j["model"]["type"] == "Unigram" and precompiled_charsmap(j)
    assert len(tok) == sp.get_piece_size() + 2, (len(tok), sp.get_piece_size())
    print("   XLM-R tokenizer:", json.dumps({k: j[k] for k in ["pre_tokenizer", "decoder", "post_processor"]})[:600])
    print("   normalizer:", json.dumps(j["normalizer"])[:100])
    # Against sentencepiece itself (fairseq ids are spm ids + 1, spm's unk 0 becomes 3): informational.
    diff = 0
    for text in SPM_CASES:
        want = [i + 1 if i else 3 for i in sp.encode(text)]
        if tok(text, add_special_tokens=False)["input_ids"] != want:
            diff += 1
    print(f"   fast vs sentencepiece: {diff} of {len(SPM_CASES)} texts differ")
    return tok


def keep_tokenizer_files(d):
    for f in os.listdir(d):
        if f not in ("tokenizer.json", "tokenizer_config.json"):
            os.remove(os.path.join(d, f))


def check_against_raw(tok, path):
    """The python tokenizer must agree with tokenizers' own reading of the saved tokenizer.json."""
    raw = Tokenizer.from_file(path)
    bad = [t for t in SPM_CASES if raw.encode(t).ids != tok(t)["input_ids"]]
    print(f"   {path}: {len(bad)} texts differ from tokenizers.Tokenizer.from_file", bad[:3])


SPM_WORK = "/tmp/spm-fixtures"
_SPM_BASE = []


def spm_base():
    """The trained Unigram model and its XLM-R fast tokenizer (made once, shared by the spm parts)."""
    if not _SPM_BASE:
        os.makedirs(SPM_WORK, exist_ok=True)
        model_file, sp = spm_train(os.path.join(SPM_WORK, "unigram"), 2500, False)
        tok = xlmr_unigram_tokenizer(model_file, sp)
        j = json.loads(tok.backend_tokenizer.to_str())
        charsmap = base64.b64decode(precompiled_charsmap(j))
        vocab = [(p, s) for p, s in j["model"]["vocab"]]
        _SPM_BASE.extend([tok, charsmap, vocab])
    return _SPM_BASE


@part("spm-unigram")
def make_spm_unigram():
    from transformers import AutoTokenizer, XLMRobertaConfig, XLMRobertaModel
    tok, _, _ = spm_base()

    # The embedding model (the tokenizer travels with it) and the tokenizer reference read from it.
    name = "xlmr-unigram-mean"
    common = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                  initializer_range=0.08, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    cfg = XLMRobertaConfig(vocab_size=len(tok), max_position_embeddings=66, pad_token_id=1, bos_token_id=0,
                           eos_token_id=2, type_vocab_size=1, **common)
    cfg.architectures = ["XLMRobertaModel"]
    embedding_fixture(name, XLMRobertaModel, cfg, tok, "mean", True, seed=15)
    d = os.path.join(OUT, "models", name)
    for extra in ["sentencepiece.bpe.model", "special_tokens_map.json", "added_tokens.json"]:
        if os.path.exists(os.path.join(d, extra)):
            os.remove(os.path.join(d, extra))
    loaded = AutoTokenizer.from_pretrained(d)
    check_against_raw(loaded, os.path.join(d, "tokenizer.json"))
    ref = tokenizer_reference(loaded, SPM_CASES)
    ref["tokenizer_json"] = f"tests/fixtures/models/{name}/tokenizer.json"
    write_json(os.path.join(OUT, "tokenizers", "xlmr-unigram.reference.json"), ref)


@part("spm-unigram-legacy")
def make_spm_unigram_legacy():
    # The older converter layout with the legacy Metaspace fields (`add_prefix_space`).
    from tokenizers import normalizers, Regex
    _, charsmap, vocab = spm_base()
    t = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    t.normalizer = normalizers.Sequence([normalizers.Precompiled(charsmap), normalizers.Strip(left=False, right=True),
                                         normalizers.Replace(Regex(" {2,}"), "▁")])
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    t.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    t.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
                                                     special_tokens=[("<s>", 0), ("</s>", 2)])
    t.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in ["<s>", "<pad>", "</s>", "<unk>"]] +
                         [AddedToken("<mask>", special=True, lstrip=True, normalized=False)])
    d = os.path.join(OUT, "tokenizers", "xlmr-unigram-legacy")
    os.makedirs(d, exist_ok=True)
    fast = PreTrainedTokenizerFast(tokenizer_object=t, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                   cls_token="<s>", pad_token="<pad>", unk_token="<unk>", mask_token="<mask>")
    fast.save_pretrained(d)
    keep_tokenizer_files(d)
    path = os.path.join(d, "tokenizer.json")
    j = json.load(open(path, encoding="utf-8"))
    for key in ["pre_tokenizer", "decoder"]:
        j[key] = {"type": "Metaspace", "replacement": "▁", "add_prefix_space": True}
    write_json(path + ".legacy", j)
    try:
        Tokenizer.from_file(path + ".legacy")
        os.replace(path + ".legacy", path)
    except Exception as e:  # this tokenizers no longer reads the legacy fields: keep the current ones
        print("   legacy Metaspace fields not readable:", e)
        os.remove(path + ".legacy")
    fast = PreTrainedTokenizerFast.from_pretrained(d)
    print("   legacy pre_tokenizer:", json.loads(fast.backend_tokenizer.to_str())["pre_tokenizer"])
    check_against_raw(fast, path)
    ref = tokenizer_reference(fast, SPM_CASES)
    ref["tokenizer_json"] = "tests/fixtures/tokenizers/xlmr-unigram-legacy/tokenizer.json"
    write_json(os.path.join(OUT, "tokenizers", "xlmr-unigram-legacy.reference.json"), ref)


@part("spm-byte-fallback")
def make_spm_byte_fallback():
    # byte_fallback, Llama/T5 style: the whole text is one piece, unknown characters become <0xXX> bytes.
    from tokenizers import normalizers
    _, charsmap, _ = spm_base()
    _, spb = spm_train(os.path.join(SPM_WORK, "bytes"), 1000, True)
    vocab_b = [(spb.id_to_piece(i), spb.get_score(i)) for i in range(spb.get_piece_size())]
    t = Tokenizer(models.Unigram(vocab_b, unk_id=0, byte_fallback=True))
    t.normalizer = normalizers.Sequence([normalizers.Precompiled(charsmap), normalizers.Prepend("▁"),
                                         normalizers.Replace(" ", "▁")])
    t.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                   decoders.Strip(" ", 1, 0)])
    t.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)])
    t.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in ["<unk>", "<s>", "</s>"]])
    d = os.path.join(OUT, "tokenizers", "spm-byte-fallback")
    os.makedirs(d, exist_ok=True)
    fast = PreTrainedTokenizerFast(tokenizer_object=t, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    fast.save_pretrained(d)
    keep_tokenizer_files(d)
    fast = PreTrainedTokenizerFast.from_pretrained(d)
    check_against_raw(fast, os.path.join(d, "tokenizer.json"))
    ref = tokenizer_reference(fast, SPM_CASES)
    ref["tokenizer_json"] = "tests/fixtures/tokenizers/spm-byte-fallback/tokenizer.json"
    write_json(os.path.join(OUT, "tokenizers", "spm-byte-fallback.reference.json"), ref)


# ---------------------------------------------------------------------------------------------
# Whisper

def read_wav(path):
    with wave.open(path) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
        return data, w.getframerate()


def non_speech_tokens(tok):
    symbols = list('"#()*+/:;<=>@[\\]^_`{|}~「」『』')
    symbols += "<< >> <<< >>> -- --- -( -[ (' (\" (( )) ((( ))) [[ ]] {{ }} ♪♪ ♪♪♪".split()
    miscellaneous = set("♩♪♫♬♭♮♯")
    result = {tok.encode(" -", add_special_tokens=False)[0], tok.encode(" '", add_special_tokens=False)[0]}
    for symbol in symbols + list(miscellaneous):
        for tokens in [tok.encode(symbol, add_special_tokens=False), tok.encode(" " + symbol, add_special_tokens=False)]:
            if len(tokens) == 1 or symbol in miscellaneous:
                result.add(tokens[0])
    return sorted(result)


def whisper_generation_config(tok, with_yue):
    langs = LANGUAGES + (["yue"] if with_yue else [])
    ids = lambda s: tok.convert_tokens_to_ids(s)
    return {
        "bos_token_id": 50257, "eos_token_id": 50257, "pad_token_id": 50257,
        "decoder_start_token_id": 50258,
        "begin_suppress_tokens": [220, 50257],
        "suppress_tokens": non_speech_tokens(tok) + [ids("<|startoftranscript|>"), ids("<|translate|>"),
                                                     ids("<|transcribe|>"), ids("<|startoflm|>"),
                                                     ids("<|startofprev|>"), ids("<|nocaptions|>")],
        "forced_decoder_ids": [[1, None], [2, ids("<|transcribe|>")]],
        "is_multilingual": True,
        "lang_to_id": {f"<|{l}|>": ids(f"<|{l}|>") for l in langs},
        "task_to_id": {"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")},
        "no_timestamps_token_id": ids("<|notimestamps|>"),
        "prev_sot_token_id": ids("<|startofprev|>"),
        "max_initial_timestamp_index": 50,
        "max_length": 448,
        "return_timestamps": False,
        "alignment_heads": [[1, 0], [1, 2]],
    }


MEL_FRAMES_KEPT = 1200


def whisper_fixture(name, n_mels, with_yue, dtype, seed):
    from transformers import WhisperConfig, WhisperForConditionalGeneration, WhisperFeatureExtractor, \
        WhisperProcessor, GenerationConfig
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    tok = whisper_tokenizer(with_yue)
    vocab = 51866 if with_yue else 51865
    assert len(tok) == vocab, (len(tok), vocab)
    cfg = WhisperConfig(vocab_size=vocab, num_mel_bins=n_mels, d_model=16, encoder_layers=2, decoder_layers=2,
                        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                        decoder_ffn_dim=64, max_source_positions=1500, max_target_positions=448,
                        init_std=0.25, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
                        decoder_start_token_id=50258, pad_token_id=50257, bos_token_id=50257, eos_token_id=50257,
                        suppress_tokens=None, begin_suppress_tokens=None)
    cfg.architectures = ["WhisperForConditionalGeneration"]
    model = WhisperForConditionalGeneration(cfg)
    randomise_layernorms(model, gen)
    d = os.path.join(OUT, "models", name)
    if os.path.exists(d):
        shutil.rmtree(d)
    model.to(dtype).save_pretrained(d, safe_serialization=True)
    gc = whisper_generation_config(tok, with_yue)
    write_json(os.path.join(d, "generation_config.json"), gc)
    tok.save_pretrained(d)
    for extra in ["vocab.json", "merges.txt", "added_tokens.json", "normalizer.json"]:
        p = os.path.join(d, extra)
        if os.path.exists(p):
            os.remove(p)
    fe = WhisperFeatureExtractor(feature_size=n_mels)
    fe.save_pretrained(d)
    # Reference in float32 from the saved weights.
    m = WhisperForConditionalGeneration.from_pretrained(d, dtype=torch.float32).eval()
    m.generation_config = GenerationConfig.from_pretrained(d)
    audio, sr = read_wav(os.path.join(ASSETS, "whisper/jfk.wav"))
    assert sr == 16000
    feats = fe(audio, sampling_rate=16000, return_tensors="pt").input_features
    mel = feats[0].numpy().astype("<f4")
    mel = np.ascontiguousarray(mel[:, :MEL_FRAMES_KEPT])  # the speech and some padding; keeps it small
    mel.tofile(os.path.join(OUT, "models", f"{name}.jfk-mel.f32"))
    cases = {}
    runs = {
        "transcribe_en": dict(language="en", task="transcribe"),
        "translate_fr": dict(language="fr", task="translate"),
        "timestamps_en": dict(language="en", task="transcribe", return_timestamps=True),
        "detect_language": dict(task="transcribe"),
    }
    with torch.no_grad():
        for key, kw in runs.items():
            try:
                outs = m.generate(feats, max_new_tokens=24, **kw)
                seq = outs.sequences if hasattr(outs, "sequences") else outs
                toks = [int(x) for x in seq[0].tolist()]
                # Whether generate() returned the forced prompt too (it varies across versions).
                cases[key] = {"kwargs": kw, "tokens": toks, "includes_prompt": bool(toks and toks[0] == 50258)}
            except Exception as e:
                traceback.print_exc()
                cases[key] = {"kwargs": kw, "error": repr(e)}
        # Language detection probabilities straight from the decoder's first step.
        enc = m.model.encoder(feats).last_hidden_state
        logits = m(encoder_outputs=(enc,), decoder_input_ids=torch.tensor([[50258]])).logits[0, -1]
        lang_ids = list(gc["lang_to_id"].values())
        lp = torch.log_softmax(logits[lang_ids], dim=-1)
        best = int(torch.argmax(lp))
        cases["language_probs"] = {"best_token": lang_ids[best],
                                   "top5": [[lang_ids[i], float(lp[i])] for i in torch.topk(lp, 5).indices.tolist()]}
    write_json(os.path.join(OUT, "models", name + ".reference.json"),
               {"model": name, "n_mels": n_mels, "dtype": str(dtype).replace("torch.", ""), "audio": "jfk.wav",
                "mel_file": f"{name}.jfk-mel.f32", "mel_shape": list(mel.shape),
                "mel_note": "first mel_shape[1] frames of the 3000-frame (30 s) padded input", "max_new_tokens": 24,
                "generate": cases})
    print(f"   {name}: {json.dumps({k: v.get('tokens', v.get('error', v))[:12] if isinstance(v, dict) and 'tokens' in v else v for k, v in cases.items()})[:600]}")


@part("whisper")
def make_whisper():
    whisper_fixture("whisper-tiny-random-f32", 80, False, torch.float32, seed=21)
    whisper_fixture("whisper-v3-random-f16", 128, True, torch.float16, seed=22)


# ---------------------------------------------------------------------------------------------
# FunASR-style CTC model (the example plugin under examples/funasr_ctc/)
#
# Kaldi log filterbank (80 bins, 25/10 ms, povey window, pre-emphasis 0.97, DC removed, no dither,
# input scaled to the int16 range as FunASR's WavFrontend does), low-frame-rate stacking (m=7, n=6),
# global CMVN (tensors in the checkpoint), a SAN-M-like pre-norm encoder (self-attention + FSMN memory
# block), a CTC head and greedy decoding. Written out with explicit torch code so every step can be read
# next to the C++ (examples/funasr_ctc/).

CTC_VOCAB = ["<blank>", "<unk>", "\u2581"] + [chr(c) for c in range(ord("a"), ord("z") + 1)] + ["'"]


def kaldi_fbank_explicit(wave16k):
    """wave16k: float64 tensor in the int16 range. Returns float32 [frames, 80]."""
    import math
    x = wave16k.to(torch.float64)
    flen, fshift, nfft, nbins = 400, 160, 512, 80
    n = x.numel()
    frames = 1 + (n - flen) // fshift
    idx = torch.arange(frames)[:, None] * fshift + torch.arange(flen)[None, :]
    f = x[idx]
    f = f - f.mean(dim=1, keepdim=True)
    f = torch.cat([f[:, :1] - 0.97 * f[:, :1], f[:, 1:] - 0.97 * f[:, :-1]], dim=1)
    win = (0.5 - 0.5 * torch.cos(2 * math.pi * torch.arange(flen, dtype=torch.float64) / (flen - 1))) ** 0.85
    f = f * win
    spec = torch.fft.rfft(f, n=nfft).abs() ** 2  # [frames, 257]

    def mel(hz):
        return 1127.0 * math.log(1.0 + hz / 700.0)
    low, high = 20.0, 8000.0
    mlow, mhigh = mel(low), mel(high)
    delta = (mhigh - mlow) / (nbins + 1)
    banks = torch.zeros(nbins, nfft // 2 + 1, dtype=torch.float64)
    for b in range(nbins):
        l, c, r = mlow + b * delta, mlow + (b + 1) * delta, mlow + (b + 2) * delta
        for i in range(nfft // 2):  # Kaldi's banks leave out the Nyquist bin
            m = mel(16000.0 / nfft * i)
            if l < m < r:
                banks[b, i] = (m - l) / (c - l) if m <= c else (r - m) / (r - c)
    e = spec @ banks.T
    return torch.log(torch.clamp(e, min=float(np.finfo(np.float32).eps))).to(torch.float32)


def apply_lfr(x, m, n):
    """FunASR's apply_lfr: left-pad (m-1)//2 copies of frame 0, stack m frames every n, pad the tail with the last frame."""
    T = x.shape[0]
    T_lfr = int(np.ceil(T / n))
    x = torch.vstack([x[0:1].repeat((m - 1) // 2, 1), x])
    T = T + (m - 1) // 2
    rows = []
    for i in range(T_lfr):
        if m <= T - i * n:
            rows.append(x[i * n:i * n + m].reshape(-1))
        else:
            frame = x[i * n:].reshape(-1)
            for _ in range(m - (T - i * n)):
                frame = torch.cat([frame, x[-1]])
            rows.append(frame)
    return torch.vstack(rows)


def sinusoidal_pe(T, d):
    """FunASR's SinusoidalPositionEncoder (positions 1..T): [sin | cos] halves."""
    pos = torch.arange(1, T + 1, dtype=torch.float32)
    inc = torch.log(torch.tensor([10000.0])) / (d / 2 - 1)
    inv = torch.exp(torch.arange(d // 2, dtype=torch.float32) * -inc)
    t = pos[:, None] * inv[None, :]
    return torch.cat([torch.sin(t), torch.cos(t)], dim=1)


class CtcLayer(torch.nn.Module):
    def __init__(self, d, heads, ff, k):
        super().__init__()
        self.heads, self.d = heads, d
        self.norm1 = torch.nn.LayerNorm(d, eps=1e-5)
        self.self_attn = torch.nn.Module()
        self.self_attn.linear_q_k_v = torch.nn.Linear(d, 3 * d)
        self.self_attn.fsmn_block = torch.nn.Conv1d(d, d, k, groups=d, bias=False)
        self.self_attn.linear_out = torch.nn.Linear(d, d)
        self.norm2 = torch.nn.LayerNorm(d, eps=1e-5)
        self.feed_forward = torch.nn.Module()
        self.feed_forward.w_1 = torch.nn.Linear(d, ff)
        self.feed_forward.w_2 = torch.nn.Linear(ff, d)
        self.k = k

    def forward(self, x):  # x [T, d]
        T, d, H = x.shape[0], self.d, self.heads
        h = self.norm1(x)
        q, k, v = self.self_attn.linear_q_k_v(h).split(d, dim=1)
        hd = d // H
        qh, kh, vh = (t.reshape(T, H, hd).transpose(0, 1) for t in (q, k, v))
        a = torch.softmax(qh @ kh.transpose(1, 2) / math_sqrt(hd), dim=-1) @ vh
        a = a.transpose(0, 1).reshape(T, d)
        pad = (self.k - 1) // 2
        mem = self.self_attn.fsmn_block(torch.nn.functional.pad(v.T[None], (pad, self.k - 1 - pad)))[0].T + v
        x = x + self.self_attn.linear_out(a) + mem
        h = self.norm2(x)
        return x + self.feed_forward.w_2(torch.relu(self.feed_forward.w_1(h)))


def math_sqrt(v):
    import math
    return math.sqrt(v)


class CtcModel(torch.nn.Module):
    def __init__(self, feat, d, heads, ff, k, layers, vocab):
        super().__init__()
        self.d = d
        self.frontend = torch.nn.Module()
        self.frontend.register_buffer("cmvn_shift", torch.zeros(feat))
        self.frontend.register_buffer("cmvn_scale", torch.ones(feat))
        self.encoder = torch.nn.Module()
        self.encoder.in_proj = torch.nn.Linear(feat, d)
        self.encoder.layers = torch.nn.ModuleList([CtcLayer(d, heads, ff, k) for _ in range(layers)])
        self.encoder.after_norm = torch.nn.LayerNorm(d, eps=1e-5)
        self.ctc = torch.nn.Module()
        self.ctc.ctc_lo = torch.nn.Linear(d, vocab)

    def encode(self, lfr):
        x = (lfr + self.frontend.cmvn_shift) * self.frontend.cmvn_scale
        x = self.encoder.in_proj(x) * math_sqrt(self.d) + sinusoidal_pe(x.shape[0], self.d)
        for layer in self.encoder.layers:
            x = layer(x)
        return self.encoder.after_norm(x)


def ctc_greedy(ids, blank=0):
    out, prev = [], None
    for i in ids:
        if i != prev and i != blank:
            out.append(i)
        prev = i
    return out


def ctc_text(ids):
    return "".join(CTC_VOCAB[i] for i in ids).replace("\u2581", " ").strip()



def ctc_tokenizer_json(vocab):
    """A tokenizer.json over the CTC vocabulary (BPE without merges, Metaspace), so the model exposes a
    regular fathom Tokenizer; the CTC decode itself uses tokens.json (join, U+2581 -> space, strip)."""
    return {"version": "1.0", "truncation": None, "padding": None,
            "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                              "normalized": False, "special": True} for i, t in enumerate(vocab[:2])],
            "normalizer": None,
            "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
            "post_processor": None,
            "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": {t: i for i, t in enumerate(vocab)}, "merges": []}}


@part("funasr-ctc")
def make_funasr_ctc():
    from safetensors.torch import save_file
    name = "funasr-ctc-random"
    d_model, heads, ff, kernel, layers, m, n = 64, 4, 128, 11, 2, 7, 6
    audio, sr = read_wav(os.path.join(ASSETS, "whisper", "jfk.wav"))
    assert sr == 16000
    wave64 = torch.from_numpy(audio.astype(np.float64)) * 32768.0
    fb = kaldi_fbank_explicit(wave64)
    torchaudio_note = "torchaudio not available"
    try:
        import torchaudio
        ta = torchaudio.compliance.kaldi.fbank(torch.from_numpy(audio)[None] * 32768.0, num_mel_bins=80,
                                               frame_length=25, frame_shift=10, dither=0.0, energy_floor=0.0,
                                               window_type="povey", preemphasis_coefficient=0.97,
                                               remove_dc_offset=True, sample_frequency=16000)
        diff = (ta - fb).abs().max().item()
        torchaudio_note = f"torchaudio {torchaudio.__version__} kaldi.fbank max abs diff {diff:.3g}"
        assert diff < 1e-2, torchaudio_note
    except ImportError:
        pass
    except AttributeError as e:
        torchaudio_note = f"torchaudio without compliance.kaldi ({e})"
    print("   " + torchaudio_note)
    lfr = apply_lfr(fb, m, n)
    feat = lfr.shape[1]
    best = None
    for seed in range(31, 71):
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        model = CtcModel(feat, d_model, heads, ff, kernel, layers, len(CTC_VOCAB)).eval()
        randomise_layernorms(model, gen)
        with torch.no_grad():
            mean, std = lfr.mean(0), lfr.std(0)
            model.frontend.cmvn_shift.copy_(-mean + 0.1 * torch.randn(feat, generator=gen))
            model.frontend.cmvn_scale.copy_(1.0 / (std + 1e-3) * (1.0 + 0.05 * torch.randn(feat, generator=gen)))
            model.ctc.ctc_lo.weight.mul_(8.0)  # spread the logits so the argmax is well separated
            model.ctc.ctc_lo.bias.zero_()
            model.ctc.ctc_lo.bias[0] = 1.5  # blank wins often enough that repeats collapse
            enc = model.encode(lfr)
            logits = model.ctc.ctc_lo(enc)
        top2 = logits.topk(2, dim=1).values
        margin = (top2[:, 0] - top2[:, 1]).min().item()
        ids = logits.argmax(1).tolist()
        nonblank = sum(1 for i in ids if i != 0)
        print(f"   seed {seed}: min top-2 margin {margin:.4f}, {nonblank}/{len(ids)} non-blank frames")
        if 0 < nonblank < len(ids) and (best is None or margin > best[4]):
            best = (seed, model, enc, logits, margin, ids)
    # The C++ logits differ from these by ~1e-4 (float32 rounding); a margin well above that keeps the
    # argmax comparison exact.
    assert best is not None and best[4] > 0.01, "no seed gave a well separated argmax"
    seed, model, enc, logits, margin, ids = best
    d = os.path.join(OUT, "models", name)
    os.makedirs(d, exist_ok=True)
    tensors = {k: v.detach().contiguous().to(torch.float32) for k, v in model.state_dict().items()}
    save_file(tensors, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    write_json(os.path.join(d, "config.json"), {
        "architectures": ["FunASRCTCModel"], "model_type": "funasr_ctc",
        "frontend": {"sample_rate": 16000, "num_mel_bins": 80, "frame_length_ms": 25, "frame_shift_ms": 10,
                     "window": "povey", "preemphasis": 0.97, "remove_dc_offset": True, "dither": 0.0,
                     "low_freq": 20.0, "high_freq": 0.0, "input_scale": 32768.0, "lfr_m": m, "lfr_n": n,
                     "cmvn": "tensors"},
        "encoder": {"input_size": feat, "d_model": d_model, "attention_heads": heads, "linear_units": ff,
                    "num_blocks": layers, "kernel_size": kernel, "layer_norm_eps": 1e-5},
        "vocab_size": len(CTC_VOCAB), "blank_id": 0, "torch_dtype": "float32"})
    write_json(os.path.join(d, "tokens.json"), CTC_VOCAB)
    write_json(os.path.join(d, "tokenizer.json"), ctc_tokenizer_json(CTC_VOCAB))
    greedy = ctc_greedy(ids)
    write_json(os.path.join(OUT, "models", name + ".reference.json"), {
        "audio": "whisper/jfk.wav", "seed": seed, "torchaudio": torchaudio_note,
        "fbank_shape": list(fb.shape), "fbank_first_frames": fb[:4].tolist(),
        "fbank_mean": fb.mean().item(), "fbank_frame_means": fb.mean(1).tolist(),
        "lfr_shape": list(lfr.shape), "lfr_row_means": lfr.mean(1).tolist(),
        "encoder_shape": list(enc.shape), "encoder_mean": enc.mean().item(), "encoder_std": enc.std().item(),
        "encoder_first_row": enc[0].tolist(), "encoder_last_row": enc[-1].tolist(),
        "logits_first_rows": logits[:3].tolist(), "logits_min_margin": margin,
        "argmax_ids": ids, "greedy_ids": greedy, "text": ctc_text(greedy)})
    print(f"   {name}: seed {seed}, fbank {list(fb.shape)}, lfr {list(lfr.shape)}, margin {margin:.3f}, "
          f"text {ctc_text(greedy)!r}")



if FAILURES:
    print("FAILED parts:", FAILURES)
    sys.exit(1)
print("all parts ok")
