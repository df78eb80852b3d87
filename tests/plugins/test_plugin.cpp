// Tiny plugins for the loader's error tests, one MODULE library per FATHOM_TEST_PLUGIN_* mode:
//   VERSION_MISMATCH  reports FATHOM_PLUGIN_API_VERSION + 100
//   FAILING           registration returns non-zero after set_error()
//   THROWING          registration throws
//   INVALID           registers an architecture without a load function
//   NOTHING           registers nothing
#include <stdexcept>

#include "models/plugin_api.h"

#if defined(FATHOM_TEST_PLUGIN_VERSION_MISMATCH)
FATHOM_PLUGIN_EXPORT int fathom_plugin_api_version() { return FATHOM_PLUGIN_API_VERSION + 100; }
#else
FATHOM_PLUGIN_DEFINE_VERSION()
#endif

FATHOM_PLUGIN_EXPORT int fathom_register_plugin(const FathomPluginContext* ctx) {
#if defined(FATHOM_TEST_PLUGIN_FAILING)
  ctx->set_error(ctx, "the test plugin refuses to register");
  return 3;
#elif defined(FATHOM_TEST_PLUGIN_THROWING)
  throw std::runtime_error("the test plugin throws");
#elif defined(FATHOM_TEST_PLUGIN_NOTHING)
  return 0;
#else
  fathom::models::Architecture a;
  a.info.name = "test-arch";
  a.info.hf_architectures = {"FathomTestArchitecture"};
  a.info.tasks = {fathom::models::Task::kEmbed};
  a.info.devices = {fathom::DeviceKind::kCpu};
  return ctx->add_architecture(ctx, &a) == 0 ? 0 : 1;
#endif
}
