#include "server/server_config.h"

#include <cctype>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include "base/log.h"
#include "hub/model_ref.h"

namespace fathom::server {
namespace {

std::string trim(std::string_view s) {
  std::size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

// Parsing one file: every error names the file, the line and the dotted key.
class FileReader {
 public:
  explicit FileReader(std::string source) : source_(std::move(source)) {}

  Error error(const toml::node& node, const std::string& key, const std::string& what) const {
    return make_error(ErrorCode::kInvalidArgument,
                      source_ + ":" + std::to_string(node.source().begin.line) + ": " + key + ": " + what);
  }

  Status check_keys(const toml::table& table, const std::string& prefix, const std::set<std::string>& allowed) const {
    for (auto&& [k, v] : table) {
      std::string key(k.str());
      if (!allowed.count(key)) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        return error(v, prefix + key, "unknown setting; known here: " + list);
      }
    }
    return Status::Ok();
  }

  Result<std::string> string(const toml::node& node, const std::string& key) const {
    if (!node.is_string()) return error(node, key, "must be a string");
    return std::string(node.as_string()->get());
  }
  Result<bool> boolean(const toml::node& node, const std::string& key) const {
    if (!node.is_boolean()) return error(node, key, "must be true or false");
    return node.as_boolean()->get();
  }
  Result<int64_t> integer(const toml::node& node, const std::string& key, int64_t lo, int64_t hi) const {
    if (!node.is_integer()) return error(node, key, "must be an integer");
    int64_t v = node.as_integer()->get();
    if (v < lo || v > hi) {
      return error(node, key, "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " +
                                  std::to_string(v));
    }
    return v;
  }
  Result<double> number(const toml::node& node, const std::string& key, bool positive) const {
    double v = 0;
    if (node.is_integer()) v = static_cast<double>(node.as_integer()->get());
    else if (node.is_floating_point()) v = node.as_floating_point()->get();
    else return error(node, key, "must be a number");
    if (!std::isfinite(v) || (positive ? !(v > 0) : v < 0)) {
      return error(node, key, std::string("must be ") + (positive ? "positive" : "zero or positive"));
    }
    return v;
  }
  Result<std::size_t> bytes(const toml::node& node, const std::string& key) const {
    if (node.is_integer()) {
      if (node.as_integer()->get() < 0) return error(node, key, "must not be negative");
      return static_cast<std::size_t>(node.as_integer()->get());
    }
    if (!node.is_string()) return error(node, key, "must be a byte size: an integer or a string such as \"2GiB\"");
    auto size = parse_byte_size(node.as_string()->get());
    if (!size.ok()) return error(node, key, size.error().message);
    return size.value();
  }
  Result<Device> device(const toml::node& node, const std::string& key) const {
    FATHOM_ASSIGN_OR_RETURN(std::string text, string(node, key));
    auto d = parse_device(text);
    if (!d) return error(node, key, "must be cpu, cuda or cuda:N, got '" + text + "'");
    return *d;
  }
  // nullopt = "auto".
  Result<std::optional<DType>> dtype(const toml::node& node, const std::string& key) const {
    FATHOM_ASSIGN_OR_RETURN(std::string text, string(node, key));
    if (text == "auto") return std::optional<DType>();
    auto d = parse_dtype(text);
    if (!d || !is_float(*d)) return error(node, key, "must be auto, float32, float16 or bfloat16, got '" + text + "'");
    return std::optional<DType>(*d);
  }

 private:
  std::string source_;
};

Status read_server(const FileReader& r, const toml::table& t, ServerConfig& c) {
  FATHOM_TRY(r.check_keys(t, "server.", {"host", "port", "admin_token", "access_log", "log_level", "keep_alive_timeout_seconds"}));
  for (auto&& [k, v] : t) {
    const std::string key = "server." + std::string(k.str());
    c.set_in_file.insert(key);
    if (k == "host") { FATHOM_ASSIGN_OR_RETURN(c.server.host, r.string(v, key)); }
    else if (k == "port") { FATHOM_ASSIGN_OR_RETURN(int64_t p, r.integer(v, key, 0, 65535)); c.server.port = static_cast<int>(p); }
    else if (k == "admin_token") {
      FATHOM_ASSIGN_OR_RETURN(c.server.admin_token, r.string(v, key));
      if (c.server.admin_token.empty()) return r.error(v, key, "must not be empty (leave it out to disable the admin API)");
    }
    else if (k == "access_log") { FATHOM_ASSIGN_OR_RETURN(c.server.access_log, r.boolean(v, key)); }
    else if (k == "log_level") {
      FATHOM_ASSIGN_OR_RETURN(c.log_level, r.string(v, key));
      if (!parse_log_level(c.log_level)) return r.error(v, key, "must be debug, info, warn, error or off");
    }
    else if (k == "keep_alive_timeout_seconds") {
      FATHOM_ASSIGN_OR_RETURN(int64_t s, r.integer(v, key, 1, 3600));
      c.server.keep_alive_timeout_s = static_cast<int>(s);
    }
  }
  return Status::Ok();
}

Status read_limits(const FileReader& r, const toml::table& t, ServerConfig& c) {
  FATHOM_TRY(r.check_keys(t, "limits.", {"max_body_bytes", "max_json_body_bytes", "max_inputs", "max_input_tokens", "max_request_tokens",
                                          "max_connections", "max_queued_requests", "request_timeout_seconds"}));
  constexpr int64_t kBig = int64_t{1} << 40;
  for (auto&& [k, v] : t) {
    const std::string key = "limits." + std::string(k.str());
    c.set_in_file.insert(key);
    if (k == "max_body_bytes") {
      FATHOM_ASSIGN_OR_RETURN(c.server.max_body_bytes, r.bytes(v, key));
      if (c.server.max_body_bytes == 0) return r.error(v, key, "must be positive");
    }
    else if (k == "max_json_body_bytes") {
      FATHOM_ASSIGN_OR_RETURN(c.server.max_json_body_bytes, r.bytes(v, key));
      if (c.server.max_json_body_bytes == 0) return r.error(v, key, "must be positive");
    }
    else if (k == "max_inputs") { FATHOM_ASSIGN_OR_RETURN(int64_t n, r.integer(v, key, 1, kBig)); c.server.max_inputs = n; }
    else if (k == "max_input_tokens") { FATHOM_ASSIGN_OR_RETURN(int64_t n, r.integer(v, key, 0, kBig)); c.server.max_input_tokens = n; }
    else if (k == "max_request_tokens") { FATHOM_ASSIGN_OR_RETURN(int64_t n, r.integer(v, key, 0, kBig)); c.server.max_request_tokens = n; }
    else if (k == "max_connections") { FATHOM_ASSIGN_OR_RETURN(int64_t n, r.integer(v, key, 1, 1 << 20)); c.server.max_connections = n; }
    else if (k == "max_queued_requests") { FATHOM_ASSIGN_OR_RETURN(int64_t n, r.integer(v, key, 1, kBig)); c.max_queued = n; }
    else if (k == "request_timeout_seconds") { FATHOM_ASSIGN_OR_RETURN(c.server.request_timeout_s, r.number(v, key, true)); }
  }
  return Status::Ok();
}

Status read_defaults(const FileReader& r, const toml::table& t, ServerConfig& c) {
  FATHOM_TRY(r.check_keys(t, "defaults.", {"device", "dtype", "max_batch_tokens", "max_batch_size", "cuda_graphs",
                                                    "concurrent"}));
  for (auto&& [k, v] : t) {
    const std::string key = "defaults." + std::string(k.str());
    c.set_in_file.insert(key);
    if (k == "device") { FATHOM_ASSIGN_OR_RETURN(c.device, r.device(v, key)); }
    else if (k == "dtype") { FATHOM_ASSIGN_OR_RETURN(c.dtype, r.dtype(v, key)); }
    else if (k == "max_batch_tokens") { FATHOM_ASSIGN_OR_RETURN(int64_t n, r.integer(v, key, 1, 1 << 30)); c.max_batch_tokens = static_cast<int>(n); }
    else if (k == "max_batch_size") { FATHOM_ASSIGN_OR_RETURN(int64_t n, r.integer(v, key, 1, 1 << 20)); c.max_batch_size = static_cast<int>(n); }
    else if (k == "cuda_graphs") { FATHOM_ASSIGN_OR_RETURN(c.cuda_graphs, r.boolean(v, key)); }
    else if (k == "concurrent") { FATHOM_ASSIGN_OR_RETURN(c.concurrent, r.boolean(v, key)); }
  }
  return Status::Ok();
}

Result<ModelConfig> read_model(const FileReader& r, const toml::table& t, std::size_t index) {
  const std::string prefix = "models[" + std::to_string(index) + "].";
  FATHOM_TRY(r.check_keys(t, prefix, {"name", "path", "device", "dtype", "memory_budget", "max_batch_tokens", "priority",
                                       "max_queued_requests", "cuda_graphs", "concurrent", "max_sms"}));
  ModelConfig m;
  for (auto&& [k, v] : t) {
    const std::string key = prefix + std::string(k.str());
    if (k == "name") {
      FATHOM_ASSIGN_OR_RETURN(m.name, r.string(v, key));
      if (m.name.empty() || m.name.find('/') != std::string::npos) return r.error(v, key, "must be non-empty without '/'");
    }
    else if (k == "path") {
      FATHOM_ASSIGN_OR_RETURN(std::string p, r.string(v, key));
      if (p.empty()) return r.error(v, key, "must not be empty");
      m.path = p;
    }
    else if (k == "device") { FATHOM_ASSIGN_OR_RETURN(m.device, r.device(v, key)); }
    else if (k == "dtype") { FATHOM_ASSIGN_OR_RETURN(auto d, r.dtype(v, key)); m.dtype = d; }
    else if (k == "memory_budget") { FATHOM_ASSIGN_OR_RETURN(m.memory_budget, r.bytes(v, key)); }
    else if (k == "max_batch_tokens") { FATHOM_ASSIGN_OR_RETURN(int64_t n, r.integer(v, key, 1, 1 << 30)); m.max_batch_tokens = static_cast<int>(n); }
    else if (k == "priority") { FATHOM_ASSIGN_OR_RETURN(m.priority, r.number(v, key, true)); }
    else if (k == "max_queued_requests") { FATHOM_ASSIGN_OR_RETURN(int64_t n, r.integer(v, key, 1, int64_t{1} << 40)); m.max_queued = n; }
    else if (k == "cuda_graphs") { FATHOM_ASSIGN_OR_RETURN(bool b, r.boolean(v, key)); m.cuda_graphs = b; }
    else if (k == "concurrent") { FATHOM_ASSIGN_OR_RETURN(bool b, r.boolean(v, key)); m.concurrent = b; }
    else if (k == "max_sms") { FATHOM_ASSIGN_OR_RETURN(int64_t n, r.integer(v, key, 1, 1 << 16)); m.max_sms = static_cast<int>(n); }
  }
  if (m.path.empty()) return r.error(t, prefix.substr(0, prefix.size() - 1), "a model needs a path");
  if (m.name.empty()) m.name = hub::default_model_name(m.path.string());
  return m;
}

template <typename T>
std::string show(const T& v) {
  std::ostringstream s;
  s << v;
  return s.str();
}
std::string show(const Device& d) { return d.to_string(); }
std::string show(const std::optional<DType>& d) { return d ? std::string(dtype_name(*d)) : "auto"; }
std::string show(bool b) { return b ? "true" : "false"; }

// Applies a command-line value: an error when the file set the same setting to something else.
template <typename T>
Status apply(T& target, const std::optional<T>& cli, bool in_file, const std::string& flag, const std::string& key,
             const std::string& file_name) {
  if (!cli) return Status::Ok();
  if (in_file && !(target == *cli)) {
    return make_error(ErrorCode::kInvalidArgument, flag + " " + show(*cli) + " conflicts with " + key + " = " +
                                                       show(target) + " in " + file_name +
                                                       "; set it in one place");
  }
  target = *cli;
  return Status::Ok();
}


}  // namespace

Result<std::size_t> parse_byte_size(std::string_view text) {
  const std::string s = trim(text);
  std::size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "'" + std::string(text) + "' is not a byte size (examples: 2GiB, 512MiB, 1.5GB, 1048576)");
  }
  double value = 0;
  try {
    std::size_t used = 0;
    value = std::stod(s.substr(0, i), &used);
    if (used != i) throw std::invalid_argument("number");
  } catch (...) {
    return make_error(ErrorCode::kInvalidArgument, "'" + std::string(text) + "' is not a byte size");
  }
  std::string unit = trim(s.substr(i));
  std::string lower;
  for (char c : unit) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  double scale = 0;
  if (lower.empty() || lower == "b") scale = 1;
  else if (lower == "kib" || lower == "k") scale = 1024.0;
  else if (lower == "mib" || lower == "m") scale = 1024.0 * 1024;
  else if (lower == "gib" || lower == "g") scale = 1024.0 * 1024 * 1024;
  else if (lower == "tib" || lower == "t") scale = 1024.0 * 1024 * 1024 * 1024;
  else if (lower == "kb") scale = 1e3;
  else if (lower == "mb") scale = 1e6;
  else if (lower == "gb") scale = 1e9;
  else if (lower == "tb") scale = 1e12;
  else {
    return make_error(ErrorCode::kInvalidArgument, "'" + std::string(text) + "': unknown unit '" + unit +
                                                       "' (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)");
  }
  const double bytes = value * scale;
  if (!(bytes < 1.8e19)) return make_error(ErrorCode::kInvalidArgument, "'" + std::string(text) + "' is too large");
  return static_cast<std::size_t>(std::llround(bytes));
}

