#include "workload.h"

#include <cmath>
#include <fstream>
#include <iterator>
#include <sstream>

namespace fathom::load {
namespace {

using nlohmann::json;

bool read_bytes(const std::filesystem::path& p, std::string& out) {
  std::ifstream f(p, std::ios::binary);
  if (!f) return false;
  out.assign(std::istreambuf_iterator<char>(f), {});
  return true;
}

bool is_vector(const json& j) {
  if (!j.is_array() || j.empty()) return false;
  for (const auto& v : j)
    if (!v.is_number()) return false;
  return true;
}

std::string parse_entry(const json& e, const std::filesystem::path& base, Entry& out) {
  if (!e.is_object()) return "must be an object";
  out.name = e.value("name", std::string());
  if (out.name.empty()) return "`name` is required";
  if (e.contains("weight")) {
    if (!e["weight"].is_number() || !(e["weight"].get<double>() > 0)) return "`weight` must be a number > 0";
    out.weight = e["weight"].get<double>();
  }
  if (!e.contains("model") || !e["model"].is_string()) return "`model` (a string) is required";
  out.model = e["model"].get<std::string>();
  const std::string kind = e.value("kind", std::string());
  if (e.contains("threshold")) {
    if (!e["threshold"].is_number()) return "`threshold` must be a number";
    out.threshold = e["threshold"].get<double>();
  }
  if (kind == "embeddings") {
    out.kind = Kind::kEmbeddings;
    if (!e.contains("input")) return "`input` is required for embeddings";
    const json& input = e["input"];
    std::size_t n = 0;
    if (input.is_string()) {
      n = 1;
    } else if (input.is_array() && !input.empty()) {
      for (const auto& s : input)
        if (!s.is_string()) return "`input` must be a string or a list of strings";
      n = input.size();
    } else {
      return "`input` must be a string or a non-empty list of strings";
    }
    out.inputs = n;
    json body = e.value("params", json::object());
    if (!body.is_object()) return "`params` must be an object";
    body["model"] = out.model;
    body["input"] = input;
    out.body = body.dump();
    if (e.contains("expected")) {
      const json& x = e["expected"];
      if (is_vector(x)) {
        out.expected_embeddings.push_back(x.get<std::vector<float>>());
      } else if (x.is_array()) {
        for (const auto& v : x) {
          if (!is_vector(v)) return "`expected` must be a vector or a list of vectors";
          out.expected_embeddings.push_back(v.get<std::vector<float>>());
        }
      } else {
        return "`expected` must be a vector or a list of vectors";
      }
      if (out.expected_embeddings.size() != n)
        return "`expected` has " + std::to_string(out.expected_embeddings.size()) + " vectors for " +
               std::to_string(n) + " inputs";
    }
  } else if (kind == "transcriptions") {
    out.kind = Kind::kTranscriptions;
    if (!e.contains("file") || !e["file"].is_string()) return "`file` (a path) is required for transcriptions";
    std::filesystem::path p = e["file"].get<std::string>();
    if (p.is_relative()) p = base / p;
    if (!read_bytes(p, out.file_bytes)) return "cannot read `file` " + p.string();
    out.file_name = p.filename().string();
    if (e.contains("fields")) {
      if (!e["fields"].is_object()) return "`fields` must be an object of strings";
      for (const auto& [k, v] : e["fields"].items()) {
        if (!v.is_string()) return "`fields." + k + "` must be a string";
        out.fields.emplace_back(k, v.get<std::string>());
      }
    }
    if (e.contains("expected")) {
      if (!e["expected"].is_string()) return "`expected` must be the transcription text (a string)";
      out.expected_text = e["expected"].get<std::string>();
    }
  } else {
    return "`kind` must be \"embeddings\" or \"transcriptions\"";
  }
  return {};
}

double cosine(const std::vector<float>& a, const json& b) {
  double dot = 0, na = 0, nb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double y = b[i].get<double>();
    dot += a[i] * y;
    na += double(a[i]) * a[i];
    nb += y * y;
  }
  if (na == 0 || nb == 0) return na == nb ? 1.0 : 0.0;
  return dot / std::sqrt(na * nb);
}

}  // namespace

std::optional<Workload> load_workload(const std::filesystem::path& path, std::string& error) {
  std::string text;
  if (!read_bytes(path, text)) {
    error = "cannot read workload " + path.string();
    return std::nullopt;
  }
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_array() || j.empty()) {
    error = "workload " + path.string() + " must be a non-empty JSON list of entries";
    return std::nullopt;
  }
  Workload w;
  const auto base = path.parent_path();
  for (std::size_t i = 0; i < j.size(); ++i) {
    Entry e;
    std::string why = parse_entry(j[i], base, e);
    if (!why.empty()) {
      error = "workload " + path.string() + " entry " + std::to_string(i) +
              (e.name.empty() ? "" : " ('" + e.name + "')") + ": " + why;
      return std::nullopt;
    }
    w.total_weight += e.weight;
    w.entries.push_back(std::move(e));
  }
  return w;
}

std::string check_response(const Entry& entry, const std::string& body) {
  if (!entry.checked()) return {};
  if (entry.kind == Kind::kTranscriptions) {
    json j = json::parse(body, nullptr, false);
    std::string text;
    if (j.is_object() && j.contains("text") && j["text"].is_string()) {
      text = j["text"].get<std::string>();
    } else {
      text = body;
      while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    }
    if (text == *entry.expected_text) return {};
    return "text '" + text.substr(0, 80) + "' != expected '" + entry.expected_text->substr(0, 80) + "'";
  }
  json j = json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("data") || !j["data"].is_array()) return "answer has no `data` list";
  const json& data = j["data"];
  if (data.size() != entry.expected_embeddings.size())
    return std::to_string(data.size()) + " embeddings for " + std::to_string(entry.expected_embeddings.size()) +
           " inputs";
  for (const auto& item : data) {
    if (!item.is_object() || !item.contains("index") || !item["index"].is_number_integer() ||
        !item.contains("embedding") || !item["embedding"].is_array())
      return "a `data` item lacks `index` or a float `embedding`";
    const auto idx = item["index"].get<long long>();
    if (idx < 0 || static_cast<std::size_t>(idx) >= entry.expected_embeddings.size())
      return "index " + std::to_string(idx) + " out of range";
    const auto& want = entry.expected_embeddings[idx];
    const json& got = item["embedding"];
    if (got.size() != want.size())
      return "embedding " + std::to_string(idx) + " has " + std::to_string(got.size()) + " dimensions, expected " +
             std::to_string(want.size());
    for (const auto& v : got)
      if (!v.is_number()) return "embedding " + std::to_string(idx) + " holds a non-number";
    const double c = cosine(want, got);
    if (!(c >= entry.threshold)) {
      std::ostringstream s;
      s << "embedding " << idx << " cosine " << c << " < " << entry.threshold;
      return s.str();
    }
  }
  return {};
}

}  // namespace fathom::load
