#include <algorithm>
#include <gtest/gtest.h>

#include <fstream>

#include "models/registry.h"

namespace fathom::models {
namespace {
namespace fs = std::filesystem;

class ConfigDir {
 public:
  explicit ConfigDir(const std::string& config) {
    path_ = fs::temp_directory_path() / ("fathom_registry_" + std::to_string(::getpid()) + "_" + std::to_string(n_++));
    fs::create_directories(path_);
    if (!config.empty()) std::ofstream(path_ / "config.json") << config;
  }
  ~ConfigDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  static inline int n_ = 0;
  fs::path path_;
};

TEST(Registry, MatchesArchitectureFirstThenModelType) {
  ConfigDir by_arch(R"({"architectures": ["BertForMaskedLM"], "model_type": "roberta"})");
  auto m = Registry::global().match(by_arch.path());
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->architecture->info.name, "bert");
  EXPECT_EQ(m->matched_on, "architectures[0] = BertForMaskedLM");

  ConfigDir by_type(R"({"architectures": ["SomethingNew"], "model_type": "xlm-roberta"})");
  auto t = Registry::global().match(by_type.path());
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->architecture->info.name, "xlm-roberta");
  EXPECT_EQ(t->matched_on, "model_type = xlm-roberta");

  ConfigDir only_type(R"({"model_type": "roberta"})");
  auto o = Registry::global().match(only_type.path());
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->architecture->info.name, "roberta");
  EXPECT_EQ(o->config["model_type"], "roberta");
}

TEST(Registry, TaskHeadsAreRefusedNotServedAsEmbedders) {
  // A reranker (bge-reranker: XLMRobertaForSequenceClassification) must not fall back to the encoder through
  // model_type: its scores come from the classification head.
  for (const char* arch : {"BertForTokenClassification",
                           "RobertaForQuestionAnswering", "XLMRobertaForMultipleChoice", "BertForNextSentencePrediction",
                           "RobertaForCausalLM"}) {
    std::string type = std::string(arch).rfind("XLM", 0) == 0 ? "xlm-roberta" : "bert";
    ConfigDir dir(std::string(R"({"architectures": [")") + arch + R"("], "model_type": ")" + type + R"("})");
    auto m = Registry::global().match(dir.path());
    ASSERT_FALSE(m.ok()) << arch;
    EXPECT_EQ(m.error().code, ErrorCode::kUnsupported);
    EXPECT_NE(m.error().message.find(arch), std::string::npos) << m.error().message;
    EXPECT_NE(m.error().message.find("task head"), std::string::npos) << m.error().message;
  }
  ConfigDir pretraining(R"({"architectures": ["BertForPreTraining"], "model_type": "bert"})");
  EXPECT_TRUE(Registry::global().match(pretraining.path()).ok());
}

TEST(Registry, SequenceClassificationHeadsAreClassifiersNotEmbedders) {
  // Every bge-reranker (XLMRobertaForSequenceClassification) and ms-marco cross-encoder (Bert...) matches the
  // classifier architecture of its family, which declares score + classify and never embed.
  const std::pair<const char*, const char*> cases[] = {
      {"BertForSequenceClassification", "bert-classifier"},
      {"RobertaForSequenceClassification", "roberta-classifier"},
      {"XLMRobertaForSequenceClassification", "xlm-roberta-classifier"},
      {"ModernBertForSequenceClassification", "modernbert-classifier"}};
  for (const auto& [arch, name] : cases) {
    ConfigDir dir(std::string(R"({"architectures": [")") + arch + R"("], "model_type": "bert"})");
    auto m = Registry::global().match(dir.path());
    ASSERT_TRUE(m.ok()) << arch << ": " << m.error().message;
    EXPECT_EQ(m->architecture->info.name, name);
    const auto& tasks = m->architecture->info.tasks;
    EXPECT_NE(std::find(tasks.begin(), tasks.end(), Task::kScore), tasks.end()) << arch;
    EXPECT_NE(std::find(tasks.begin(), tasks.end(), Task::kClassify), tasks.end()) << arch;
    EXPECT_EQ(std::find(tasks.begin(), tasks.end(), Task::kEmbed), tasks.end()) << arch;
  }
}

TEST(Registry, ErrorsSayWhatWasFoundAndWhatIsSupported) {
  ConfigDir unknown(R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama"})");
  auto m = Registry::global().match(unknown.path());
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, ErrorCode::kUnsupported);
  const std::string& msg = m.error().message;
  EXPECT_NE(msg.find("LlamaForCausalLM"), std::string::npos) << msg;
  EXPECT_NE(msg.find("llama"), std::string::npos);
  EXPECT_NE(msg.find("BertModel"), std::string::npos);
  EXPECT_NE(msg.find("XLMRobertaModel"), std::string::npos);
  EXPECT_NE(msg.find("config.json"), std::string::npos);

  ConfigDir nothing(R"({"hidden_size": 3})");
  auto n = Registry::global().match(nothing.path());
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.error().message.find("(none)"), std::string::npos);

  ConfigDir missing("");
  auto x = Registry::global().match(missing.path());
  ASSERT_FALSE(x.ok());
  EXPECT_EQ(x.error().code, ErrorCode::kNotFound);
  EXPECT_NE(x.error().message.find("config.json"), std::string::npos);

  ConfigDir broken("{\"architectures\": [");
  auto b = Registry::global().match(broken.path());
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().message.find("invalid JSON"), std::string::npos);
}

