// Tokenizer: loading tokenizer.json and the encode/decode pipelines.
#include "formats/tokenizer/tokenizer.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <unordered_set>

#include "formats/tokenizer/added_tokens.h"
#include "formats/tokenizer/components.h"
#include "formats/tokenizer/models.h"
#include "formats/tokenizer/unicode.h"

namespace fathom::formats {

using tok::Json;
using tok::load_error;

class TokenizerImpl {
 public:
  std::string file;
  std::unique_ptr<tok::Normalizer> normalizer;
  std::unique_ptr<tok::PreTokenizer> pre_tokenizer;
  std::unique_ptr<tok::Model> model;
  std::unique_ptr<tok::Decoder> decoder;
  std::vector<tok::AddedToken> added;  // stable storage: matchers point into it
  std::unordered_map<std::string, int32_t> added_by_content;
  std::unordered_map<int32_t, size_t> added_by_id;  // id -> index in `added`
  tok::AddedTokenMatcher raw_matcher, normalized_matcher;
  std::vector<int32_t> prefix_ids, suffix_ids;  // what the post-processor adds around a single sequence
  // The pair template: special ids or a sequence (A = 0, B = 1), each with its type id. Empty: none.
  struct PairItem {
    std::vector<int32_t> special;  // used when sequence < 0
    int sequence = -1;
    int32_t type_id = 0;
  };
  std::vector<PairItem> pair_items;
  bool clean_up_spaces = false;
  bool whisper = false;  // transformers' WhisperTokenizer decode rules
  int32_t vocab_size = 0;

