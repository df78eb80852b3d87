// ModelManager::load lives apart from model_manager.cpp so that programs which only add in-process models
// (the engine tests) do not link the architecture registry.
#include "engine/model_manager.h"

namespace fathom::engine {

Status ModelManager::load(const std::string& name, const std::filesystem::path& dir,
                          const models::LoadOptions& load_options, const ServeOptions& serve_options) {
  // Reserve the name while loading so the model is listed as "loading" and the name cannot be taken twice.
  std::shared_ptr<LoadedModel> placeholder;
  FATHOM_TRY(reserve(name, dir, &placeholder));
  auto model = models::Registry::global().load(dir, load_options);
  forget(name);
  if (!model.ok()) {
    Error error = model.error();
    error.message = "cannot load model '" + name + "': " + error.message;
    return error;
  }
  return add(name, std::move(model).value(), load_options.max_batch_tokens, serve_options, dir);
}

}  // namespace fathom::engine
