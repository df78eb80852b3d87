// Fuzzes Tokenizer::load on arbitrary tokenizer.json contents (a damaged or hostile model directory), then
// runs encode and decode on whatever loads, so that every component a file can configure (normalizers,
// pre-tokenizer regexes, models, added tokens, post-processor templates, decoders) is exercised.
// Input: byte 0 selects the tokenizer_config.json written beside it; the rest is tokenizer.json.
#include <cstdlib>
#include <string>
#include <vector>

#include "formats/tokenizer/tokenizer.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fathom::fuzz::ScratchDir scratch;
  fathom::fuzz::Reader in(data, size);
  const uint8_t flags = in.byte();
  scratch.fresh();
  const auto path = scratch.write("tokenizer.json", in.rest());
  if (flags & 1) {
    scratch.write("tokenizer_config.json", (flags & 2) ? R"({"tokenizer_class": "WhisperTokenizer", "clean_up_tokenization_spaces": true})"
                                                       : R"({"clean_up_tokenization_spaces": true})");
  }
  auto loaded = fathom::formats::Tokenizer::load(path);
  if (!loaded.ok()) return 0;
  const auto& tok = *loaded.value();
  const int32_t vocab = tok.vocab_size();
  if (vocab < 0) std::abort();
  for (const char* text : {"Hello, world!  It's 2024 -- naïve café 東京 😀\t\n", "[CLS] <s> <|endoftext|> ab ab",
                           " leading and trailing ", ""}) {
    fathom::formats::EncodeOptions options;
    options.add_special_tokens = (flags & 4) != 0;
    if (flags & 8) options.max_length = 4;
    auto ids = tok.encode(text, options);
    if (ids.ok()) (void)tok.decode(*ids, (flags & 16) != 0);
  }
  std::vector<int32_t> ids;
  for (int32_t id = 0; id < vocab && id < 64; ++id) ids.push_back(id);
  ids.push_back(vocab - 1);
  fathom::formats::DecodeOptions options;
  options.skip_special_tokens = (flags & 16) != 0;
  options.decode_with_timestamps = (flags & 32) != 0;
  (void)tok.decode(ids, options);
  (void)tok.id_to_token(vocab - 1);
  (void)tok.token_to_id("a");
  (void)tok.num_special_tokens_to_add();
  return 0;
}