  Status load_post_processor(const Json& j);
  Status resolve_template(const Json& j, std::vector<int32_t>& prefix, std::vector<int32_t>& suffix);
  Status resolve_pair_template(const Json& j);
  void encode_text(std::string_view text, std::vector<int32_t>& ids) const;
};

namespace {

Result<Json> read_json(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, path.string() + ": cannot open");
  std::stringstream buf;
  buf << in.rdbuf();
  Json j = Json::parse(buf.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error(ErrorCode::kLoadFailed, path.string() + ": not valid JSON");
  return j;
}

std::optional<int32_t> special_id(const Json& pair) {  // ["<s>", 0]
  if (pair.is_array() && pair.size() == 2 && pair[1].is_number_integer()) return pair[1].get<int32_t>();
  return std::nullopt;
}

}  // namespace

Status TokenizerImpl::resolve_template(const Json& j, std::vector<int32_t>& prefix, std::vector<int32_t>& suffix) {
  const Json& single = j.contains("single") ? j["single"] : Json();
  if (!single.is_array()) return load_error(file, "TemplateProcessing without a 'single' template list");
  const Json& specials = j.contains("special_tokens") ? j["special_tokens"] : Json::object();
  bool seen_a = false;
  for (const Json& item : single) {
    if (item.contains("Sequence")) {
      if (item["Sequence"].value("id", std::string("A")) == "A") seen_a = true;
      continue;
    }
    if (!item.contains("SpecialToken"))
      return load_error(file, "TemplateProcessing item not understood: " + item.dump());
    std::string name = item["SpecialToken"].value("id", std::string());
    const Json* entry = specials.contains(name) ? &specials[name] : nullptr;
    if (!entry || !(*entry).contains("ids") || !(*entry)["ids"].is_array())
      return load_error(file, "TemplateProcessing special token '" + name + "' has no ids in special_tokens");
    for (const Json& id : (*entry)["ids"]) (seen_a ? suffix : prefix).push_back(id.get<int32_t>());
  }
  if (!seen_a) return load_error(file, "TemplateProcessing 'single' template has no $A");
  return Status::Ok();
}

Status TokenizerImpl::resolve_pair_template(const Json& j) {
  const Json& pair = j.contains("pair") ? j["pair"] : Json();
  if (!pair.is_array()) return Status::Ok();  // single sequences only
  const Json& specials = j.contains("special_tokens") ? j["special_tokens"] : Json::object();
  std::vector<PairItem> items;
  for (const Json& item : pair) {
    PairItem p;
    if (item.contains("Sequence")) {
      const Json& s = item["Sequence"];
      p.sequence = s.value("id", std::string("A")) == "B" ? 1 : 0;
      p.type_id = s.value("type_id", 0);
    } else if (item.contains("SpecialToken")) {
      const Json& s = item["SpecialToken"];
      const std::string name = s.value("id", std::string());
      const Json* entry = specials.contains(name) ? &specials[name] : nullptr;
      if (!entry || !(*entry).contains("ids") || !(*entry)["ids"].is_array())
        return load_error(file, "TemplateProcessing special token '" + name + "' has no ids in special_tokens");
      for (const Json& id : (*entry)["ids"]) p.special.push_back(id.get<int32_t>());
      p.type_id = s.value("type_id", 0);
    } else {
      return load_error(file, "TemplateProcessing pair item not understood: " + item.dump());
    }
    items.push_back(std::move(p));
  }
  pair_items = std::move(items);
  return Status::Ok();
}

Status TokenizerImpl::load_post_processor(const Json& j) {
  if (j.is_null()) return Status::Ok();
  const std::string type = j.value("type", std::string());
  std::vector<int32_t> pre, post;
  if (type == "TemplateProcessing") {
    FATHOM_TRY(resolve_template(j, pre, post));
    FATHOM_TRY(resolve_pair_template(j));
  } else if (type == "BertProcessing" || type == "RobertaProcessing") {
    auto cls = special_id(j.value("cls", Json())), sep = special_id(j.value("sep", Json()));
    if (!cls || !sep) return load_error(file, type + " needs cls and sep as [token, id]");
    pre = {*cls};
    post = {*sep};
    const bool roberta = type == "RobertaProcessing";
    const int32_t b = roberta ? 0 : 1;
    pair_items = {{{*cls}, -1, 0}, {{}, 0, 0}, {roberta ? std::vector<int32_t>{*sep, *sep} : std::vector<int32_t>{*sep}, -1, 0},
                  {{}, 1, b}, {{*sep}, -1, b}};
  } else if (type == "ByteLevel") {
    // offsets only
  } else if (type == "Sequence") {
    if (!j.contains("processors") || !j["processors"].is_array())
      return load_error(file, "Sequence post_processor without a 'processors' list");
    for (const Json& p : j["processors"]) FATHOM_TRY(load_post_processor(p));
    return Status::Ok();
  } else {
    return load_error(file, "unsupported post_processor type '" + type + "'");
  }
  // Applied after the ones loaded before (Sequence order): wrap around them.
  pre.insert(pre.end(), prefix_ids.begin(), prefix_ids.end());
  prefix_ids = std::move(pre);
  suffix_ids.insert(suffix_ids.end(), post.begin(), post.end());
  return Status::Ok();
}

void TokenizerImpl::encode_text(std::string_view text, std::vector<int32_t>& ids) const {
  std::vector<std::string> words;
  auto run_model = [&](std::string piece, bool first) {
    if (piece.empty()) return;
    words.clear();
    words.push_back(std::move(piece));
    if (pre_tokenizer) pre_tokenizer->apply(words, first);
    for (const std::string& w : words) model->tokenize(w, ids);
  };
  for (const auto& raw : raw_matcher.split(text)) {
    if (raw.token) {
      ids.push_back(raw.token->id);
      continue;
    }
    std::string piece(text.substr(raw.begin, raw.end - raw.begin));
    if (normalizer) piece = normalizer->normalize(std::move(piece));
    if (normalized_matcher.empty()) {
      run_model(std::move(piece), raw.begin == 0);
      continue;
    }
    for (const auto& sub : normalized_matcher.split(piece)) {
      if (sub.token) ids.push_back(sub.token->id);
      else run_model(piece.substr(sub.begin, sub.end - sub.begin), raw.begin == 0 && sub.begin == 0);
    }
  }
}

Result<std::shared_ptr<const Tokenizer>> Tokenizer::load(const std::filesystem::path& path) {
  auto impl = std::make_unique<TokenizerImpl>();
  impl->file = path.string();
  const std::string& file = impl->file;
  FATHOM_ASSIGN_OR_RETURN(Json j, read_json(path));
  try {
    if (!j.is_object()) return load_error(file, "top level is not an object");
    if (j.contains("normalizer") && !j["normalizer"].is_null()) {
      FATHOM_ASSIGN_OR_RETURN(impl->normalizer, tok::make_normalizer(j["normalizer"], file));
    }
    if (j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null()) {
      FATHOM_ASSIGN_OR_RETURN(impl->pre_tokenizer, tok::make_pre_tokenizer(j["pre_tokenizer"], file));
    }
    FATHOM_ASSIGN_OR_RETURN(impl->model, tok::make_model(j.value("model", Json()), file));
    if (j.contains("decoder") && !j["decoder"].is_null()) {
      FATHOM_ASSIGN_OR_RETURN(impl->decoder, tok::make_decoder(j["decoder"], file));
    }
    impl->vocab_size = impl->model->size();
    if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
      for (const Json& a : j["added_tokens"]) {
        tok::AddedToken t;
        if (!a.contains("content") || !a["content"].is_string() || !a.contains("id") || !a["id"].is_number_integer())
          return load_error(file, "added token without content or id: " + a.dump());
        t.content = a["content"].get<std::string>();
        t.id = a["id"].get<int32_t>();
        if (t.id < 0) return load_error(file, "added token '" + t.content + "' has a negative id");
        t.special = a.value("special", false);
        t.normalized = a.value("normalized", !t.special);
        t.lstrip = a.value("lstrip", false);
        t.rstrip = a.value("rstrip", false);
        t.single_word = a.value("single_word", false);
        impl->added.push_back(std::move(t));
      }
    }
    for (size_t k = 0; k < impl->added.size(); ++k) {
      const tok::AddedToken& t = impl->added[k];
      impl->added_by_content.emplace(t.content, t.id);
      impl->added_by_id.emplace(t.id, k);
      impl->vocab_size = std::max(impl->vocab_size, t.id + 1);
      if (t.normalized && impl->normalizer) impl->normalized_matcher.add(impl->normalizer->normalize(t.content), &t);
      else if (t.normalized) impl->normalized_matcher.add(t.content, &t);
      else impl->raw_matcher.add(t.content, &t);
    }
    if (j.contains("post_processor")) FATHOM_TRY(impl->load_post_processor(j["post_processor"]));
  } catch (const Json::exception& e) {
    return load_error(file, std::string("malformed tokenizer.json: ") + e.what());
  }
  // transformers' clean_up_tokenization_spaces comes from tokenizer_config.json.
  auto config_path = path.parent_path() / "tokenizer_config.json";
  std::error_code ec;
  if (std::filesystem::exists(config_path, ec)) {
    auto config = read_json(config_path);
    if (config.ok() && config->is_object() && config->contains("clean_up_tokenization_spaces") &&
        (*config)["clean_up_tokenization_spaces"].is_boolean())
      impl->clean_up_spaces = (*config)["clean_up_tokenization_spaces"].get<bool>();
    if (config.ok() && config->is_object() && config->contains("tokenizer_class") &&
        (*config)["tokenizer_class"].is_string())
      impl->whisper = (*config)["tokenizer_class"].get<std::string>().rfind("Whisper", 0) == 0;
  }
  return std::shared_ptr<const Tokenizer>(std::make_shared<Tokenizer>(std::move(impl)));
}

