#include "formats/chat_template/chat_template.h"

#include <fstream>
#include <new>
#include <sstream>

#include "formats/chat_template/interpreter.h"
#include "formats/chat_template/lexer.h"
#include "formats/chat_template/parser.h"
#include "formats/json_file.h"

namespace fathom::formats {

struct ChatTemplate::Impl {
  std::string original;
  std::string source;  // normalised
  jinja::Body body;
};

Result<ChatTemplate> ChatTemplate::parse(std::string source) {
  auto impl = std::make_shared<Impl>();
  impl->original = source;
  try {
    impl->source = jinja::normalize_source(std::move(source));
    impl->body = jinja::parse_template(impl->source);
  } catch (const jinja::TemplateError& e) {
    return make_error(ErrorCode::kInvalidArgument, "chat template syntax error at " + e.message);
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kInvalidArgument, "chat template too large to parse");
  }
  return ChatTemplate(std::move(impl));
}

const std::string& ChatTemplate::source() const { return impl_->original; }

namespace {
template <typename J>
Result<std::string> render_impl(const std::string& source, const jinja::Body& body, const J& context) {
  if (!context.is_object())
    return make_error(ErrorCode::kInvalidArgument, "chat template context must be a JSON object");
  try {
    jinja::Value ctx = jinja::Value::from_json(context);
    jinja::Interpreter in(body, source);
    return in.render(ctx);
  } catch (const jinja::TemplateError& e) {
    if (e.raised) return make_error(ErrorCode::kInvalidArgument, e.message);
    return make_error(ErrorCode::kInvalidArgument, "chat template error at " + e.message);
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kInvalidArgument, "chat template error: out of memory while rendering");
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, std::string("chat template error: ") + e.what());
  }
}
}  // namespace

Result<std::string> ChatTemplate::render(const nlohmann::json& context) const {
  return render_impl(impl_->source, impl_->body, context);
}

Result<std::string> ChatTemplate::render(const nlohmann::ordered_json& context) const {
  return render_impl(impl_->source, impl_->body, context);
}

Result<std::optional<ChatTemplate>> load_chat_template(const std::filesystem::path& dir) {
  using Opt = std::optional<ChatTemplate>;
  std::error_code ec;
  const auto config_path = dir / "tokenizer_config.json";
  std::optional<std::string> source;
  std::filesystem::path from;
  if (std::filesystem::is_regular_file(config_path, ec)) {
    FATHOM_ASSIGN_OR_RETURN(auto config, read_json_file(config_path));
    auto it = config.is_object() ? config.find("chat_template") : config.end();
    if (it != config.end() && !it->is_null()) {
      from = config_path;
      if (it->is_string()) {
        source = it->get<std::string>();
      } else if (it->is_array()) {
        for (const auto& entry : *it) {
          if (!entry.is_object() || !entry.contains("name") || !entry.contains("template") ||
              !entry["name"].is_string() || !entry["template"].is_string())
            return make_error(ErrorCode::kLoadFailed,
                              config_path.string() + ": `chat_template` list entries must be {name, template} strings");
          if (entry["name"] == "default") source = entry["template"].get<std::string>();
        }
        if (!source)
          return make_error(ErrorCode::kLoadFailed,
                            config_path.string() + ": `chat_template` list has no template named \"default\"");
      } else {
        return make_error(ErrorCode::kLoadFailed,
                          config_path.string() + ": `chat_template` should be a string or a list of {name, template}");
      }
    }
  }
  if (!source) {
    const auto jinja_path = dir / "chat_template.jinja";
    if (!std::filesystem::is_regular_file(jinja_path, ec)) return Opt();
    std::ifstream in(jinja_path, std::ios::binary);
    if (!in) return make_error(ErrorCode::kLoadFailed, jinja_path.string() + ": cannot be read");
    std::stringstream ss;
    ss << in.rdbuf();
    source = ss.str();
    from = jinja_path;
  }
  auto parsed = ChatTemplate::parse(std::move(*source));
  if (!parsed.ok()) return make_error(ErrorCode::kLoadFailed, from.string() + ": " + parsed.error().message);
  return Opt(std::move(parsed).value());
}

}  // namespace fathom::formats
