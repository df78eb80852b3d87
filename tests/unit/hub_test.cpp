// Hub downloads (src/hub) against a local fake hub (tests/support/fake_hub.h): model references, file
// selection, the cache layout huggingface_hub uses, revisions, gated repositories, sharded weights, resumed and
// corrupted transfers, 404s, offline mode, and reuse of a cache populated the way transformers populates it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "hub/cache_layout.h"
#include "hub/downloader.h"
#include "hub/file_selection.h"
#include "hub/resolve.h"
#include "server/server_config.h"
#include "support/fake_hub.h"
#include "support/paths.h"

namespace fathom::hub {
namespace {
namespace fs = std::filesystem;
using testing::FakeHub;

const std::string kShaA = "1111111111111111111111111111111111111111";
const std::string kShaB = "2222222222222222222222222222222222222222";
const std::string kShaC = "3333333333333333333333333333333333333333";

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool contains(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

std::size_t count_matching(const std::vector<std::string>& lines, const std::string& needle, const std::string& also = "") {
  return static_cast<std::size_t>(std::count_if(
      lines.begin(), lines.end(), [&](const auto& l) { return contains(l, needle) && contains(l, also); }));
}

class HubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/fathom_hub_test_XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    tmp_ = pattern;
    bert_ = testing::fixture("models/bert-mean-norm");
    sharded_ = testing::fixture("models/bert-mlm-sharded-lasttoken");
    hub_.add_commit("org/bert", bert_, kShaA, {"main"},
                    {{"README.md", "# a model card fathom does not need\n"}, {"pytorch_model.bin", "not safetensors"}});
    hub_.add_commit("org/bert", testing::fixture("models/roberta-cls"), kShaB, {"v2"});
    hub_.add_commit("org/sharded", sharded_, kShaC, {"main"});
    hub_.add_commit("org/gated", bert_, kShaA, {"main"});
    hub_.set_gated("org/gated", "secret-token");
    hub_.add_commit("org/pytorch-only", {}, kShaA, {"main"},
                    {{"config.json", "{\"architectures\": [\"BertModel\"]}"}, {"pytorch_model.bin", "weights"}});
    hub_.start();
    settings_.endpoint = hub_.endpoint();
    settings_.cache_dir = tmp_ / "cache";
    settings_.progress = ProgressMode::kNone;
    settings_.max_retries = 0;
    settings_.connect_timeout_s = 2;
    settings_.stall_timeout_s = 5;
  }
  void TearDown() override {
    hub_.stop();
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }
  fs::path repo_dir(const std::string& repo) const { return settings_.cache_dir / repo_folder_name(repo); }
  Result<fs::path> fetch(const std::string& reference) {
    auto ref = parse_hub_ref(reference);
    EXPECT_TRUE(ref.has_value()) << reference;
    return fetch_snapshot(*ref, settings_);
  }

  fs::path tmp_, bert_, sharded_;
  FakeHub hub_;
  HubSettings settings_;
};

TEST(HubRef, ParsesTheHubFormAndRejectsPaths) {
  auto r = parse_hub_ref("BAAI/bge-small-en-v1.5");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->repo, "BAAI/bge-small-en-v1.5");
  EXPECT_EQ(r->revision, "main");
  EXPECT_FALSE(r->explicit_revision);
  r = parse_hub_ref("org/name@refs/pr/1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->revision, "refs/pr/1");
  EXPECT_TRUE(r->explicit_revision);
  for (const char* path : {"/models/bge", "./org/name", "../org/name", "org/name/", "a/b/c", "name", "~/org/name",
                           "org/na me", "org--x/name", "org/name@", "org/name@../x", ".org/name", "org/.."}) {
    EXPECT_FALSE(parse_hub_ref(path)) << path;
  }
  r = parse_hub_ref("hf://org/name@v1");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->explicit_hub);
  EXPECT_EQ(r->repo, "org/name");
  EXPECT_EQ(default_model_name("hf://org/name@v1"), "name");
  EXPECT_TRUE(is_commit_hash(kShaA));
  EXPECT_FALSE(is_commit_hash("main"));
  EXPECT_EQ(default_model_name("org/bge-small@v2"), "bge-small");
  EXPECT_EQ(default_model_name("/models/bge-base/"), "bge-base");
  EXPECT_EQ(repo_folder_name("org/bge-small"), "models--org--bge-small");
}

