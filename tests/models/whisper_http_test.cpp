// /v1/audio/transcriptions and /v1/audio/translations over HTTP with the tiny random Whisper fixture: the
// text equals transformers' generate() tokens decoded, every response format, SSE streaming, concurrent
// requests batched together, and the OpenAI-shaped errors.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "engine/model_manager.h"
#include "formats/tokenizer/tokenizer.h"
#include "server/server.h"
#include "support/http_test_server.h"
#include "support/paths.h"

namespace fathom::server {
namespace {

using nlohmann::json;

std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

class WhisperHttp : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto dir = fathom::testing::fixture("models/whisper-tiny-random-f32");
    ASSERT_TRUE(manager_.load("tiny", dir, models::LoadOptions{}).ok());
    ASSERT_TRUE(manager_.load("bert", fathom::testing::fixture("models/bert-mean-norm"), models::LoadOptions{}).ok());
    ASSERT_NO_FATAL_FAILURE(server_.start(ServerOptions{}, manager_));
    jfk_ = read_file(fathom::testing::shared_dir() / "assets/whisper/jfk.wav");
    ASSERT_GT(jfk_.size(), 1000u);
    reference_ = json::parse(read_file(fathom::testing::fixture("models/whisper-tiny-random-f32.reference.json")));
    auto tok = formats::Tokenizer::load(dir / "tokenizer.json");
    ASSERT_TRUE(tok.ok());
    tokenizer_ = tok.value();
  }
  void TearDown() override {
    server_.stop();
    manager_.shutdown();
  }
  httplib::Result post(const std::string& path, httplib::MultipartFormDataItems items) {
    return server_.client(120).Post(path.c_str(), items);
  }
  httplib::MultipartFormDataItems form(const std::string& model, std::vector<std::pair<std::string, std::string>> fields,
                                       bool with_file = true) {
    httplib::MultipartFormDataItems items;
    if (with_file) items.push_back({"file", jfk_, "jfk.wav", "audio/wav"});
    items.push_back({"model", model, "", ""});
    for (auto& [k, v] : fields) items.push_back({k, v, "", ""});
    return items;
  }
  std::string expected_text(const std::string& key) {
    auto ids = reference_["generate"][key]["tokens"].get<std::vector<int32_t>>();
    std::vector<int32_t> text;
    for (auto t : ids)
      if (t < 50257) text.push_back(t);
    auto s = tokenizer_->decode(text, true);
    EXPECT_TRUE(s.ok());
    return s.ok() ? s.value() : "";
  }
  json expect_error(const httplib::Result& r, int status, const std::string& param = {}) {
    EXPECT_TRUE(r) << "no response";
    if (!r) return {};
    EXPECT_EQ(r->status, status) << r->body;
    json j = json::parse(r->body, nullptr, false);
    EXPECT_TRUE(j.is_object() && j.contains("error")) << r->body;
    if (!j.is_object() || !j.contains("error")) return {};
    EXPECT_TRUE(j["error"]["message"].is_string());
    if (!param.empty()) EXPECT_EQ(j["error"]["param"], param) << r->body;
    return j["error"];
  }

  engine::ModelManager manager_;
  fathom::testing::HttpTestServer server_;
  std::string jfk_;
  json reference_;
  std::shared_ptr<const formats::Tokenizer> tokenizer_;
};

TEST_F(WhisperHttp, TranscriptionAndTranslationTextMatchTransformers) {
  auto r = post("/v1/audio/transcriptions", form("tiny", {{"language", "en"}, {"max_completion_tokens", "24"}}));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["text"], expected_text("transcribe_en"));
  EXPECT_FALSE(j["text"].get<std::string>().empty());
  EXPECT_TRUE(j.contains("usage"));

  r = post("/v1/audio/translations", form("tiny", {{"language", "fr"}, {"max_completion_tokens", "24"}}));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["text"], expected_text("translate_fr"));
}

TEST_F(WhisperHttp, ResponseFormats) {
  auto text = post("/v1/audio/transcriptions",
                   form("tiny", {{"language", "en"}, {"max_completion_tokens", "24"}, {"response_format", "text"}}));
  ASSERT_TRUE(text);
  ASSERT_EQ(text->status, 200) << text->body;
  EXPECT_NE(text->get_header_value("Content-Type").find("text/plain"), std::string::npos);
  EXPECT_NE(text->body.find(expected_text("transcribe_en")), std::string::npos);

  auto verbose = post("/v1/audio/transcriptions",
                      form("tiny", {{"language", "en"}, {"max_completion_tokens", "24"}, {"response_format", "verbose_json"},
                                    {"timestamp_granularities[]", "segment"}}));
  ASSERT_TRUE(verbose);
  ASSERT_EQ(verbose->status, 200) << verbose->body;
  json v = json::parse(verbose->body);
  EXPECT_EQ(v["task"], "transcribe");
  EXPECT_EQ(v["language"], "english");
  ASSERT_TRUE(v["segments"].is_array());
  // The timestamps_en reference: segments over two windows, text of the timestamped tokens.
  EXPECT_GE(v["segments"].size(), 3u);
  EXPECT_EQ(v["text"], expected_text("timestamps_en"));
  EXPECT_NEAR(v["duration"].get<double>(), 11.0, 0.1);

  auto srt = post("/v1/audio/transcriptions",
                  form("tiny", {{"language", "en"}, {"max_completion_tokens", "24"}, {"response_format", "srt"}}));
  ASSERT_TRUE(srt);
  ASSERT_EQ(srt->status, 200) << srt->body;
  EXPECT_EQ(srt->body.rfind("1\n00:00:00,", 0), 0u) << srt->body;
  EXPECT_NE(srt->body.find(" --> "), std::string::npos);

  auto vtt = post("/v1/audio/transcriptions",
                  form("tiny", {{"language", "en"}, {"max_completion_tokens", "24"}, {"response_format", "vtt"}}));
  ASSERT_TRUE(vtt);
  ASSERT_EQ(vtt->status, 200) << vtt->body;
  EXPECT_EQ(vtt->body.rfind("WEBVTT", 0), 0u) << vtt->body;
}

