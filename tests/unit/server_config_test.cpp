// The serve configuration: TOML parsing (good and bad files), byte sizes, and merging with the command line.
#include <gtest/gtest.h>

#include <fstream>

#include "server/server_config.h"
#include "support/paths.h"

namespace fathom::server {
namespace {

ServerConfig parse_ok(const std::string& text) {
  auto c = parse_config(text, "/etc/fathom/test.toml");
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  return c.ok() ? c.value() : ServerConfig{};
}

std::string parse_error(const std::string& text) {
  auto c = parse_config(text, "test.toml");
  EXPECT_FALSE(c.ok()) << "parsed: " << text;
  return c.ok() ? "" : c.error().message;
}

TEST(ByteSize, ParsesUnits) {
  EXPECT_EQ(parse_byte_size("2GiB").value(), 2ull << 30);
  EXPECT_EQ(parse_byte_size("512MiB").value(), 512ull << 20);
  EXPECT_EQ(parse_byte_size("64 KiB").value(), 64ull << 10);
  EXPECT_EQ(parse_byte_size("1.5GB").value(), 1500000000ull);
  EXPECT_EQ(parse_byte_size("100").value(), 100u);
  EXPECT_EQ(parse_byte_size("100B").value(), 100u);
  EXPECT_EQ(parse_byte_size("1g").value(), 1ull << 30);
  EXPECT_FALSE(parse_byte_size("").ok());
  EXPECT_FALSE(parse_byte_size("GiB").ok());
  EXPECT_FALSE(parse_byte_size("-1GiB").ok());
  EXPECT_FALSE(parse_byte_size("1.2.3MiB").ok());
  auto bad = parse_byte_size("2 parsecs");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("unknown unit 'parsecs'"), std::string::npos) << bad.error().message;
}

TEST(ServerConfigFile, ParsesEverySetting) {
  auto c = parse_ok(R"(
[server]
host = "0.0.0.0"
port = 9000
admin_token = "s3cret"
access_log = false
log_level = "debug"

[limits]
max_body_bytes = "1MiB"
max_inputs = 64
max_input_tokens = 256
max_request_tokens = 4096
max_connections = 32
max_queued_requests = 100
request_timeout_seconds = 2.5

[defaults]
device = "cpu"
dtype = "float32"
max_batch_tokens = 2048
max_batch_size = 16

[[models]]
name = "bge"
path = "/models/bge"
device = "cuda:1"
dtype = "float16"
memory_budget = "2GiB"
max_batch_tokens = 8192
priority = 2
max_queued_requests = 50

[[models]]
path = "./models/whisper-small"  # ./: a path even where it does not exist (ORG/NAME would be a hub repository)
)");
  EXPECT_EQ(c.server.host, "0.0.0.0");
  EXPECT_EQ(c.server.port, 9000);
  EXPECT_EQ(c.server.admin_token, "s3cret");
  EXPECT_FALSE(c.server.access_log);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.server.max_body_bytes, 1u << 20);
  EXPECT_EQ(c.server.max_inputs, 64u);
  EXPECT_EQ(c.server.max_input_tokens, 256u);
  EXPECT_EQ(c.server.max_request_tokens, 4096u);
  EXPECT_EQ(c.server.max_connections, 32u);
  EXPECT_EQ(c.max_queued, 100u);
  EXPECT_DOUBLE_EQ(c.server.request_timeout_s, 2.5);
  EXPECT_EQ(c.dtype, DType::kF32);
  EXPECT_EQ(c.max_batch_tokens, 2048);
  EXPECT_EQ(c.max_batch_size, 16);
  ASSERT_EQ(c.models.size(), 2u);
  const auto& bge = c.models[0];
  EXPECT_EQ(bge.name, "bge");
  EXPECT_EQ(bge.path, "/models/bge");
  EXPECT_EQ(bge.device, Device::cuda(1));
  EXPECT_EQ(bge.dtype, DType::kF16);
  EXPECT_EQ(bge.memory_budget, 2ull << 30);
  EXPECT_EQ(bge.max_batch_tokens, 8192);
  EXPECT_EQ(bge.priority, 2.0);
  EXPECT_EQ(bge.max_queued, 50u);
  // A name defaults to the directory's base name; a relative path is relative to the file's folder.
  EXPECT_EQ(c.models[1].name, "whisper-small");
  EXPECT_EQ(c.models[1].path, "/etc/fathom/models/whisper-small");