TEST(HubFiles, SelectsWhatAModelNeeds) {
  const std::vector<std::string> siblings = {
      ".gitattributes", "README.md", "config.json", "model.safetensors", "pytorch_model.bin", "tf_model.h5",
      "onnx/model.onnx", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
      "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json", "1_Pooling/config.json",
      "2_Dense/config.json", "2_Dense/model.safetensors", "2_Dense/pytorch_model.bin", "generation_config.json",
      "preprocessor_config.json", "pytorch_model.bin.index.json", "openvino/openvino_model.xml"};
  auto files = select_initial_files("org/x", siblings);
  ASSERT_TRUE(files.ok()) << files.error().message;
  const std::vector<std::string> want = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                                         "special_tokens_map.json", "vocab.txt", "modules.json", "sentence_bert_config.json",
                                         "config_sentence_transformers.json", "generation_config.json",
                                         "preprocessor_config.json"};
  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  EXPECT_EQ(sorted(*files), sorted(want));
  auto modules = nlohmann::json::parse(
      R"([{"path": ""}, {"path": "1_Pooling"}, {"path": "2_Dense"}, {"path": "3_Normalize"}])");
  EXPECT_EQ(sorted(module_files(modules, siblings)),
            sorted({"1_Pooling/config.json", "2_Dense/config.json", "2_Dense/model.safetensors"}));

  // bge-m3: its sparse / colbert heads come along as a pair; one alone (or any other .pt) is left out.
  auto m3 = select_initial_files("org/x", {"config.json", "model.safetensors", "sparse_linear.pt", "colbert_linear.pt",
                                           "pytorch_model.bin", "other.pt"});
  ASSERT_TRUE(m3.ok()) << m3.error().message;
  EXPECT_EQ(sorted(*m3), sorted({"colbert_linear.pt", "config.json", "model.safetensors", "sparse_linear.pt"}));
  auto half = select_initial_files("org/x", {"config.json", "model.safetensors", "sparse_linear.pt"});
  ASSERT_TRUE(half.ok());
  EXPECT_EQ(sorted(*half), sorted({"config.json", "model.safetensors"}));

  auto bin_only = select_initial_files("org/x", {"config.json", "pytorch_model.bin", "vocab.txt"});
  ASSERT_FALSE(bin_only.ok());
  EXPECT_TRUE(contains(bin_only.error().message, "pytorch_model.bin is not supported")) << bin_only.error().message;
  auto no_config = select_initial_files("org/x", {"model.safetensors"});
  ASSERT_FALSE(no_config.ok());
  EXPECT_TRUE(contains(no_config.error().message, "no config.json")) << no_config.error().message;
}

