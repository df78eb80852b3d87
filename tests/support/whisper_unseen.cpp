#include "support/whisper_unseen.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

#include "formats/mel/log_mel.h"
#include "support/files.h"
#include "support/whisper_inputs.h"
#include "support/paths.h"

namespace fathom::testing {
namespace {

namespace fs = std::filesystem;

constexpr const char* kCommitted[] = {"wu-v3-bf16-hd24", "wu-80-f16-hd12-partial", "wu-80-f32-hd8",
                                      "wu-v3-f16-hd12-default-ln"};
constexpr const char* kReferenceSuffix = ".reference.json";

// The committed fixture whose tokenizer.json is the named Whisper tokenizer.
fs::path tokenizer_fixture(const std::string& tokenizer) {
  return fixture(tokenizer == "v3" ? "models/whisper-v3-random-f16" : "models/whisper-tiny-random-f32");
}

// Folders made by assemble_unseen_whisper(), removed at exit.
struct AssembledDirs {
  std::mutex mu;
  std::vector<fs::path> dirs;
  ~AssembledDirs() {
    std::error_code ec;
    for (const auto& d : dirs) fs::remove_all(d, ec);
  }
};
AssembledDirs& assembled() {
  static AssembledDirs a;
  return a;
}

}  // namespace

std::vector<UnseenWhisper> unseen_whisper_checkpoints() {
  std::vector<UnseenWhisper> out;
  for (const char* name : kCommitted) out.push_back({name, fixture("models/whisper-unseen")});
  const char* env = std::getenv("FATHOM_WHISPER_UNSEEN_DIRS");
  if (!env || !*env) return out;
  std::stringstream dirs(env);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    std::error_code ec;
    if (dir.empty() || !fs::is_directory(dir, ec)) continue;
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const std::string f = e.path().filename().string();
      const std::size_t n = std::strlen(kReferenceSuffix);
      if (f.size() > n && f.compare(f.size() - n, n, kReferenceSuffix) == 0) {
        const std::string name = f.substr(0, f.size() - n);
        if (fs::is_directory(fs::path(dir) / name, ec)) names.push_back(name);
      }
    }
    std::sort(names.begin(), names.end());
    for (auto& name : names) out.push_back({name, dir});
  }
  return out;
}

nlohmann::json unseen_reference(const UnseenWhisper& c) { return read_json(c.root / (c.name + kReferenceSuffix)); }

fs::path assemble_unseen_whisper(const UnseenWhisper& c) {
  const nlohmann::json ref = unseen_reference(c);
  const fs::path dst = fs::temp_directory_path() / ("fathom-whisper-unseen-" + std::to_string(::getpid()) + "-" + c.name);
  std::error_code ec;
  fs::remove_all(dst, ec);
  fs::create_directories(dst, ec);
  {
    std::lock_guard<std::mutex> lock(assembled().mu);
    assembled().dirs.push_back(dst);
  }
  EXPECT_FALSE(ec) << "cannot create " << dst << ": " << ec.message();
  if (ec) return {};
  const fs::path src = fs::absolute(c.root / c.name);
  for (const auto& e : fs::directory_iterator(src, ec)) {
    fs::create_symlink(fs::absolute(e.path()), dst / e.path().filename(), ec);
    EXPECT_FALSE(ec) << "cannot link " << e.path() << ": " << ec.message();
    if (ec) return {};
  }
  if (!fs::exists(dst / "tokenizer.json")) {
    const fs::path tok = fs::absolute(tokenizer_fixture(ref.value("tokenizer", "multilingual")) / "tokenizer.json");
    fs::create_symlink(tok, dst / "tokenizer.json", ec);
    EXPECT_FALSE(ec) << "cannot link " << tok << ": " << ec.message();
    if (ec) return {};
  }
  return dst;
}

std::vector<float> unseen_dump(const UnseenWhisper& c, const std::string& suffix) {
  const fs::path p = c.root / (c.name + "." + suffix);
  std::error_code ec;
  if (!fs::exists(p, ec)) return {};
  std::ifstream in(p, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<float> out(bytes.size() / sizeof(float));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  return out;
}

std::string unseen_name(const UnseenWhisper& c) {
  std::string s = c.name;
  for (auto& ch : s)
    if (ch == '-' || ch == '.') ch = '_';
  return s;
}

std::vector<float> whisper_prompt_logits(models::whisper::WhisperModel& model, const std::vector<float>& mel,
                                         const std::vector<int32_t>& prompt) {
  auto& net = model.network();
  auto slots = net.acquire_slots(1);
  EXPECT_TRUE(slots.ok());
  if (!slots.ok()) return {};
  std::vector<float> out;
  std::vector<std::span<const float>> windows{std::span<const float>(mel)};
  Status st = net.encode(windows, {slots.value()});
  EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error().message);
  if (st.ok()) {
    models::whisper::DecodeRow row{slots.value()[0], -1, 0, prompt};
    auto logits = net.decode({row});
    EXPECT_TRUE(logits.ok()) << (logits.ok() ? "" : logits.error().message);
    if (logits.ok()) out.assign(logits.value().begin(), logits.value().end());
  }
  net.release_slots(slots.value());
  return out;
}

ClipInput jfk_clip(int n_mels, std::size_t samples) {
  ClipInput c;
  JfkInput jfk = jfk_input(n_mels);
  if (jfk.samples.empty()) return c;
  const std::size_t n = std::min(samples, jfk.samples.size());
  std::vector<float> head(jfk.samples.begin(), jfk.samples.begin() + static_cast<std::ptrdiff_t>(n));
  c.duration = static_cast<double>(n) / 16000.0;
  auto mel = formats::whisper_log_mel_30s(head, n_mels);
  EXPECT_TRUE(mel.ok()) << (mel.ok() ? "" : mel.error().message);
  if (mel.ok()) c.mel = std::move(mel.value().data);
  return c;
}

std::vector<UnseenWhisperCase> unseen_whisper_cases(const std::vector<DType>& dtypes) {
  std::vector<UnseenWhisperCase> out;
  for (const auto& c : unseen_whisper_checkpoints())
    for (DType dt : dtypes) out.push_back({c, dt});
  return out;
}

}  // namespace fathom::testing