  // Resolved options: per-model values win over the defaults.
  auto load = model_load_options(c, bge);
  EXPECT_EQ(load.device, Device::cuda(1));
  EXPECT_EQ(load.dtype, DType::kF16);
  EXPECT_EQ(load.memory_budget, 2ull << 30);
  EXPECT_EQ(load.max_batch_tokens, 8192);
  auto serve = model_serve_options(c, bge);
  EXPECT_EQ(serve.priority, 2.0);
  EXPECT_EQ(serve.max_queued, 50u);
  EXPECT_EQ(serve.max_batch_size, 16);
  auto other = model_load_options(c, c.models[1]);
  EXPECT_EQ(other.device, Device::cpu());
  EXPECT_EQ(other.memory_budget, 0u);
  EXPECT_EQ(other.max_batch_tokens, 2048);
  EXPECT_EQ(model_serve_options(c, c.models[1]).max_queued, 100u);
}

TEST(ServerConfigFile, EmptyFileGivesDefaults) {
  auto c = parse_ok("");
  ServerConfig d;
  EXPECT_EQ(c.server.port, d.server.port);
  EXPECT_EQ(c.max_queued, 1024u);
  EXPECT_DOUBLE_EQ(c.server.request_timeout_s, 600);
  EXPECT_TRUE(c.models.empty());
}

TEST(ServerConfigFile, BadFilesNameTheFileLineAndKey) {
  auto e = parse_error("[server]\nport = \"eighty\"\n");
  EXPECT_NE(e.find("test.toml:2: server.port: must be an integer"), std::string::npos) << e;
  e = parse_error("[server]\nprot = 80\n");
  EXPECT_NE(e.find("server.prot: unknown setting"), std::string::npos) << e;
  EXPECT_NE(e.find("port"), std::string::npos) << e;
  e = parse_error("[srever]\n");
  EXPECT_NE(e.find("srever: unknown setting"), std::string::npos) << e;
  e = parse_error("[server]\nport = 70000\n");
  EXPECT_NE(e.find("between 0 and 65535"), std::string::npos) << e;
  e = parse_error("[server\nport = 1\n");
  EXPECT_NE(e.find("test.toml:1"), std::string::npos) << e;
  EXPECT_NE(e.find("invalid TOML"), std::string::npos) << e;
  e = parse_error("[[models]]\nname = \"a\"\n");
  EXPECT_NE(e.find("needs a path"), std::string::npos) << e;
  e = parse_error("[[models]]\nname = \"a\"\npath = \"/x\"\nmemory_budget = \"2 lightyears\"\n");
  EXPECT_NE(e.find("test.toml:4: models[0].memory_budget"), std::string::npos) << e;
  e = parse_error("[[models]]\npath = \"/x\"\ndevice = \"tpu\"\n");
  EXPECT_NE(e.find("models[0].device: must be cpu, cuda or cuda:N"), std::string::npos) << e;
  e = parse_error("[[models]]\npath = \"/x\"\ndtype = \"int8\"\n");
  EXPECT_NE(e.find("models[0].dtype"), std::string::npos) << e;
  e = parse_error("[[models]]\npath = \"/x\"\npriority = 0\n");
  EXPECT_NE(e.find("models[0].priority: must be positive"), std::string::npos) << e;
  e = parse_error("[[models]]\nname = \"a\"\npath = \"/x\"\n[[models]]\nname = \"a\"\npath = \"/y\"\n");
  EXPECT_NE(e.find("'a' is defined twice"), std::string::npos) << e;
  e = parse_error("[[models]]\npath = \"/x\"\nbatch = 3\n");
  EXPECT_NE(e.find("models[0].batch: unknown setting"), std::string::npos) << e;
  e = parse_error("models = 3\n");
  EXPECT_NE(e.find("array of tables"), std::string::npos) << e;
  e = parse_error("[limits]\nrequest_timeout_seconds = -1\n");
  EXPECT_NE(e.find("limits.request_timeout_seconds: must be positive"), std::string::npos) << e;
  e = parse_error("[server]\nadmin_token = \"\"\n");
  EXPECT_NE(e.find("server.admin_token: must not be empty"), std::string::npos) << e;
}

