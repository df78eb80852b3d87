// Fuzzes Tokenizer::decode on arbitrary id sequences (as a client could send token arrays) for BERT,
// byte-level BPE, Whisper and SentencePiece Unigram tokenizers, with every decode option.
// Input: byte 0 picks the tokenizer, byte 1 the options, then little-endian 16-bit values mapped onto ids
// around the vocabulary (mostly valid, some out of range and negative).
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
  std::vector<int32_t> ids;
  const int32_t vocab = tok.vocab_size();
  while (in.size() >= 2) {
    const uint32_t v = in.byte() | (uint32_t{in.byte()} << 8);
    int32_t id;
    if (v >= 0xFFF0) id = -static_cast<int32_t>(v - 0xFFEF);                 // a few negative ids
    else if (v >= 0xFF00) id = vocab + static_cast<int32_t>(v - 0xFF00) - 8;  // around the upper bound
    else id = static_cast<int32_t>((v * 7919u) % static_cast<uint32_t>(vocab));  // anywhere in the vocabulary
    if (v < 0x100 && vocab > 50000) id = vocab - 1 - static_cast<int32_t>(v * 7);  // dense in special/timestamp ids
    ids.push_back(id);
  }
  fathom::formats::DecodeOptions options;
  options.skip_special_tokens = flags & 1;
  if (flags & 2) options.clean_up_tokenization_spaces = (flags & 4) != 0;
  options.decode_with_timestamps = flags & 8;
  bool all_valid = true;
  for (int32_t id : ids) all_valid = all_valid && id >= 0 && id < vocab && tok.id_to_token(id).has_value();
  auto text = tok.decode(ids, options);
  if (all_valid && !text.ok()) {
    std::fprintf(stderr, "decode of valid ids failed: %s\n", text.error().message.c_str());
    std::abort();
  }
  return 0;
}
