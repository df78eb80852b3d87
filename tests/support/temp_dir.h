#pragma once
// A fresh directory under the system temp dir, unique per process and instance, removed with everything in
// it when the object goes out of scope.
#include <filesystem>
#include <string>

namespace fathom::testing {

class TempDir {
 public:
  // `tag` starts the directory name (it helps to tell which test left files behind after a crash).
  explicit TempDir(const std::string& tag = "fathom_test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // Writes `text` to path() / name.
  void write(const std::string& name, const std::string& text) const;

 private:
  std::filesystem::path path_;
};

}  // namespace fathom::testing
