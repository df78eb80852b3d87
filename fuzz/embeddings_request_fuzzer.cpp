// Fuzzes the POST /v1/embeddings request path short of the socket: the body as httplib hands it over
// (parse_json_body), parse_embeddings_request, and tokenize_inputs against real tokenizers (BERT WordPiece
// and byte-level BPE), then serialises the OpenAI error body of every failure as the handler would.
// Input: byte 0 picks the tokenizer and model facts; the rest is the request body.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include <httplib.h>

#include "formats/tokenizer/tokenizer.h"
#include "fuzz_errors.h"
#include "fuzz_support.h"
#include "fuzz_tokenizers.h"
#include "server/embeddings_request.h"
#include "server/http_errors.h"
#include "server/router.h"

namespace {

using fathom::formats::Tokenizer;

const std::vector<std::shared_ptr<const Tokenizer>>& tokenizers() {
  static const auto all = [] {
    const auto src = fathom::fuzz::source_dir() / "tests/fixtures/models";
    return fathom::fuzz::load_tokenizers({src / "bert-mean-norm/tokenizer.json", src / "roberta-cls/tokenizer.json"});
  }();
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fathom::fuzz::Reader in(data, size);
  const uint8_t choice = in.byte();
  const auto& all = tokenizers();
  fathom::engine::EmbedderFacts facts;
  facts.tokenizer = all[choice % all.size()].get();
  facts.max_input_tokens = (choice & 2) ? 512 : 8;
  facts.embedding_dim = 32;
  facts.supports_matryoshka = choice & 4;
  if (facts.supports_matryoshka) facts.matryoshka_dimensions = {8, 16, 32};
  facts.normalizes_by_default = choice & 8;

  httplib::Request req;
  req.body = std::string(in.rest());
  if (choice & 16) req.set_header("Content-Type", (choice & 32) ? "Application/JSON; charset=utf-8" : "text/plain");
  try {
    nlohmann::json body = fathom::server::parse_json_body(req, 2u << 20);
    auto request = fathom::server::parse_embeddings_request(body, /*max_inputs=*/64);
    if (!request.ok()) {
      fathom::fuzz::serialise_error(fathom::server::to_api_error(request.error()));
      return 0;
    }
    auto tokenized = fathom::server::tokenize_inputs(*request, facts);
    if (!tokenized.ok()) {
      fathom::fuzz::serialise_error(fathom::server::to_api_error(tokenized.error()));
      return 0;
    }
    if (tokenized->sequences.size() != request->size()) std::abort();
    std::size_t total = 0;
    for (const auto& seq : tokenized->sequences) {
      if (seq.empty() || static_cast<int>(seq.size()) > facts.max_input_tokens) std::abort();
      for (int32_t id : seq)
        if (id < 0 || id >= facts.tokenizer->vocab_size()) std::abort();
      total += seq.size();
    }
    if (total != tokenized->prompt_tokens) std::abort();
  } catch (const fathom::server::ApiException& e) {
    fathom::fuzz::serialise_error(e.error());  // the handler wrapper's answer
  }
  return 0;
}
