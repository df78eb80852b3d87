// parse_audio_form: the option fields of the audio routes' multipart form, valid values and every refusal
// (status 400, the field named in `param`, the reason in `code`).
#include <gtest/gtest.h>

#include "server/http_errors.h"
#include "server/multipart_form.h"

namespace fathom::server {
namespace {

using models::Task;

httplib::MultipartFormDataMap form(std::initializer_list<std::pair<std::string, std::string>> fields) {
  httplib::MultipartFormDataMap m;
  for (const auto& [k, v] : fields) m.emplace(k, httplib::MultipartFormData{k, v, "", ""});
  return m;
}

ApiError refusal(const httplib::MultipartFormDataMap& fields, Task task = Task::kTranscribe) {
  try {
    parse_audio_form(fields, task);
  } catch (const ApiException& e) {
    return e.error();
  }
  ADD_FAILURE() << "expected a refusal";
  return {};
}

void expect_refused(std::initializer_list<std::pair<std::string, std::string>> fields, const std::string& param,
                    const std::string& code = "invalid_value", const std::string& in_message = {}) {
  const ApiError e = refusal(form(fields));
  EXPECT_EQ(e.status, 400) << e.message;
  EXPECT_EQ(e.param, param) << e.message;
  EXPECT_EQ(e.code, code) << e.message;
  EXPECT_EQ(e.type, "invalid_request_error");
  if (!in_message.empty()) EXPECT_NE(e.message.find(in_message), std::string::npos) << e.message;
}

TEST(MultipartForm, DefaultsWhenNoOptionIsGiven) {
  const AudioForm f = parse_audio_form(form({{"model", "m"}, {"file", "RIFF"}, {"unknown", "x"}}), Task::kTranscribe);
  EXPECT_EQ(f.format, AudioFormat::kJson);
  EXPECT_FALSE(f.stream);
  EXPECT_FALSE(f.options.translate);
  EXPECT_FALSE(f.options.timestamps);
  EXPECT_EQ(f.options.temperature, 0.0f);
  EXPECT_EQ(f.options.top_p, 1.0f);
  EXPECT_EQ(f.options.beams, 1);
  EXPECT_EQ(f.options.max_new_tokens, 0);
  EXPECT_TRUE(f.options.language.empty());
  EXPECT_TRUE(parse_audio_form({}, Task::kTranslate).options.translate);
}

TEST(MultipartForm, ValidValuesWithWhitespaceAreParsed) {
  const AudioForm f = parse_audio_form(form({{"language", " fr\r\n"},
                                             {"prompt", " keep  as is "},
                                             {"response_format", "verbose_json "},
                                             {"temperature", " 0.25"},
                                             {"top_p", "0.5\n"},
                                             {"seed", "42"},
                                             {"max_completion_tokens", " 24 "},
                                             {"timestamp_granularities[]", "segment"}}),
                                       Task::kTranscribe);
  EXPECT_EQ(f.options.language, "fr");
  EXPECT_EQ(f.options.prompt, " keep  as is ");
  EXPECT_EQ(f.format, AudioFormat::kVerboseJson);
  EXPECT_FLOAT_EQ(f.options.temperature, 0.25f);
  EXPECT_FLOAT_EQ(f.options.top_p, 0.5f);
  EXPECT_EQ(f.options.seed, 42u);
  EXPECT_EQ(f.options.max_new_tokens, 24);
  EXPECT_TRUE(f.options.timestamps);
}

TEST(MultipartForm, BeamSearchWidthAndStream) {
  EXPECT_EQ(parse_audio_form(form({{"use_beam_search", "true"}}), Task::kTranscribe).options.beams, 5);
  EXPECT_EQ(parse_audio_form(form({{"use_beam_search", "1"}, {"n", "3"}}), Task::kTranscribe).options.beams, 3);
  EXPECT_EQ(parse_audio_form(form({{"use_beam_search", ""}}), Task::kTranscribe).options.beams, 1);
  EXPECT_TRUE(parse_audio_form(form({{"stream", "True"}, {"response_format", "text"}}), Task::kTranscribe).stream);
  EXPECT_FALSE(parse_audio_form(form({{"stream", ""}}), Task::kTranscribe).stream);
  for (const char* fmt : {"srt", "vtt", "verbose_json"})
    EXPECT_TRUE(parse_audio_form(form({{"response_format", fmt}}), Task::kTranscribe).options.timestamps) << fmt;
}

TEST(MultipartForm, EmptyOptionalValuesMeanNotGiven) {
  const AudioForm f = parse_audio_form(
      form({{"response_format", " "}, {"temperature", ""}, {"top_p", ""}, {"seed", ""}, {"max_completion_tokens", ""},
            {"n", ""}}),
      Task::kTranscribe);
  EXPECT_EQ(f.format, AudioFormat::kJson);
  EXPECT_EQ(f.options.beams, 1);
  EXPECT_EQ(f.options.max_new_tokens, 0);
}

TEST(MultipartForm, EveryInvalidValueIsA400NamingItsField) {
  expect_refused({{"response_format", "mp3"}}, "response_format", "invalid_value", "'mp3'");
  expect_refused({{"temperature", "hot"}}, "temperature", "invalid_value", "'hot'");
  expect_refused({{"temperature", "1.5"}}, "temperature", "invalid_value", "between 0 and 1");
  expect_refused({{"temperature", "-0.1"}}, "temperature");
  expect_refused({{"temperature", "nan"}}, "temperature");
  expect_refused({{"temperature", "1e400"}}, "temperature");
  expect_refused({{"temperature", "0.5x"}}, "temperature");
  expect_refused({{"top_p", "0"}}, "top_p", "invalid_value", "(0, 1]");
  expect_refused({{"top_p", "inf"}}, "top_p");
  expect_refused({{"seed", "1.5"}}, "seed", "invalid_value", "integer");
  expect_refused({{"seed", "99999999999999999999999"}}, "seed");
  expect_refused({{"max_completion_tokens", "0"}}, "max_completion_tokens", "invalid_value", "100000");
  expect_refused({{"max_completion_tokens", "100001"}}, "max_completion_tokens");
  expect_refused({{"max_completion_tokens", "-3"}}, "max_completion_tokens");
  expect_refused({{"use_beam_search", "yes"}}, "use_beam_search", "invalid_value", "true or false");
  expect_refused({{"use_beam_search", "true"}, {"n", "65"}}, "n", "invalid_value", "between 1 and 64");
  expect_refused({{"use_beam_search", "true"}, {"n", "0"}}, "n");
  expect_refused({{"n", "2"}}, "n", "invalid_value", "use_beam_search");
  expect_refused({{"timestamp_granularities[]", "word"}, {"response_format", "verbose_json"}},
                 "timestamp_granularities[]", "unsupported_value", "word-level");
  expect_refused({{"timestamp_granularities", "char"}, {"response_format", "verbose_json"}},
                 "timestamp_granularities", "invalid_value", "'char'");
  expect_refused({{"timestamp_granularities[]", "segment"}}, "timestamp_granularities[]", "invalid_value",
                 "verbose_json");
  expect_refused({{"stream", "maybe"}}, "stream", "invalid_value");
  expect_refused({{"stream", "true"}, {"response_format", "srt"}}, "stream", "invalid_value", "json or text");
}

TEST(MultipartForm, RepeatedGranularitiesAreAllChecked) {
  httplib::MultipartFormDataMap m = form({{"response_format", "verbose_json"}});
  m.emplace("timestamp_granularities[]", httplib::MultipartFormData{"timestamp_granularities[]", "segment", "", ""});
  m.emplace("timestamp_granularities[]", httplib::MultipartFormData{"timestamp_granularities[]", "word", "", ""});
  EXPECT_EQ(refusal(m).code, "unsupported_value");
}

TEST(MultipartForm, TemperatureFallbackSchedule) {
  const AudioForm list = parse_audio_form(form({{"temperature", "0, 0.2,0.4"}}), Task::kTranscribe);
  EXPECT_EQ(list.options.temperatures, (std::vector<float>{0.0f, 0.2f, 0.4f}));
  EXPECT_EQ(list.options.temperature, 0.0f);
  EXPECT_EQ(list.options.compression_ratio_threshold, 2.4);  // openai-whisper's defaults
  EXPECT_EQ(list.options.logprob_threshold, -1.0);
  EXPECT_EQ(list.options.no_speech_threshold, 0.6);
  const AudioForm single = parse_audio_form(form({{"temperature", "0.3"}}), Task::kTranscribe);
  EXPECT_TRUE(single.options.temperatures.empty());
  EXPECT_FLOAT_EQ(single.options.temperature, 0.3f);
  const AudioForm inc = parse_audio_form(
      form({{"temperature", "0.5"}, {"temperature_increment_on_fallback", "0.25"}, {"logprob_threshold", "none"},
            {"compression_ratio_threshold", "3"}}),
      Task::kTranscribe);
  EXPECT_EQ(inc.options.temperatures, (std::vector<float>{0.5f, 0.75f, 1.0f}));
  EXPECT_FALSE(inc.options.logprob_threshold.has_value());
  EXPECT_EQ(inc.options.compression_ratio_threshold, 3.0);
  expect_refused({{"temperature", "0.4,0.2"}}, "temperature", "invalid_value", "must increase");
  expect_refused({{"temperature", "0,1.5"}}, "temperature", "invalid_value", "between 0 and 1");
  expect_refused({{"temperature", "0,x"}}, "temperature", "invalid_value", "must be a number");
  expect_refused({{"temperature_increment_on_fallback", "0"}}, "temperature_increment_on_fallback");
  expect_refused({{"temperature", "0,0.5"}, {"temperature_increment_on_fallback", "0.2"}},
                 "temperature_increment_on_fallback", "invalid_value", "not both");
  expect_refused({{"no_speech_threshold", "0.5"}}, "no_speech_threshold", "invalid_value", "fallback only");
}

}  // namespace
}  // namespace fathom::server
