#pragma once
// Hugging Face chat templates: a Jinja2 interpreter for the subset chat templates use, rendering like
// transformers' apply_chat_template (ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks and the
// loopcontrols extension; its tojson filter, raise_exception and strftime_now globals). See
// docs/architecture.md ("Chat templates") for what is supported.
//
// Errors: parse() reports syntax errors as kInvalidArgument "chat template syntax error at line L:C: expected ...".
// render() reports runtime errors as kInvalidArgument: raise_exception(msg) gives msg verbatim; others (type
// errors, undefined values used, output over 1 MiB, loop or recursion limits) name the line:column. No exception
// escapes. load_chat_template() errors (kLoadFailed) name the file.
// Thread-safety: a parsed ChatTemplate is immutable; render() is const and safe to call concurrently.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace fathom::formats {

namespace jinja {
struct Stmt;
}

class ChatTemplate {
 public:
  // Parses Jinja source; syntax errors are kInvalidArgument naming line:column and what was expected.
  static Result<ChatTemplate> parse(std::string source);
  // Renders with `context` (a JSON object: messages, add_generation_prompt, bos_token, eos_token, tools,
  // enable_thinking, ...). nlohmann::json objects iterate in key order; pass ordered_json to keep the caller's
  // key order (what tojson of tool schemas shows, like Python dicts).
  Result<std::string> render(const nlohmann::json& context) const;
  Result<std::string> render(const nlohmann::ordered_json& context) const;

  const std::string& source() const;

 private:
  struct Impl;
  explicit ChatTemplate(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// The chat template of a model directory: tokenizer_config.json "chat_template" (a string, or a list of
// {name, template}: the one named "default"), else a chat_template.jinja file in the directory. nullopt when
// the model has none; errors name the file.
Result<std::optional<ChatTemplate>> load_chat_template(const std::filesystem::path& dir);

}  // namespace fathom::formats