TEST_F(HubTest, DownloadsTheNeededFilesIntoTheHubCacheLayout) {
  auto snap = fetch("org/bert");
  ASSERT_TRUE(snap.ok()) << snap.error().message;
  EXPECT_EQ(*snap, repo_dir("org/bert") / "snapshots" / kShaA);
  EXPECT_EQ(read(repo_dir("org/bert") / "refs" / "main"), kShaA);  // no newline, as huggingface_hub writes it
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "modules.json",
                        "sentence_bert_config.json", "config_sentence_transformers.json", "1_Pooling/config.json"}) {
    const fs::path link = *snap / f;
    ASSERT_TRUE(fs::is_symlink(link)) << f;
    EXPECT_EQ(read(link), read(bert_ / f)) << f;
    // Relative links into blobs/<etag>, the etag being the sha256 for LFS files, the git blob sha1 otherwise.
    const std::string content = read(bert_ / f);
    const bool lfs = std::string(f) == "model.safetensors";
    const std::string etag = lfs ? FakeHub::sha256_hex(content) : FakeHub::git_blob_sha1(content);
    const std::string name = f;
    const int depth = static_cast<int>(std::count(name.begin(), name.end(), '/'));
    std::string up;
    for (int i = 0; i < depth + 2; ++i) up += "../";
    EXPECT_EQ(fs::read_symlink(link).string(), up + "blobs/" + etag) << f;
    EXPECT_TRUE(fs::is_regular_file(repo_dir("org/bert") / "blobs" / etag)) << f;
  }
  EXPECT_FALSE(fs::exists(*snap / "README.md"));
  EXPECT_FALSE(fs::exists(*snap / "pytorch_model.bin"));
  EXPECT_EQ(count_matching(hub_.requests(), "README.md"), 0u);
  EXPECT_EQ(count_matching(hub_.requests(), "pytorch_model.bin"), 0u);
  for (const auto& e : fs::directory_iterator(repo_dir("org/bert") / "blobs")) {
    EXPECT_FALSE(contains(e.path().string(), ".incomplete")) << e.path();
  }

  // Again: the API is asked for the commit; every file is already in the snapshot, so no file request.
  hub_.clear_requests();
  auto again = fetch("org/bert");
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(*again, *snap);
  ASSERT_EQ(hub_.requests().size(), 1u);
  EXPECT_TRUE(contains(hub_.requests()[0], "/api/models/org/bert/revision/main"));
}

TEST_F(HubTest, BranchesAndCommitsAreSeparateSnapshots) {
  auto main = fetch("org/bert");
  auto v2 = fetch("org/bert@v2");
  auto by_sha = fetch("org/bert@" + kShaA);
  ASSERT_TRUE(main.ok() && v2.ok() && by_sha.ok());
  EXPECT_EQ(*v2, repo_dir("org/bert") / "snapshots" / kShaB);
  EXPECT_EQ(read(*v2 / "config.json"), read(testing::fixture("models/roberta-cls/config.json")));
  EXPECT_EQ(read(repo_dir("org/bert") / "refs" / "v2"), kShaB);
  EXPECT_EQ(*by_sha, *main);
  EXPECT_FALSE(fs::exists(repo_dir("org/bert") / "refs" / kShaA));  // a commit needs no ref
}

TEST_F(HubTest, GatedRepositoryNeedsTheToken) {
  auto denied = fetch("org/gated");
  ASSERT_FALSE(denied.ok());
  EXPECT_TRUE(contains(denied.error().message, "gated")) << denied.error().message;
  EXPECT_TRUE(contains(denied.error().message, "HF_TOKEN")) << denied.error().message;
  EXPECT_TRUE(contains(denied.error().message, "401")) << denied.error().message;

  settings_.token = "wrong";
  auto wrong = fetch("org/gated");
  ASSERT_FALSE(wrong.ok());
  EXPECT_TRUE(contains(wrong.error().message, "was refused")) << wrong.error().message;

  settings_.token = "secret-token";
  auto ok = fetch("org/gated");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_TRUE(fs::exists(*ok / "model.safetensors"));
}

TEST_F(HubTest, TokenComesFromHfTokenOrTheTokenFile) {
  const fs::path home = tmp_ / "hfhome";
  fs::create_directories(home);
  std::ofstream(home / "token") << "from-file\n";
  setenv("HF_HOME", home.c_str(), 1);
  unsetenv("HF_TOKEN");
  unsetenv("HUGGING_FACE_HUB_TOKEN");
  unsetenv("HF_TOKEN_PATH");
  unsetenv("HF_HUB_CACHE");
  unsetenv("HUGGINGFACE_HUB_CACHE");
  auto s = HubSettings::from_environment();
  EXPECT_EQ(s.token, "from-file");
  EXPECT_EQ(s.cache_dir, home / "hub");
  setenv("HF_TOKEN", "from-env", 1);
  setenv("HF_ENDPOINT", "http://mirror.example/", 1);
  setenv("HF_HUB_OFFLINE", "1", 1);
  s = HubSettings::from_environment();
  EXPECT_EQ(s.token, "from-env");
  EXPECT_EQ(s.endpoint, "http://mirror.example");
  EXPECT_TRUE(s.offline);
  for (const char* v : {"HF_HOME", "HF_TOKEN", "HF_ENDPOINT", "HF_HUB_OFFLINE"}) unsetenv(v);
}