models::LoadOptions model_load_options(const ServerConfig& config, const ModelConfig& model) {
  models::LoadOptions o;
  o.device = model.device.value_or(config.device);
  o.dtype = model.dtype ? *model.dtype : config.dtype;
  o.memory_budget = model.memory_budget.value_or(0);
  o.max_batch_tokens = model.max_batch_tokens.value_or(config.max_batch_tokens);
  o.cuda_graphs = model.cuda_graphs.value_or(config.cuda_graphs);
  o.concurrent = model.concurrent.value_or(config.concurrent);
  o.max_sms = model.max_sms.value_or(0);
  return o;
}

engine::ServeOptions model_serve_options(const ServerConfig& config, const ModelConfig& model) {
  engine::ServeOptions o;
  o.priority = model.priority.value_or(1.0);
  o.max_batch_size = config.max_batch_size;
  o.max_queued = model.max_queued.value_or(config.max_queued);
  o.memory_budget = model.memory_budget.value_or(0);
  o.concurrent = model.concurrent.value_or(config.concurrent);
  return o;
}

Result<ServerConfig> parse_config(std::string_view text, const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return make_error(ErrorCode::kInvalidArgument, source + ":" + std::to_string(e.source().begin.line) + ":" +
                                                       std::to_string(e.source().begin.column) +
                                                       ": invalid TOML: " + std::string(e.description()));
  }
  FileReader r(source);
  ServerConfig c;
  FATHOM_TRY(r.check_keys(root, "", {"server", "limits", "defaults", "models"}));
  for (auto&& [k, v] : root) {
    const std::string key(k.str());
    if (key == "models") {
      if (!v.is_array_of_tables()) return r.error(v, key, "must be an array of tables ([[models]])");
      std::size_t i = 0;
      for (auto&& item : *v.as_array()) {
        FATHOM_ASSIGN_OR_RETURN(ModelConfig m, read_model(r, *item.as_table(), i));
        for (const auto& other : c.models) {
          if (other.name == m.name) return r.error(item, "models[" + std::to_string(i) + "].name", "'" + m.name + "' is defined twice");
        }
        c.models.push_back(std::move(m));
        ++i;
      }
      continue;
    }
    if (!v.is_table()) return r.error(v, key, "must be a table ([" + key + "])");
    if (key == "server") FATHOM_TRY(read_server(r, *v.as_table(), c));
    else if (key == "limits") FATHOM_TRY(read_limits(r, *v.as_table(), c));
    else if (key == "defaults") FATHOM_TRY(read_defaults(r, *v.as_table(), c));
  }
  // Relative model paths are relative to the file's folder. A path that does not exist there but has the hub
  // form ORG/NAME[@REVISION] stays a hub reference (hub/model_ref.h).
  const std::filesystem::path base = std::filesystem::path(source).parent_path();
  for (auto& m : c.models) {
    if (!m.path.is_relative() || base.empty()) continue;
    std::error_code ec;
    auto ref = hub::parse_hub_ref(m.path.string());
    if (ref && (ref->explicit_hub || !std::filesystem::exists(base / m.path, ec))) continue;
    m.path = (base / m.path).lexically_normal();
  }
  return c;
}

