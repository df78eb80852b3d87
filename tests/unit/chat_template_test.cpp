// ChatTemplate: byte-exact parity with jinja2 (transformers' environment) on the references written by
// scripts/fixtures/make_chat_templates.py, plus syntax errors, runtime errors, limits and load_chat_template.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "formats/chat_template/chat_template.h"
#include "support/paths.h"
#include "support/temp_dir.h"

namespace fathom::formats {
namespace {
namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const ojson& reference() {
  static const ojson ref = ojson::parse(read_text(testing::fixture("chat_templates/reference.json")));
  return ref;
}

// ---- parity with jinja2 ----
struct RefTemplate {
  std::string name;
  std::string file;
  ojson cases;
};
void PrintTo(const RefTemplate& t, std::ostream* os) { *os << t.name; }

std::vector<RefTemplate> reference_templates() {
  std::vector<RefTemplate> out;
  for (const auto& t : reference()["templates"]) out.push_back({t["name"], t["file"], t["cases"]});
  return out;
}

class ChatTemplateReference : public ::testing::TestWithParam<RefTemplate> {};

TEST_P(ChatTemplateReference, MatchesJinja2) {
  const auto& t = GetParam();
  auto tpl = ChatTemplate::parse(read_text(testing::fixture("chat_templates/" + t.file)));
  ASSERT_TRUE(tpl.ok()) << tpl.error().message;
  ASSERT_FALSE(t.cases.empty());
  for (const auto& c : t.cases) {
    SCOPED_TRACE(t.name + "/" + c["name"].get<std::string>());
    auto out = tpl->render(c["context"]);
    if (c.contains("expected")) {
      ASSERT_TRUE(out.ok()) << out.error().message;
      EXPECT_EQ(*out, c["expected"].get<std::string>());
    } else {
      ASSERT_FALSE(out.ok()) << "rendered: " << *out;
      EXPECT_EQ(out.error().code, ErrorCode::kInvalidArgument);
      EXPECT_EQ(out.error().message, c["error"].get<std::string>());  // raise_exception's message, verbatim
    }
  }
}

INSTANTIATE_TEST_SUITE_P(ChatTemplate, ChatTemplateReference, ::testing::ValuesIn(reference_templates()),
                         [](const ::testing::TestParamInfo<RefTemplate>& info) { return info.param.name; });

TEST(ChatTemplateReferenceCoverage, HasEveryFamilyAndErrorCases) {
  int cases = 0, errors = 0;
  std::set<std::string> names;
  for (const auto& t : reference()["templates"]) {
    names.insert(t["name"]);
    for (const auto& c : t["cases"]) {
      ++cases;
      errors += c.contains("error");
    }
  }
  for (const char* n : {"qwen2_5", "qwen3", "llama3_1", "mistral", "gemma", "chatml", "phi3", "deepseek_r1"})
    EXPECT_TRUE(names.count(n)) << n;
  EXPECT_GE(cases, 60);
  EXPECT_GE(errors, 5);
}

// ---- helpers for inline templates ----
Result<std::string> render(const std::string& src, const ojson& ctx = ojson::object()) {
  auto tpl = ChatTemplate::parse(src);
  if (!tpl.ok()) return tpl.error();
  return tpl->render(ctx);
}

std::string render_ok(const std::string& src, const ojson& ctx = ojson::object()) {
  auto r = render(src, ctx);
  EXPECT_TRUE(r.ok()) << src << ": " << r.error().message;
  return r.ok() ? *r : std::string();
}

std::string render_error(const std::string& src, const ojson& ctx = ojson::object()) {
  auto r = render(src, ctx);
  EXPECT_FALSE(r.ok()) << src << " rendered " << (r.ok() ? *r : "");
  if (r.ok()) return {};
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  return r.error().message;
}

#define EXPECT_HAS(haystack, needle) EXPECT_NE((haystack).find(needle), std::string::npos) << (haystack)

// ---- syntax errors ----
TEST(ChatTemplateSyntax, ErrorsNameLineColumnAndExpectation) {
  std::string e = render_error("ok\n{% if x %}\nbody");
  EXPECT_HAS(e, "syntax error");
  EXPECT_HAS(e, "line 3:5");
  EXPECT_HAS(e, "'endif'");
  EXPECT_HAS(e, "opened at line 2:1");

  e = render_error("line one\n  {{ 1 + }}");
  EXPECT_HAS(e, "line 2:10");
  EXPECT_HAS(e, "expected an expression");

  e = render_error("{% for x in xs %}{{ x }}");
  EXPECT_HAS(e, "'endfor'");
  EXPECT_HAS(render_error("{% endfor %}"), "unknown tag 'endfor'");
  EXPECT_HAS(render_error("{% include 'x' %}"), "unknown tag 'include'");
  EXPECT_HAS(render_error("{{ x | nosuchfilter }}"), "no filter named 'nosuchfilter'");
  EXPECT_HAS(render_error("{{ x is nosuchtest }}"), "no test named 'nosuchtest'");
  EXPECT_HAS(render_error("{{ 'unterminated }}"), "unterminated string");
  EXPECT_HAS(render_error("{{ x "), "expected '}}'");
  EXPECT_HAS(render_error("{# never closed"), "unterminated comment");
  EXPECT_HAS(render_error("{{ f(a=1, 2) }}"), "positional after keyword");
  EXPECT_HAS(render_error("{% break %}"), "outside of a loop");
  EXPECT_HAS(render_error("{{ a ? b }}"), "unexpected character '?'");
  EXPECT_HAS(render_error("{{ 99999999999999999999 }}"), "integer literal too large");
}

TEST(ChatTemplateSyntax, ParseIsKInvalidArgument) {
  auto r = ChatTemplate::parse("{% if %}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_HAS(r.error().message, "line 1:7");
}

// ---- runtime errors ----
TEST(ChatTemplateRuntime, ErrorsAreClear) {
  EXPECT_HAS(render_error("{{ foo.bar }}"), "'foo' is undefined");
  EXPECT_HAS(render_error("{{ d.x.y }}", {{"d", ojson::object()}}), "'dict object' has no attribute 'x'");
  EXPECT_HAS(render_error("{{ foo() }}"), "'foo' is undefined");
  EXPECT_HAS(render_error("{{ 1 + 'a' }}"), "unsupported operand type(s) for +: 'int' and 'str'");
  EXPECT_HAS(render_error("{{ 1 + 2 ~ 3 }}"), "unsupported operand");  // `~` binds tighter than `+`
  EXPECT_HAS(render_error("{{ missing + 1 }}"), "'missing' is undefined");
  EXPECT_HAS(render_error("{{ 1 / 0 }}"), "division by zero");
  EXPECT_HAS(render_error("{{ 1 < 'a' }}"), "'<' not supported");
  EXPECT_HAS(render_error("{{ [1].append(2) }}"), "access to attribute 'append' of 'list' object is unsafe.");
  EXPECT_HAS(render_error("{{ {}.update({}) }}"), "unsafe");
  EXPECT_HAS(render_error("{% set x = 1 %}{% set x.y = 2 %}"), "non-namespace");
  EXPECT_HAS(render_error("{{ missing | tojson }}"), "not JSON serializable");
  EXPECT_HAS(render_error("{% for a, b in [1] %}{% endfor %}"), "not iterable");
  EXPECT_HAS(render_error("{% for a, b in [[1, 2, 3]] %}{% endfor %}"), "too many values to unpack");
  // Runtime errors name where they happened.
  EXPECT_HAS(render_error("line1\n{{ 1 }}{{ foo.bar }}"), "line 2:8");
}

TEST(ChatTemplateRuntime, RaiseExceptionMessageIsVerbatim) {
  auto r = render("{{ raise_exception('Roles must alternate: ' ~ n) }}", {{"n", 3}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().message, "Roles must alternate: 3");
}

TEST(ChatTemplateRuntime, ContextMustBeAnObject) {
  auto tpl = ChatTemplate::parse("x");
  ASSERT_TRUE(tpl.ok());
  EXPECT_FALSE(tpl->render(ojson::array()).ok());
  auto ok = tpl->render(nlohmann::json::object());  // the nlohmann::json overload
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, "x");
}

TEST(ChatTemplateRuntime, KeyOrderFollowsTheContext) {
  ojson obj = ojson::parse(R"({"z": 1, "a": {"y": true, "b": null}})");
  EXPECT_EQ(render_ok("{{ o | tojson }}", {{"o", obj}}), R"({"z": 1, "a": {"y": true, "b": null}})");
  nlohmann::json sorted = nlohmann::json::parse(R"({"z": 1, "a": 2})");
  auto tpl = ChatTemplate::parse("{{ o | tojson }}");
  ASSERT_TRUE(tpl.ok());
  EXPECT_EQ(tpl->render(nlohmann::json{{"o", sorted}}).value(), R"({"a": 2, "z": 1})");
}

TEST(ChatTemplateRuntime, StrftimeNowRendersTheDate) {
  std::string year = render_ok("{{ strftime_now('%Y') }}");
  ASSERT_EQ(year.size(), 4u);
  EXPECT_GE(std::stoi(year), 2024);
  EXPECT_FALSE(render_ok("{{ strftime_now('%d %b %Y') }}").empty());
}

// ---- limits: hostile templates fail, never hang or crash ----
TEST(ChatTemplateLimits, HugeRangeIsRefused) {
  EXPECT_HAS(render_error("{% for i in range(10**9) %}x{% endfor %}"), "Range too big");
}

TEST(ChatTemplateLimits, LoopIterationsAreCapped) {
  EXPECT_HAS(render_error("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"),
             "loop iteration limit");
}

TEST(ChatTemplateLimits, MacroRecursionIsCapped) {
  EXPECT_HAS(render_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"), "recursion too deep");
  // Mutual recursion through a call block's caller as well.
  EXPECT_HAS(render_error("{% macro g() %}{% call g() %}x{% endcall %}{% endmacro %}{{ g() }}"), "too deep");
}

TEST(ChatTemplateLimits, OutputIsCappedAt1MiB) {
  EXPECT_HAS(render_error("{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}"), "output exceeds");
  EXPECT_HAS(render_error("{{ 'x' * 10**9 }}"), "string too large");
  EXPECT_HAS(render_error("{% set ns = namespace(s='xx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"),
             "string too large");
  // Just under the cap is fine.
  EXPECT_EQ(render_ok("{{ 'x' * 1000000 }}").size(), 1000000u);
}

TEST(ChatTemplateLimits, DeepNestingIsRefused) {
  std::string deep = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  EXPECT_HAS(render_error(deep), "nested too deeply");
  std::string ifs;
  for (int i = 0; i < 500; ++i) ifs += "{% if true %}";
  EXPECT_HAS(render_error(ifs), "nested too deeply");
  std::string lists = "{{ " + std::string(5000, '[') + std::string(5000, ']') + " }}";
  EXPECT_HAS(render_error(lists), "nested too deeply");
}

TEST(ChatTemplateLimits, SelfReferenceDoesNotCrash) {
  EXPECT_HAS(render_error("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}"), "nested too deeply");
  EXPECT_EQ(render_ok("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns.me.me.me is defined }}"), "True");
}

TEST(ChatTemplateLimits, DeepContextIsRefused) {
  ojson v = 1;
  for (int i = 0; i < 1000; ++i) v = ojson::array({v});
  auto tpl = ChatTemplate::parse("{{ v }}");
  ASSERT_TRUE(tpl.ok());
  auto r = tpl->render(ojson{{"v", v}});
  ASSERT_FALSE(r.ok());
  EXPECT_HAS(r.error().message, "nested too deeply");
}

// ---- concurrency: one parsed template, many renders ----
TEST(ChatTemplateThreads, ConcurrentRendersAgree) {
  auto tpl = ChatTemplate::parse(read_text(testing::fixture("chat_templates/qwen3.jinja")));
  ASSERT_TRUE(tpl.ok());
  const ojson& c = reference()["templates"][1]["cases"][5];
  const std::string want = c["expected"];
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        auto r = tpl->render(c["context"]);
        if (!r.ok() || *r != want) ++bad;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

// ---- load_chat_template ----
using testing::TempDir;

TEST(ChatTemplateLoad, FunasrNanoQwenPrompt) {
  auto loaded = load_chat_template(testing::fixture("models/funasr-nano-random-a/Qwen3-tiny"));
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  ASSERT_TRUE(loaded->has_value());
  ojson ctx = {{"messages",
                ojson::array({{{"role", "system"}, {"content", "You are a helpful assistant."}},
                              {{"role", "user"}, {"content", "语音转写:<|AUDIO|>"}}})},
               {"add_generation_prompt", true}};
  auto out = (*loaded)->render(ctx);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(*out,
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n语音转写:<|AUDIO|><|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatTemplateLoad, ListFormPicksDefault) {
  TempDir d;
  d.write("tokenizer_config.json",
          R"({"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D{{ x }}"}]})");
  auto loaded = load_chat_template(d.path());
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->render(ojson{{"x", 1}}).value(), "D1");
}

TEST(ChatTemplateLoad, FallsBackToChatTemplateJinja) {
  TempDir d;
  d.write("tokenizer_config.json", R"({"bos_token": "<s>"})");
  d.write("chat_template.jinja", "{{ bos_token }}hi\n");
  auto loaded = load_chat_template(d.path());
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->render(ojson{{"bos_token", "<s>"}}).value(), "<s>hi");  // one trailing newline dropped, like Jinja2
}

TEST(ChatTemplateLoad, NoneIsNullopt) {
  TempDir d;
  auto loaded = load_chat_template(d.path());
  ASSERT_TRUE(loaded.ok());
  EXPECT_FALSE(loaded->has_value());
  d.write("tokenizer_config.json", R"({"chat_template": null})");
  loaded = load_chat_template(d.path());
  ASSERT_TRUE(loaded.ok());
  EXPECT_FALSE(loaded->has_value());
}

TEST(ChatTemplateLoad, ErrorsNameTheFile) {
  TempDir d;
  d.write("tokenizer_config.json", R"({"chat_template": "{% if x %}"})");
  auto loaded = load_chat_template(d.path());
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error().code, ErrorCode::kLoadFailed);
  EXPECT_HAS(loaded.error().message, "tokenizer_config.json");
  EXPECT_HAS(loaded.error().message, "endif");

  d.write("tokenizer_config.json", R"({"chat_template": [{"name": "other", "template": "x"}]})");
  loaded = load_chat_template(d.path());
  ASSERT_FALSE(loaded.ok());
  EXPECT_HAS(loaded.error().message, "default");

  d.write("tokenizer_config.json", R"({"chat_template": 5})");
  loaded = load_chat_template(d.path());
  ASSERT_FALSE(loaded.ok());
  EXPECT_HAS(loaded.error().message, "tokenizer_config.json");

  d.write("tokenizer_config.json", "{not json");
  loaded = load_chat_template(d.path());
  ASSERT_FALSE(loaded.ok());
  EXPECT_HAS(loaded.error().message, "tokenizer_config.json");

  TempDir j;
  j.write("chat_template.jinja", "{{ 'oops }}");
  loaded = load_chat_template(j.path());
  ASSERT_FALSE(loaded.ok());
  EXPECT_HAS(loaded.error().message, "chat_template.jinja");
}

}  // namespace
}  // namespace fathom::formats
