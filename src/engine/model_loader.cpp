// ModelManager::load lives apart from model_manager.cpp so that programs which only add in-process models
// (the engine tests) do not link the architecture registry.
#include <cstdio>
#include <system_error>

#include "engine/model_manager.h"
#include "hub/resolve.h"

namespace fathom::engine {
namespace {

std::string mib(std::size_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

// Total size of the checkpoint's *.safetensors files (0 when none can be read).
std::size_t checkpoint_bytes(const std::filesystem::path& dir) {
  std::size_t total = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() != ".safetensors") continue;
    auto size = it->file_size(ec);
    if (!ec) total += size;
    ec.clear();
  }
  return total;
}

}  // namespace

Status ModelManager::load(const std::string& name, const std::filesystem::path& reference,
                          const models::LoadOptions& load_options, const ServeOptions& serve_options) {
  // Reserve the name while loading so the model is listed as "loading" and the name cannot be taken twice.
  std::shared_ptr<LoadedModel> placeholder;
  FATHOM_TRY(reserve(name, reference, &placeholder));
  placeholder->memory_budget = load_options.memory_budget;
  placeholder->device = load_options.device;
  models::LoadOptions options = load_options;
  if (options.max_sms > 0 && options.device.kind != DeviceKind::kCuda) {
    Error error = make_error(ErrorCode::kInvalidArgument, "cannot load model '" + name +
                                                              "': max_sms (an SM partition) applies to CUDA devices "
                                                              "only; " + options.device.to_string() + " was requested");
    placeholder->error = error.message;
    placeholder->state = ModelState::kFailed;
    return error;
  }
  options.concurrent = serve_options.concurrent;  // the serving option decides (LoadOptions only carries it)
  if (options.stream_priority == 0) options.stream_priority = stream_priority_levels(serve_options.priority);
  // A hub reference (ORG/NAME[@REVISION]) becomes its snapshot directory, downloaded while the model is
  // listed as loading; a local path is returned as given (hub/resolve.h).
  auto resolved = hub::resolve_model_dir(reference.string());
  if (!resolved.ok()) {
    Error error = resolved.error();
    error.message = "cannot load model '" + name + "' from " + reference.string() + ": " + error.message;
    placeholder->error = error.message;
    placeholder->state = ModelState::kFailed;
    return error;
  }
  const std::filesystem::path dir = resolved.value();
  auto model = models::Registry::global().load(dir, options);
  if (!model.ok()) {
    Error error = model.error();
    if (error.code == ErrorCode::kOutOfMemory && load_options.memory_budget != 0) {
      const std::size_t need = checkpoint_bytes(dir);
      error.message = "model '" + name + "' does not fit its memory budget of " + mib(load_options.memory_budget) +
                      " (" + std::to_string(load_options.memory_budget) + " bytes)" +
                      (need ? "; its checkpoint files alone hold " + mib(need) + " (" + std::to_string(need) + " bytes)"
                            : std::string()) +
                      ": " + error.message;
    }
    error.message = "cannot load model '" + name + "' from " + dir.string() +
                    (dir == reference ? std::string() : " (" + reference.string() + ")") + ": " + error.message;
    placeholder->error = error.message;
    placeholder->state = ModelState::kFailed;
    return error;
  }
  forget(name);
  ServeOptions serve = serve_options;
  serve.memory_budget = load_options.memory_budget;
  serve.concurrent = options.concurrent;
  return add(name, std::move(model).value(), load_options.max_batch_tokens, serve, dir);
}

}  // namespace fathom::engine
