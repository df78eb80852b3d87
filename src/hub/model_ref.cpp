#include "hub/model_ref.h"

#include <filesystem>

namespace fathom::hub {
namespace {

bool valid_part(std::string_view s) {
  if (s.empty() || s.size() > 96 || s[0] == '.' || s[0] == '-') return false;
  if (s.find("--") != std::string_view::npos || s.find("..") != std::string_view::npos) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool valid_revision(std::string_view s) {
  if (s.empty() || s.size() > 255 || s[0] == '/' || s.back() == '/') return false;
  if (s.find("..") != std::string_view::npos) return false;
  for (char c : s) {
    if (static_cast<unsigned char>(c) <= ' ' || c == '\\' || c == '?' || c == '#' || c == '%') return false;
  }
  return true;
}

}  // namespace

std::string HubRef::to_string() const { return repo + "@" + revision; }

bool is_commit_hash(std::string_view text) {
  if (text.size() != 40) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::optional<HubRef> parse_hub_ref(std::string_view text) {
  HubRef ref;
  if (text.rfind("hf://", 0) == 0) {
    text.remove_prefix(5);
    ref.explicit_hub = true;
  }
  std::string_view repo = text;
  if (auto at = text.find('@'); at != std::string_view::npos) {
    repo = text.substr(0, at);
    std::string_view rev = text.substr(at + 1);
    if (!valid_revision(rev)) return std::nullopt;
    ref.revision = std::string(rev);
    ref.explicit_revision = true;
  }
  auto slash = repo.find('/');
  if (slash == std::string_view::npos || repo.find('/', slash + 1) != std::string_view::npos) return std::nullopt;
  if (!valid_part(repo.substr(0, slash)) || !valid_part(repo.substr(slash + 1))) return std::nullopt;
  ref.repo = std::string(repo);
  return ref;
}

std::string default_model_name(std::string_view reference) {
  if (auto ref = parse_hub_ref(reference)) return ref->repo.substr(ref->repo.find('/') + 1);
  std::filesystem::path p{std::string(reference)};
  auto clean = p.lexically_normal();
  if (clean.filename().empty()) clean = clean.parent_path();
  std::string name = clean.filename().string();
  if (name.empty() || name == "." || name == "..") {
    name = std::filesystem::absolute(clean).lexically_normal().filename().string();
  }
  return name;
}

}  // namespace fathom::hub