TEST(Registry, AddRejectsTakenNamesAndLoadChecksInterfaces) {
  Registry r;
  Architecture a;
  a.info.name = "toy";
  a.info.hf_architectures = {"ToyModel"};
  a.info.tasks = {Task::kEmbed};
  a.info.devices = {DeviceKind::kCpu};
  // A model that declares embed but exposes no Embedder.
  struct NoEmbedder : Model {
    ModelInfo info_;
    const ModelInfo& info() const override { return info_; }
    std::string architecture() const override { return "ToyModel"; }
    DType dtype() const override { return DType::kF32; }
    Device device() const override { return {}; }
    std::size_t memory_bytes() const override { return 0; }
  };
  a.load = [](const fs::path&, const nlohmann::json&, const LoadOptions&) -> Result<std::unique_ptr<Model>> {
    return std::unique_ptr<Model>(new NoEmbedder());
  };
  ASSERT_TRUE(r.add(a).ok());
  auto dup = r.add(a);
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.error().message.find("ToyModel"), std::string::npos);

  ConfigDir toy(R"({"architectures": ["ToyModel"]})");
  auto loaded = r.load(toy.path(), LoadOptions{});
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.error().message.find("embed"), std::string::npos);

  LoadOptions cuda;
  cuda.device = Device::cuda(0);
  auto wrong_device = r.load(toy.path(), cuda);
  ASSERT_FALSE(wrong_device.ok());
  EXPECT_EQ(wrong_device.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(wrong_device.error().message.find("cuda:0"), std::string::npos);
}

TEST(Tasks, NamesAndEndpoints) {
  EXPECT_STREQ(task_name(Task::kEmbed), "embed");
  // Embedding models also score and rerank (cosine similarity).
  EXPECT_EQ(task_endpoints(Task::kEmbed), (std::vector<std::string>{"/v1/embeddings", "/v1/score", "/v1/rerank"}));
  EXPECT_EQ(task_endpoints(Task::kTranscribe), std::vector<std::string>{"/v1/audio/transcriptions"});
  EXPECT_EQ(task_endpoints(Task::kTranslate), std::vector<std::string>{"/v1/audio/translations"});
  EXPECT_EQ(task_endpoints(Task::kScore), (std::vector<std::string>{"/v1/rerank", "/v1/score"}));
  EXPECT_EQ(task_endpoints(Task::kClassify), std::vector<std::string>{"/v1/classify"});
}

}  // namespace
}  // namespace fathom::models