TEST_F(WhisperHttp, StreamingDeltasAddUpToTheText) {
  auto r = post("/v1/audio/transcriptions",
                form("tiny", {{"language", "en"}, {"max_completion_tokens", "24"}, {"stream", "true"}}));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_NE(r->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  std::string joined, done;
  int deltas = 0;
  std::size_t pos = 0;
  while ((pos = r->body.find("data: ", pos)) != std::string::npos) {
    const auto end = r->body.find("\n\n", pos);
    ASSERT_NE(end, std::string::npos);
    json ev = json::parse(r->body.substr(pos + 6, end - pos - 6));
    if (ev["type"] == "transcript.text.delta") {
      EXPECT_TRUE(done.empty()) << "delta after done";
      joined += ev["delta"].get<std::string>();
      ++deltas;
    } else {
      EXPECT_EQ(ev["type"], "transcript.text.done");
      done = ev["text"].get<std::string>();
    }
    pos = end;
  }
  EXPECT_GE(deltas, 1);
  EXPECT_EQ(done, expected_text("transcribe_en"));
  EXPECT_EQ(joined, done);
}

TEST_F(WhisperHttp, ConcurrentRequestsShareBatches) {
  std::vector<std::thread> threads;
  std::vector<std::string> texts(6);
  for (int i = 0; i < 6; ++i)
    threads.emplace_back([&, i] {
      auto r = post("/v1/audio/transcriptions", form("tiny", {{"language", i % 2 ? "fr" : "en"},
                                                              {"max_completion_tokens", "24"}}));
      if (r && r->status == 200) texts[static_cast<std::size_t>(i)] = json::parse(r->body)["text"];
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < 6; i += 2) EXPECT_EQ(texts[static_cast<std::size_t>(i)], expected_text("transcribe_en")) << i;
  auto model = manager_.find("tiny");
  ASSERT_TRUE(model && model->speech_scheduler);
  EXPECT_GT(model->speech_scheduler->stats().largest_batch, 1u) << "requests decoded in one batch";
  EXPECT_EQ(model->speech_scheduler->stats().completed, 6u);
}

TEST_F(WhisperHttp, Errors) {
  expect_error(post("/v1/audio/transcriptions", form("tiny", {}, false)), 400, "file");
  httplib::MultipartFormDataItems empty{{"file", "", "a.wav", "audio/wav"}, {"model", "tiny", "", ""}};
  expect_error(post("/v1/audio/transcriptions", empty), 400, "file");
  httplib::MultipartFormDataItems junk{{"file", std::string(4000, 'x'), "a.mp3", "audio/mpeg"}, {"model", "tiny", "", ""}};
  expect_error(post("/v1/audio/transcriptions", junk), 400, "file");
  httplib::MultipartFormDataItems huge{{"file", std::string(25u * 1000u * 1000u + 1u, '\0'), "a.wav", "audio/wav"},
                                       {"model", "tiny", "", ""}};
  auto e = expect_error(post("/v1/audio/transcriptions", huge), 413, "file");
  EXPECT_NE(e["message"].get<std::string>().find("25000000"), std::string::npos) << e;
  e = expect_error(post("/v1/audio/transcriptions", form("nope", {})), 404, "model");
  e = expect_error(post("/v1/audio/transcriptions", form("bert", {})), 400, "model");
  EXPECT_NE(e["message"].get<std::string>().find("embed"), std::string::npos) << e;
  expect_error(post("/v1/audio/transcriptions", form("tiny", {{"response_format", "xml"}})), 400, "response_format");
  expect_error(post("/v1/audio/transcriptions", form("tiny", {{"temperature", "hot"}})), 400, "temperature");
  expect_error(post("/v1/audio/transcriptions", form("tiny", {{"temperature", "1.5"}})), 400, "temperature");
  expect_error(post("/v1/audio/transcriptions", form("tiny", {{"language", "klingon"}})), 400, "language");
  expect_error(post("/v1/audio/transcriptions", form("tiny", {{"stream", "true"}, {"response_format", "srt"}})), 400,
               "stream");
  httplib::Client c("127.0.0.1", server_.port());
  auto json_body = c.Post("/v1/audio/transcriptions", R"({"model":"tiny"})", "application/json");
  expect_error(json_body, 400);
}

TEST_F(WhisperHttp, BeamSearchAndSamplingOptions) {
  auto beam = post("/v1/audio/transcriptions", form("tiny", {{"language", "en"}, {"max_completion_tokens", "8"},
                                                             {"use_beam_search", "true"}, {"n", "3"}}));
  ASSERT_TRUE(beam);
  EXPECT_EQ(beam->status, 200) << beam->body;
  auto a = post("/v1/audio/transcriptions", form("tiny", {{"language", "en"}, {"max_completion_tokens", "8"},
                                                          {"temperature", "0.8"}, {"seed", "7"}}));
  auto b = post("/v1/audio/transcriptions", form("tiny", {{"language", "en"}, {"max_completion_tokens", "8"},
                                                          {"temperature", "0.8"}, {"seed", "7"}}));
  ASSERT_TRUE(a && b);
  ASSERT_EQ(a->status, 200) << a->body;
  EXPECT_EQ(a->body, b->body) << "same seed, same text";
}

}  // namespace
}  // namespace fathom::server
