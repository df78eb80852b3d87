#pragma once
// fathom_load's workload: what each request sends and how its answer is checked.
//
// A workload file is a JSON list of entries (see bench/load/README.md):
//   {"name": "bert", "weight": 2, "kind": "embeddings", "model": "bert-mean-norm",
//    "input": "text" | ["text", ...], "expected": [f, ...] | [[f, ...], ...], "threshold": 0.999}
//   {"name": "tiny", "weight": 1, "kind": "transcriptions", "model": "tiny", "file": "clip.wav",
//    "fields": {"language": "en", ...}, "expected": "text"}
// `weight` (default 1, > 0) is the entry's share of the requests. `expected` is optional: for embeddings one
// reference vector per input (a single vector for a string input), checked by cosine >= `threshold` (default
// 0.999) and equal dimension; for transcriptions the exact `text` of the JSON answer (or the whole body for
// response_format text). Relative `file` paths are relative to the workload file's folder.
//
// Thread-safety: a loaded Workload is immutable; check_response() is safe from any thread.
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace fathom::load {

enum class Kind { kEmbeddings, kTranscriptions };

struct Entry {
  std::string name;
  double weight = 1.0;
  Kind kind = Kind::kEmbeddings;
  std::string model;
  // Embeddings: the request body (model + input), serialised once.
  std::string body;
  std::size_t inputs = 1;                               // inputs per request (1 for transcriptions)
  std::vector<std::vector<float>> expected_embeddings;  // empty: not checked
  double threshold = 0.999;
  // Transcriptions: the audio bytes and the extra form fields.
  std::string file_name;
  std::string file_bytes;
  std::vector<std::pair<std::string, std::string>> fields;
  std::optional<std::string> expected_text;

  bool checked() const { return !expected_embeddings.empty() || expected_text.has_value(); }
};

struct Workload {
  std::vector<Entry> entries;
  double total_weight = 0.0;
};

// Parses `path`; on failure returns nullopt and sets `error` (naming the entry and field at fault).
std::optional<Workload> load_workload(const std::filesystem::path& path, std::string& error);

// Checks a 200 answer against the entry's expectation. Returns an empty string when it matches (or the
// entry has no expectation), else a short description of the mismatch.
std::string check_response(const Entry& entry, const std::string& body);

}  // namespace fathom::load
