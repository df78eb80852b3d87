// Fuzzes Tokenizer::encode on arbitrary bytes (as request text reaches it) for the project's real
// tokenizers: BERT WordPiece, byte-level BPE (RoBERTa) and Whisper's multilingual BPE, SentencePiece Unigram
// (XLM-R with its precompiled charsmap, and a byte_fallback one).
// Input: byte 0 picks the tokenizer, byte 1 the options, the rest is the text.
// Checked besides "no crash": ids are inside the vocabulary, max_length is honoured, and the ids decode.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "formats/tokenizer/tokenizer.h"
#include "fuzz_support.h"
#include "fuzz_tokenizers.h"

using fathom::formats::Tokenizer;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fathom::fuzz::Reader in(data, size);
  const Tokenizer& tok = fathom::fuzz::pick_tokenizer(in);
  const uint8_t flags = in.byte();
  fathom::formats::EncodeOptions options;
  options.add_special_tokens = flags & 1;
  if (flags & 2) options.max_length = tok.num_special_tokens_to_add() + (flags >> 2);
  auto ids = tok.encode(in.rest(), options);
  if (!ids.ok()) return 0;
  for (int32_t id : *ids)
    if (id < 0 || id >= tok.vocab_size()) std::abort();
  if (options.max_length && static_cast<int>(ids->size()) > *options.max_length) std::abort();
  auto text = tok.decode(*ids, /*skip_special_tokens=*/(flags & 4) != 0);
  if (!text.ok()) std::abort();  // ids produced by encode must always decode
  return 0;
}