TEST_F(HubTest, ShardedWeightsFetchEveryShardOfTheIndex) {
  auto snap = fetch("org/sharded");
  ASSERT_TRUE(snap.ok()) << snap.error().message;
  for (const char* f : {"model.safetensors.index.json", "model-00001-of-00002.safetensors",
                        "model-00002-of-00002.safetensors", "1_Pooling/config.json"}) {
    EXPECT_EQ(read(*snap / f), read(sharded_ / f)) << f;
  }
  auto sha = sha256_file(*snap / "model-00002-of-00002.safetensors");
  ASSERT_TRUE(sha.ok());
  EXPECT_EQ(*sha, FakeHub::sha256_hex(read(sharded_ / "model-00002-of-00002.safetensors")));
}

TEST_F(HubTest, InterruptedTransferResumesWithARangeRequest) {
  const std::string weights = read(bert_ / "model.safetensors");
  ASSERT_GT(weights.size(), 4096u);
  const std::string etag = FakeHub::sha256_hex(weights);
  hub_.cut_transfer("model.safetensors", 3000);
  auto cut = fetch("org/bert");
  ASSERT_FALSE(cut.ok());
  EXPECT_TRUE(contains(cut.error().message, "interrupted")) << cut.error().message;
  EXPECT_TRUE(contains(cut.error().message, "model.safetensors")) << cut.error().message;
  const fs::path partial = repo_dir("org/bert") / "blobs" / (etag + ".incomplete");
  ASSERT_TRUE(fs::exists(partial));
  EXPECT_EQ(fs::file_size(partial), 3000u);
  EXPECT_FALSE(fs::exists(repo_dir("org/bert") / "blobs" / etag));  // nothing that looks complete
  EXPECT_FALSE(fs::exists(repo_dir("org/bert") / "snapshots" / kShaA / "model.safetensors"));
  EXPECT_FALSE(fs::exists(repo_dir("org/bert") / "refs" / "main"));

  hub_.clear_requests();
  auto resumed = fetch("org/bert");
  ASSERT_TRUE(resumed.ok()) << resumed.error().message;
  EXPECT_EQ(count_matching(hub_.requests(), "GET /cdn/", "range=bytes=3000-"), 1u);
  EXPECT_EQ(read(*resumed / "model.safetensors"), weights);
  EXPECT_FALSE(fs::exists(partial));
}

TEST_F(HubTest, RetriesResumeWithinOneRun) {
  settings_.max_retries = 3;
  hub_.cut_transfer("model.safetensors", 2000, 2);
  auto snap = fetch("org/bert");
  ASSERT_TRUE(snap.ok()) << snap.error().message;
  EXPECT_EQ(count_matching(hub_.requests(), "GET /cdn/", "range=bytes=2000-"), 2u);  // cut again at 2000, then completed
  EXPECT_EQ(read(*snap / "model.safetensors"), read(bert_ / "model.safetensors"));
}

TEST_F(HubTest, ChecksumMismatchLeavesNoFile) {
  hub_.corrupt("model.safetensors");
  auto bad = fetch("org/bert");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(contains(bad.error().message, "checksum mismatch")) << bad.error().message;
  EXPECT_TRUE(contains(bad.error().message, "deleted")) << bad.error().message;
  const std::string etag = FakeHub::sha256_hex(read(bert_ / "model.safetensors"));
  EXPECT_FALSE(fs::exists(repo_dir("org/bert") / "blobs" / etag));
  EXPECT_FALSE(fs::exists(repo_dir("org/bert") / "blobs" / (etag + ".incomplete")));
  EXPECT_FALSE(fs::exists(repo_dir("org/bert") / "snapshots" / kShaA / "model.safetensors"));
}