Result<ServerConfig> load_config_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, "cannot read the config file " + file.string());
  std::stringstream buf;
  buf << in.rdbuf();
  return parse_config(buf.str(), file.string());
}

Result<ServerConfig> merge_config(const std::optional<ServerConfig>& file, const std::string& file_name,
                                  const CommandLineSettings& cli) {
  ServerConfig c = file.value_or(ServerConfig{});
  const bool f = file.has_value();
  const std::string& n = file_name;
  auto in = [&](const char* key) { return c.set_in_file.count(key) > 0; };
  FATHOM_TRY(apply(c.server.host, cli.host, in("server.host"), "--host", "server.host", n));
  FATHOM_TRY(apply(c.server.port, cli.port, in("server.port"), "--port", "server.port", n));
  FATHOM_TRY(apply(c.server.admin_token, cli.admin_token, in("server.admin_token"), "--admin-token",
                   "server.admin_token", n));
  FATHOM_TRY(apply(c.server.access_log, cli.access_log, in("server.access_log"),
                   "--no-access-log", "server.access_log", n));
  FATHOM_TRY(apply(c.log_level, cli.log_level, in("server.log_level"), "--log-level", "server.log_level", n));
  FATHOM_TRY(apply(c.server.max_body_bytes, cli.max_body_bytes, in("limits.max_body_bytes"),
                   "--max-body-bytes", "limits.max_body_bytes", n));
  FATHOM_TRY(apply(c.server.max_json_body_bytes, cli.max_json_body_bytes, in("limits.max_json_body_bytes"),
                   "--max-json-body-bytes", "limits.max_json_body_bytes", n));
  FATHOM_TRY(apply(c.server.max_inputs, cli.max_inputs, in("limits.max_inputs"), "--max-inputs",
                   "limits.max_inputs", n));
  FATHOM_TRY(apply(c.server.max_input_tokens, cli.max_input_tokens,
                   in("limits.max_input_tokens"), "--max-input-tokens",
                   "limits.max_input_tokens", n));
  FATHOM_TRY(apply(c.server.max_request_tokens, cli.max_request_tokens,
                   in("limits.max_request_tokens"), "--max-request-tokens",
                   "limits.max_request_tokens", n));
  FATHOM_TRY(apply(c.server.max_connections, cli.max_connections,
                   in("limits.max_connections"), "--max-connections",
                   "limits.max_connections", n));
  FATHOM_TRY(apply(c.server.request_timeout_s, cli.request_timeout_s,
                   in("limits.request_timeout_seconds"), "--request-timeout-seconds",
                   "limits.request_timeout_seconds", n));
  FATHOM_TRY(apply(c.max_queued, cli.max_queued, in("limits.max_queued_requests"), "--max-queued-requests",
                   "limits.max_queued_requests", n));
  FATHOM_TRY(apply(c.device, cli.device, in("defaults.device"), "--device", "defaults.device", n));
  FATHOM_TRY(apply(c.dtype, cli.dtype, in("defaults.dtype"), "--dtype", "defaults.dtype", n));
  FATHOM_TRY(apply(c.max_batch_tokens, cli.max_batch_tokens, in("defaults.max_batch_tokens"),
                   "--max-batch-tokens", "defaults.max_batch_tokens", n));
  FATHOM_TRY(apply(c.max_batch_size, cli.max_batch_size, in("defaults.max_batch_size"),
                   "--max-batch-size", "defaults.max_batch_size", n));
  FATHOM_TRY(apply(c.cuda_graphs, cli.cuda_graphs, in("defaults.cuda_graphs"), "--cuda-graphs",
                   "defaults.cuda_graphs", n));
  FATHOM_TRY(apply(c.concurrent, cli.concurrent, in("defaults.concurrent"), "--concurrent-models",
                   "defaults.concurrent", n));

  for (const auto& m : cli.models) {
    ModelConfig* existing = nullptr;
    for (auto& e : c.models) {
      if (e.name == m.name) existing = &e;
    }
    if (existing) {
      std::error_code ec;
      const bool same = std::filesystem::equivalent(existing->path, m.path, ec) || existing->path == m.path;
      if (!same) {
        return make_error(ErrorCode::kInvalidArgument,
                          "model '" + m.name + "' is defined twice: --model " + m.name + "=" + m.path.string() +
                              " and " + (f ? "path = \"" + existing->path.string() + "\" in " + n
                                           : "--model " + m.name + "=" + existing->path.string()));
      }
      continue;
    }
    c.models.push_back(m);
  }
  auto find = [&](const std::string& name) -> ModelConfig* {
    for (auto& e : c.models) {
      if (e.name == name) return &e;
    }
    return nullptr;
  };
  auto names = [&] {
    std::string out;
    for (const auto& e : c.models) out += (out.empty() ? "" : ", ") + e.name;
    return out.empty() ? std::string("none") : out;
  };
  for (const auto& [name, bytes] : cli.budgets) {
    ModelConfig* m = find(name);
    if (!m) return make_error(ErrorCode::kInvalidArgument, "--budget names '" + name + "', which is not a served model (models: " + names() + ")");
    if (m->memory_budget && *m->memory_budget != bytes) {
      return make_error(ErrorCode::kInvalidArgument, "--budget " + name + "=" + std::to_string(bytes) +
                                                         " conflicts with memory_budget = " +
                                                         std::to_string(*m->memory_budget) + " bytes for model '" +
                                                         name + "' in " + n + "; set it in one place");
    }
    m->memory_budget = bytes;
  }
  for (const auto& [name, weight] : cli.priorities) {
    ModelConfig* m = find(name);
    if (!m) return make_error(ErrorCode::kInvalidArgument, "--priority names '" + name + "', which is not a served model (models: " + names() + ")");
    if (m->priority && *m->priority != weight) {
      return make_error(ErrorCode::kInvalidArgument, "--priority " + name + "=" + show(weight) +
                                                         " conflicts with priority = " + show(*m->priority) +
                                                         " for model '" + name + "' in " + n + "; set it in one place");
    }
    m->priority = weight;
  }
  return c;
}

}  // namespace fathom::server
