// Fuzzes the option fields of the audio routes' multipart form (server/multipart_form.h): the fields as
// httplib hands them over (name -> content, names may repeat) to parse_audio_form, then serialises the
// OpenAI error body of every refusal as the handler wrapper does.
// Input: byte 0 bit 0 picks the task (transcribe / translate); the rest is a list of fields separated by
// the byte 0x1e, each "name=value" (split at the first '='; a record without '=' is a field with an empty
// value). Seeds: fuzz/corpus/multipart_form/ (python3 fuzz/make_seeds.py).
#include <string>
#include <string_view>

#include <httplib.h>

#include "fuzz_errors.h"
#include "fuzz_support.h"
#include "server/http_errors.h"
#include "server/multipart_form.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using fathom::server::AudioFormat;
  fathom::fuzz::Reader in(data, size);
  const uint8_t choice = in.byte();
  const auto task = (choice & 1) ? fathom::models::Task::kTranslate : fathom::models::Task::kTranscribe;
  httplib::MultipartFormDataMap fields;
  std::string_view rest = in.rest();
  while (!rest.empty() || fields.empty()) {
    const std::size_t end = rest.find('\x1e');
    const std::string_view record = rest.substr(0, end);
    const std::size_t eq = record.find('=');
    std::string name(record.substr(0, eq));
    std::string value(eq == std::string_view::npos ? std::string_view() : record.substr(eq + 1));
    fields.emplace(name, httplib::MultipartFormData{name, value, "", ""});
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  try {
    const fathom::server::AudioForm f = fathom::server::parse_audio_form(fields, task);
    // The contract's guarantees.
    const auto& o = f.options;
    if (!(o.temperature >= 0.0f && o.temperature <= 1.0f)) std::abort();
    if (!(o.top_p > 0.0f && o.top_p <= 1.0f)) std::abort();
    if (o.beams < 1 || o.beams > 64) std::abort();
    if (o.max_new_tokens < 0 || o.max_new_tokens > 100000) std::abort();
    if (o.translate != (task == fathom::models::Task::kTranslate)) std::abort();
    if (f.stream && f.format != AudioFormat::kJson && f.format != AudioFormat::kText) std::abort();
    const bool timestamped_format =
        f.format == AudioFormat::kVerboseJson || f.format == AudioFormat::kSrt || f.format == AudioFormat::kVtt;
    if (timestamped_format && !o.timestamps) std::abort();
  } catch (const fathom::server::ApiException& e) {
    if (e.error().status != 400 || e.error().param.empty()) std::abort();
    fathom::fuzz::serialise_error(e.error());
  }
  // Any other exception escapes and libFuzzer reports it: the contract allows only ApiException.
  return 0;
}