Tokenizer::Tokenizer(std::unique_ptr<TokenizerImpl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

Result<std::vector<int32_t>> Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  if (!unicode::is_valid_utf8(text))
    return make_error(ErrorCode::kInvalidArgument, "input text is not valid UTF-8", "input");
  std::vector<int32_t> body;
  impl_->encode_text(text, body);
  const size_t n_special = options.add_special_tokens ? impl_->prefix_ids.size() + impl_->suffix_ids.size() : 0;
  if (options.max_length) {
    if (*options.max_length < 0 || static_cast<size_t>(*options.max_length) < n_special)
      return make_error(ErrorCode::kInvalidArgument,
                        "max_length " + std::to_string(*options.max_length) + " cannot hold the " +
                            std::to_string(n_special) + " special tokens of the template",
                        "max_length");
    size_t keep = static_cast<size_t>(*options.max_length) - n_special;
    if (body.size() > keep) body.resize(keep);
  }
  if (!options.add_special_tokens) return body;
  std::vector<int32_t> ids;
  ids.reserve(body.size() + n_special);
  ids.insert(ids.end(), impl_->prefix_ids.begin(), impl_->prefix_ids.end());
  ids.insert(ids.end(), body.begin(), body.end());
  ids.insert(ids.end(), impl_->suffix_ids.begin(), impl_->suffix_ids.end());
  return ids;
}

