#pragma once
// Model references: what `--model`, a config file's `path` and the admin API's `path` may name.
//
// A reference is either a local directory or a Hugging Face Hub repository `ORG/NAME[@REVISION]`. They are
// told apart by one rule (hub/resolve.h applies it): a path that exists on disk is always the local
// directory; otherwise text of the hub form below is a hub repository; anything else stays a (missing) path,
// so its error names the directory as before. `hf://ORG/NAME[@REVISION]` is always the hub repository.
//
// Hub form: exactly one '/', ORG and NAME each 1-96 characters of [A-Za-z0-9._-], neither starting with '.'
// or '-' nor containing "--" or ".."; optionally '@' and a revision (branch, tag, or 40-hex commit; may
// contain '/', as "refs/pr/1"). No revision means "main". Pure functions, any thread.
#include <optional>
#include <string>
#include <string_view>

namespace fathom::hub {

struct HubRef {
  std::string repo;                // "ORG/NAME"
  std::string revision = "main";   // branch, tag or commit hash
  bool explicit_revision = false;  // '@REVISION' was given
  bool explicit_hub = false;       // written hf://ORG/NAME...: never a local path
  std::string to_string() const;   // "ORG/NAME@REVISION"
};

// The hub reference `text` denotes, or nullopt when it does not have the hub form (it is then a path).
std::optional<HubRef> parse_hub_ref(std::string_view text);
// 40 lowercase hex digits (a git commit hash).
bool is_commit_hash(std::string_view text);
// The served name a reference gets when none is given: NAME for ORG/NAME[@REV], else the path's base name.
std::string default_model_name(std::string_view reference);

}  // namespace fathom::hub
