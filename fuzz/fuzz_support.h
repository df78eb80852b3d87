#pragma once
// Helpers shared by the libFuzzer targets: where the fixtures are, a private scratch directory for targets
// whose parser reads files, and a byte reader that splits a fuzz input into choices and payload.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <unistd.h>

namespace fathom::fuzz {

// The project root (tests/fixtures) and the shared assets' parent; FATHOM_SOURCE_DIR / FATHOM_SHARED_DIR
// in the environment override the build-time paths.
inline std::filesystem::path source_dir() {
  if (const char* env = std::getenv("FATHOM_SOURCE_DIR")) return env;
  return FATHOM_SOURCE_DIR;
}
inline std::filesystem::path shared_dir() {
  if (const char* env = std::getenv("FATHOM_SHARED_DIR")) return env;
  return FATHOM_SHARED_DIR;
}

// A directory private to this process (under /dev/shm when it exists), emptied on each call of fresh().
class ScratchDir {
 public:
  ScratchDir() {
    std::filesystem::path base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
    dir_ = base / ("fathom-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const std::filesystem::path& path() const { return dir_; }
  // Removes everything inside and returns the directory.
  const std::filesystem::path& fresh() {
    for (const auto& e : std::filesystem::directory_iterator(dir_)) std::filesystem::remove_all(e.path());
    return dir_;
  }
  // Writes `bytes` to dir/rel (creating parent folders) and returns the full path.
  std::filesystem::path write(const std::filesystem::path& rel, std::string_view bytes) const {
    auto p = dir_ / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return p;
  }

 private:
  std::filesystem::path dir_;
};

// Consumes a fuzz input from the front: choice bytes first, the rest is the payload.
class Reader {
 public:
  Reader(const uint8_t* data, std::size_t size) : p_(data), n_(size) {}
  uint8_t byte() {
    if (n_ == 0) return 0;
    --n_;
    return *p_++;
  }
  std::string_view rest() const { return {reinterpret_cast<const char*>(p_), n_}; }
  std::size_t size() const { return n_; }

 private:
  const uint8_t* p_;
  std::size_t n_;
};

}  // namespace fathom::fuzz