int Tokenizer::num_special_tokens_to_add_pair() const {
  if (impl_->pair_items.empty()) return -1;
  int n = 0;
  for (const auto& item : impl_->pair_items) n += static_cast<int>(item.special.size());
  return n;
}

Result<PairEncoding> Tokenizer::encode_pair(std::string_view a, std::string_view b, std::optional<int> max_length) const {
  if (impl_->pair_items.empty())
    return make_error(ErrorCode::kUnsupported, impl_->file + " has no pair template (post_processor), so text pairs "
                                               "cannot be encoded");
  if (!unicode::is_valid_utf8(a) || !unicode::is_valid_utf8(b))
    return make_error(ErrorCode::kInvalidArgument, "input text is not valid UTF-8", "input");
  if (b.empty()) {
    // An empty second text is no pair at all (transformers encodes `a` alone): the single template, types 0.
    EncodeOptions single;
    single.add_special_tokens = true;
    single.max_length = max_length;
    FATHOM_ASSIGN_OR_RETURN(std::vector<int32_t> ids, encode(a, single));
    PairEncoding out;
    out.type_ids.assign(ids.size(), 0);
    out.ids = std::move(ids);
    return out;
  }
  std::vector<int32_t> seq[2];
  impl_->encode_text(a, seq[0]);
  impl_->encode_text(b, seq[1]);
  if (max_length) {
    const std::size_t fixed = static_cast<std::size_t>(num_special_tokens_to_add_pair()) + seq[0].size();
    if (*max_length < 0 || fixed + (seq[1].empty() ? 0 : 1) > static_cast<std::size_t>(*max_length))
      return make_error(ErrorCode::kTooLarge,
                        "the first text of the pair has " + std::to_string(seq[0].size()) + " tokens; with the " +
                            std::to_string(num_special_tokens_to_add_pair()) +
                            " special tokens it leaves no room for the second within " + std::to_string(*max_length) +
                            " tokens");
    const std::size_t keep = static_cast<std::size_t>(*max_length) - fixed;
    if (seq[1].size() > keep) seq[1].resize(keep);
  }
  PairEncoding out;
  for (const auto& item : impl_->pair_items) {
    const std::vector<int32_t>& part = item.sequence < 0 ? item.special : seq[item.sequence];
    out.ids.insert(out.ids.end(), part.begin(), part.end());
    out.type_ids.insert(out.type_ids.end(), part.size(), item.type_id);
  }
  return out;
}

Result<std::string> Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  DecodeOptions options;
  options.skip_special_tokens = skip_special_tokens;
  return decode(ids, options);
}