TEST_F(HubTest, NotFoundErrorsSayWhatIsMissing) {
  auto repo = fetch("org/nothing");
  ASSERT_FALSE(repo.ok());
  EXPECT_EQ(repo.error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(contains(repo.error().message, "no model repository org/nothing")) << repo.error().message;
  auto rev = fetch("org/bert@v9");
  ASSERT_FALSE(rev.ok());
  EXPECT_TRUE(contains(rev.error().message, "no revision 'v9'")) << rev.error().message;
  hub_.hide("tokenizer.json");
  auto file = fetch("org/bert");
  ASSERT_FALSE(file.ok());
  EXPECT_TRUE(contains(file.error().message, "has no file tokenizer.json")) << file.error().message;
  auto bin = fetch("org/pytorch-only");
  ASSERT_FALSE(bin.ok());
  EXPECT_TRUE(contains(bin.error().message, "pytorch_model.bin is not supported")) << bin.error().message;
}

TEST_F(HubTest, UnreachableHubNamesTheEndpointOrFallsBackToTheCache) {
  hub_.stop();
  auto down = fetch("org/bert");
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(contains(down.error().message, settings_.endpoint)) << down.error().message;
  hub_.start();
  settings_.endpoint = hub_.endpoint();
  ASSERT_TRUE(fetch("org/bert").ok());
  hub_.stop();
  auto cached = fetch("org/bert");
  ASSERT_TRUE(cached.ok()) << cached.error().message;
  EXPECT_TRUE(fs::exists(*cached / "model.safetensors"));
}

TEST_F(HubTest, OfflineUsesOnlyTheCache) {
  settings_.offline = true;
  auto missing = fetch("org/bert");
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(contains(missing.error().message, "HF_HUB_OFFLINE")) << missing.error().message;
  EXPECT_TRUE(contains(missing.error().message, "refs/main")) << missing.error().message;
  EXPECT_TRUE(hub_.requests().empty());

  settings_.offline = false;
  ASSERT_TRUE(fetch("org/sharded").ok());
  hub_.stop();
  settings_.offline = true;
  auto snap = fetch("org/sharded");
  ASSERT_TRUE(snap.ok()) << snap.error().message;
  EXPECT_EQ(*snap, repo_dir("org/sharded") / "snapshots" / kShaC);

  // A snapshot missing a shard (its blob gone) is named.
  fs::remove(fs::canonical(*snap / "model-00002-of-00002.safetensors"));
  auto broken = fetch("org/sharded");
  ASSERT_FALSE(broken.ok());
  EXPECT_TRUE(contains(broken.error().message, "model-00002-of-00002.safetensors")) << broken.error().message;
}

// A cache laid out by huggingface_hub (transformers / sentence-transformers) before fathom ran.
void populate_like_transformers(const fs::path& root, const fs::path& model, const std::string& sha) {
  for (const auto& e : fs::recursive_directory_iterator(model)) {
    if (!e.is_regular_file()) continue;
    const std::string rel = e.path().lexically_relative(model).generic_string();
    const std::string content = read(e.path());
    const std::string etag = rel.size() > 12 && rel.substr(rel.size() - 12) == ".safetensors"
                                 ? FakeHub::sha256_hex(content) : FakeHub::git_blob_sha1(content);
    fs::create_directories(root / "blobs");
    fs::copy_file(e.path(), root / "blobs" / etag, fs::copy_options::overwrite_existing);
    const fs::path link = root / "snapshots" / sha / rel;
    fs::create_directories(link.parent_path());
    fs::create_symlink((root / "blobs" / etag).lexically_relative(link.parent_path()), link);
  }
  fs::create_directories(root / "refs");
  std::ofstream(root / "refs" / "main") << sha;
}

TEST_F(HubTest, ReusesACachePopulatedByTransformers) {
  populate_like_transformers(repo_dir("org/bert"), bert_, kShaA);
  hub_.stop();
  settings_.offline = true;
  auto offline = fetch("org/bert");
  ASSERT_TRUE(offline.ok()) << offline.error().message;
  EXPECT_EQ(read(*offline / "model.safetensors"), read(bert_ / "model.safetensors"));

  // Online: only the API call; nothing is downloaded again.
  hub_.start();
  settings_.endpoint = hub_.endpoint();
  settings_.offline = false;
  auto online = fetch("org/bert");
  ASSERT_TRUE(online.ok()) << online.error().message;
  ASSERT_EQ(hub_.requests().size(), 1u) << hub_.requests().back();
  EXPECT_EQ(count_matching(hub_.requests(), "/cdn/"), 0u);

  // Blobs are shared across snapshots: v2 of another repo copy reuses present blobs without downloading.
  fs::remove_all(repo_dir("org/bert") / "snapshots");
  hub_.clear_requests();
  ASSERT_TRUE(fetch("org/bert").ok());
  EXPECT_EQ(count_matching(hub_.requests(), "/cdn/"), 0u);   // blob present: linked, not fetched
  EXPECT_GT(count_matching(hub_.requests(), "HEAD "), 0u);   // its ETag was asked for
}

TEST_F(HubTest, AnExistingLocalPathWins) {
  const fs::path cwd = fs::current_path();
  fs::create_directories(tmp_ / "work" / "org" / "bert");
  fs::current_path(tmp_ / "work");
  auto local = resolve_model_dir("org/bert", settings_);
  fs::current_path(cwd);
  ASSERT_TRUE(local.ok());
  EXPECT_EQ(*local, fs::path("org/bert"));
  EXPECT_TRUE(hub_.requests().empty());
  // hf:// is the hub even where the path exists.
  fs::current_path(tmp_ / "work");
  auto forced = resolve_model_dir("hf://org/bert", settings_);
  fs::current_path(cwd);
  ASSERT_TRUE(forced.ok()) << forced.error().message;
  EXPECT_EQ(*forced, repo_dir("org/bert") / "snapshots" / kShaA);
  auto missing_path = resolve_model_dir("/no/such/dir", settings_);
  ASSERT_TRUE(missing_path.ok());
  EXPECT_EQ(*missing_path, fs::path("/no/such/dir"));
}

TEST_F(HubTest, ConcurrentLoadsOfOneRepositoryDownloadEachBlobOnce) {
  std::vector<std::thread> threads;
  std::vector<Status> results(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto r = fetch_snapshot(*parse_hub_ref("org/sharded"), settings_);
      results[static_cast<std::size_t>(i)] = r.ok() ? Status::Ok() : Status(r.error());
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) EXPECT_TRUE(r.ok()) << r.error().message;
  const std::string shard = FakeHub::sha256_hex(read(sharded_ / "model-00001-of-00002.safetensors"));
  EXPECT_EQ(count_matching(hub_.requests(), "GET /cdn/" + shard), 1u);  // the blob lock serialised them
  EXPECT_EQ(read(repo_dir("org/sharded") / "snapshots" / kShaC / "model-00001-of-00002.safetensors"),
            read(sharded_ / "model-00001-of-00002.safetensors"));
}

TEST(HubProgress, DrawsABarOnATerminal) {
  std::stringstream captured;
  auto* old = std::cerr.rdbuf(captured.rdbuf());
  {
    DownloadProgress bar("org/x model.safetensors", 4 << 20, 1 << 20, ProgressMode::kBar);
    bar.add(1 << 20);
    bar.finish(true);
  }
  std::cerr.rdbuf(old);
  const std::string out = captured.str();
  EXPECT_TRUE(contains(out, "\rorg/x model.safetensors  [###############...............] 50%  2.0 MiB / 4.0 MiB")) << out;
  EXPECT_EQ(out.back(), '\n');
}

TEST(HubConfig, ConfigFileKeepsHubReferences) {
  auto c = server::parse_config("[[models]]\npath = \"org/bge-small@v2\"\n\n[[models]]\npath = \"local/dir\"\n",
                                "/etc/fathom/fathom.toml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_EQ(c->models.size(), 2u);
  EXPECT_EQ(c->models[0].path, fs::path("org/bge-small@v2"));
  EXPECT_EQ(c->models[0].name, "bge-small");
  // local/dir has the hub form too but does not exist here; a path like ./local/dir is always a path.
  auto d = server::parse_config("[[models]]\npath = \"./local/dir\"\n", "/etc/fathom/fathom.toml");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->models[0].path, fs::path("/etc/fathom/local/dir"));
}

}  // namespace
}  // namespace fathom::hub