TEST(ServerConfigFile, MissingFileIsAnError) {
  auto c = load_config_file("/nonexistent/fathom.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("/nonexistent/fathom.toml"), std::string::npos);
}

TEST(ServerConfigFile, TheShippedExampleParses) {
  auto c = load_config_file(fathom::testing::source_dir() / "examples" / "fathom.toml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_FALSE(c.value().models.empty());
}

TEST(MergeConfig, FlagsAloneFillTheConfig) {
  CommandLineSettings cli;
  cli.port = 0;
  cli.max_queued = 7;
  cli.request_timeout_s = 3;
  cli.models.push_back({"a", "/m/a"});
  cli.budgets["a"] = 1 << 20;
  cli.priorities["a"] = 3;
  auto c = merge_config(std::nullopt, "", cli);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c.value().server.port, 0);
  EXPECT_EQ(c.value().max_queued, 7u);
  EXPECT_DOUBLE_EQ(c.value().server.request_timeout_s, 3);
  ASSERT_EQ(c.value().models.size(), 1u);
  EXPECT_EQ(c.value().models[0].memory_budget, 1u << 20);
  EXPECT_EQ(c.value().models[0].priority, 3.0);
}

TEST(MergeConfig, FlagsAndFileCombineAndConflictsAreErrors) {
  auto file = parse_config("[server]\nport = 9000\n[[models]]\nname = \"a\"\npath = \"/m/a\"\nmemory_budget = \"1GiB\"\n",
                           "f.toml");
  ASSERT_TRUE(file.ok());

  // Settings the file does not set, or sets to the same value, combine.
  CommandLineSettings agree;
  agree.port = 9000;
  agree.host = "0.0.0.0";
  agree.models.push_back({"a", "/m/a"});  // the same model again
  agree.models.push_back({"b", "/m/b"});
  agree.budgets["b"] = 4096;
  auto c = merge_config(file.value(), "f.toml", agree);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c.value().server.host, "0.0.0.0");
  ASSERT_EQ(c.value().models.size(), 2u);
  EXPECT_EQ(c.value().models[0].memory_budget, 1u << 30);
  EXPECT_EQ(c.value().models[1].memory_budget, 4096u);

  CommandLineSettings port;
  port.port = 8001;
  auto e = merge_config(file.value(), "f.toml", port);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message, "--port 8001 conflicts with server.port = 9000 in f.toml; set it in one place");

  CommandLineSettings path;
  path.models.push_back({"a", "/elsewhere/a"});
  e = merge_config(file.value(), "f.toml", path);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("model 'a' is defined twice"), std::string::npos) << e.error().message;
  EXPECT_NE(e.error().message.find("f.toml"), std::string::npos);

  CommandLineSettings budget;
  budget.budgets["a"] = 1 << 20;
  e = merge_config(file.value(), "f.toml", budget);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("--budget a=1048576 conflicts with memory_budget"), std::string::npos) << e.error().message;

  CommandLineSettings unknown;
  unknown.budgets["zzz"] = 1;
  e = merge_config(file.value(), "f.toml", unknown);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("--budget names 'zzz', which is not a served model (models: a)"), std::string::npos)
      << e.error().message;

  CommandLineSettings prio;
  prio.priorities["nobody"] = 2;
  e = merge_config(file.value(), "f.toml", prio);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("--priority names 'nobody'"), std::string::npos);
}

}  // namespace
}  // namespace fathom::server