namespace {

// Removes `<|digits.digits|>` (transformers' Whisper timestamp pattern) from `text`.
std::string remove_timestamps(const std::string& text) {
  std::string out;
  size_t i = 0;
  auto digits = [&](size_t k) {
    size_t start = k;
    while (k < text.size() && text[k] >= '0' && text[k] <= '9') ++k;
    return k > start ? k : std::string::npos;
  };
  while (i < text.size()) {
    if (text.compare(i, 2, "<|") == 0) {
      size_t a = digits(i + 2);
      if (a != std::string::npos && a < text.size() && text[a] == '.') {
        size_t b = digits(a + 1);
        if (b != std::string::npos && text.compare(b, 2, "|>") == 0) {
          i = b + 2;
          continue;
        }
      }
    }
    out.push_back(text[i++]);
  }
  return out;
}

}  // namespace

Result<std::string> Tokenizer::decode(const std::vector<int32_t>& all_ids, const DecodeOptions& options) const {
  std::vector<int32_t> prompt_stripped;
  const std::vector<int32_t>* id_list = &all_ids;
  if (impl_->whisper && options.skip_special_tokens && !all_ids.empty()) {
    auto prev = token_to_id("<|startofprev|>"), start = token_to_id("<|startoftranscript|>");
    if (prev && all_ids[0] == *prev) {
      auto it = start ? std::find(all_ids.begin(), all_ids.end(), *start) : all_ids.end();
      prompt_stripped.assign(it, all_ids.end());
      id_list = &prompt_stripped;
    }
  }
  const std::vector<int32_t>& ids = *id_list;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    auto it = impl_->added_by_id.find(id);
    if (it != impl_->added_by_id.end()) {
      const tok::AddedToken& t = impl_->added[it->second];
      if (!(options.skip_special_tokens && t.special)) tokens.push_back(t.content);
      continue;
    }
    const std::string* token = impl_->model->id_to_token(id);
    if (!token)
      return make_error(ErrorCode::kInvalidArgument,
                        "token id " + std::to_string(id) + " is outside the vocabulary (size " +
                            std::to_string(impl_->vocab_size) + ")");
    if (options.skip_special_tokens) {
      auto a = impl_->added_by_content.find(*token);
      if (a != impl_->added_by_content.end() && impl_->added[impl_->added_by_id.at(a->second)].special) continue;
    }
    tokens.push_back(*token);
  }
  std::string text;
  if (impl_->decoder) {
    impl_->decoder->decode_chain(tokens);
    for (const std::string& t : tokens) text += t;
  } else {
    for (size_t k = 0; k < tokens.size(); ++k) {
      if (k) text.push_back(' ');
      text += tokens[k];
    }
  }
  if (options.clean_up_tokenization_spaces.value_or(impl_->clean_up_spaces))
    text = tok::clean_up_tokenization(std::move(text));
  if (impl_->whisper && !options.decode_with_timestamps) text = remove_timestamps(text);
  return text;
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  auto it = impl_->added_by_content.find(std::string(token));
  if (it != impl_->added_by_content.end()) return it->second;
  return impl_->model->token_to_id(std::string(token));
}

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  auto it = impl_->added_by_id.find(id);
  if (it != impl_->added_by_id.end()) return impl_->added[it->second].content;
  const std::string* t = impl_->model->id_to_token(id);
  if (!t) return std::nullopt;
  return *t;
}

int32_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

int Tokenizer::num_special_tokens_to_add() const {
  return static_cast<int>(impl_->prefix_ids.size() + impl_->suffix_ids.size());
}

bool Tokenizer::is_special(int32_t id) const {
  auto it = impl_->added_by_id.find(id);
  return it != impl_->added_by_id.end() && impl_->added[it->second].special;
}

void trim_trailing_replacement(std::string& text) {
  static const std::string kFffd = "\xEF\xBF\xBD";
  while (text.size() >= 3 && text.compare(text.size() - 3, 3, kFffd) == 0) text.resize(text.size() - 3);
}

}  // namespace fathom::formats
