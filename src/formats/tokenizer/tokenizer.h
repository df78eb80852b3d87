#pragma once
// A tokenizer loaded from a Hugging Face `tokenizer.json`.
//
// Supported models: WordPiece (BERT family, with the BERT normaliser and pre-tokeniser), BPE (byte-level
// as in RoBERTa / GPT-2 / Whisper, or with unk / byte_fallback / subword prefix and suffix) and SentencePiece
// Unigram (XLM-RoBERTa family: multilingual-e5, bge-m3, ...; with unk fusing and byte_fallback). Normalizers:
// BertNormalizer, Sequence, NFC/NFD/NFKC/NFKD, Lowercase, StripAccents, Strip, Replace, Prepend, Precompiled
// (SentencePiece's precompiled_charsmap).
// Pre-tokenizers: BertPreTokenizer, ByteLevel, Split, Sequence, Whitespace, WhitespaceSplit, Punctuation,
// Digits, Metaspace. Post-processors: TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel,
// Sequence. Decoders: ByteLevel, WordPiece, Sequence, Replace, Strip, Fuse, ByteFallback, Metaspace. Added and special tokens are matched before the model runs, as in
// Hugging Face `tokenizers`. Post-processing templates (`[CLS] $A [SEP]`, `<s> $A </s>`) are applied when
// `add_special_tokens` is set. Ids equal transformers' fast tokenizers (tested against fixtures).
//
// Thread-safety: a loaded Tokenizer is immutable; encode/decode may be called from many threads at once.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace fathom::formats {

struct EncodeOptions {
  bool add_special_tokens = true;     // apply the post-processor template
  std::optional<int> max_length;      // truncate (right side) so the result incl. specials fits
};

// A text pair as a cross-encoder sees it: ids with the post-processor's pair template applied, and the
// token type (segment) id of every position, as transformers' fast tokenizers return them.
struct PairEncoding {
  std::vector<int32_t> ids;
  std::vector<int32_t> type_ids;
};

struct DecodeOptions {
  bool skip_special_tokens = false;  // drop added tokens marked special
  // transformers' clean_up_tokenization_spaces (" ." -> "." ...); unset: the value of
  // tokenizer_config.json beside tokenizer.json (false when absent).
  std::optional<bool> clean_up_tokenization_spaces;
  // Whisper tokenizers (tokenizer_config.json "tokenizer_class" Whisper*) only, as transformers'
  // WhisperTokenizer.decode: timestamp tokens `<|1.23|>` are removed from the text unless this is set, and
  // with skip_special_tokens a leading `<|startofprev|>` prompt is dropped up to `<|startoftranscript|>`.
  bool decode_with_timestamps = false;
};

class TokenizerImpl;

class Tokenizer {
 public:
  // Parses `path` (a tokenizer.json) and, when present, tokenizer_config.json beside it. Errors name the
  // file and the unsupported component type. The file's own "truncation" and "padding" are ignored
  // (transformers overrides them per call); truncation comes from EncodeOptions.
  static Result<std::shared_ptr<const Tokenizer>> load(const std::filesystem::path& path);
  ~Tokenizer();

  // Token ids of `text` (UTF-8; invalid UTF-8 is an kInvalidArgument error).
  Result<std::vector<int32_t>> encode(std::string_view text, const EncodeOptions& options = {}) const;
  // Ids of the pair (`a`, `b`) with the pair template: TemplateProcessing's "pair" (its type ids),
  // BertProcessing ([CLS] A [SEP] B [SEP]; types 0 for A and its [SEP], 1 for B and the last [SEP]),
  // RobertaProcessing (<s> A </s> </s> B </s>; types all 0). `max_length` truncates B only (transformers'
  // truncation="only_second"); kTooLarge when A and the specials alone exceed it. kUnsupported when the
  // tokenizer has no pair template. An empty `b` encodes `a` alone (single template, types 0), as
  // transformers does. Invalid UTF-8 is kInvalidArgument.
  Result<PairEncoding> encode_pair(std::string_view a, std::string_view b,
                                   std::optional<int> max_length = std::nullopt) const;
  // How many special tokens the pair template adds (e.g. 3 for [CLS] A [SEP] B [SEP]); -1 without one.
  int num_special_tokens_to_add_pair() const;
  // Text of `ids`. Byte-level BPE pieces that do not form valid UTF-8 are decoded with U+FFFD.
  // Ids outside the vocabulary are an error.
  // Applies clean_up_tokenization_spaces as tokenizer_config.json says, as transformers' decode does.
  Result<std::string> decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const;
  Result<std::string> decode(const std::vector<int32_t>& ids, const DecodeOptions& options) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::optional<std::string> id_to_token(int32_t id) const;
  // Largest id + 1 (vocabulary plus added tokens).
  int32_t vocab_size() const;
  // How many special tokens the post-processor adds to a single sequence (e.g. 2 for [CLS] ... [SEP]).
  int num_special_tokens_to_add() const;
  // True when `id` is an added token marked special.
  bool is_special(int32_t id) const;

  explicit Tokenizer(std::unique_ptr<TokenizerImpl> impl);

 private:
  std::unique_ptr<TokenizerImpl> impl_;
};

// Drops the trailing U+FFFD characters that decoding a token sequence cut inside a UTF-8 character leaves (for
// text streamed while tokens still arrive).
void trim_trailing_replacement(std::string& text);

}  // namespace fathom::formats
