#include "engine/model_manager.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

#include "base/log.h"

namespace fathom::engine {
namespace {

// Every queue serving `entry`, in attach order.
std::vector<Scheduler*> schedulers_of(const LoadedModel& entry) {
  std::vector<Scheduler*> out;
  if (entry.embed_scheduler) out.push_back(entry.embed_scheduler.get());
  for (const auto& [kind, scheduler] : entry.token_schedulers) out.push_back(scheduler.get());
  if (entry.classify_scheduler) out.push_back(entry.classify_scheduler.get());
  if (entry.speech_scheduler) out.push_back(entry.speech_scheduler.get());
  return out;
}

}  // namespace

const char* model_state_name(ModelState state) {
  switch (state) {
    case ModelState::kLoading: return "loading";
    case ModelState::kReady: return "ready";
    case ModelState::kUnloading: return "unloading";
    case ModelState::kFailed: return "failed";
  }
  return "unknown";
}

bool LoadedModel::has_task(models::Task task) const {
  return std::find(info.tasks.begin(), info.tasks.end(), task) != info.tasks.end();
}

std::size_t LoadedModel::memory_now() const {
  if (state.load() == ModelState::kLoading || !model_) return 0;
  return model_->memory_bytes();
}

int stream_priority_levels(double priority) {
  if (!(priority >= 1.5)) return 0;
  return std::max(1, static_cast<int>(std::lround(std::log2(std::min(priority, 1e6)))));
}

ModelManager::~ModelManager() { shutdown(); }

DeviceWorker& ModelManager::worker(const models::Device& device) {
  std::lock_guard lock(mu_);
  std::string key = device.to_string();
  auto& slot = workers_[key];
  if (!slot) slot = std::make_unique<DeviceWorker>(key);
  return *slot;
}

DeviceWorker& ModelManager::worker_of(const LoadedModel& entry) {
  if (!entry.concurrent) return worker(entry.device);
  std::lock_guard lock(mu_);
  // The worker keeps the device's name: device faults (runtime/device_fault.h) are reported per device.
  auto& slot = workers_[entry.device.to_string() + "/" + entry.name];
  if (!slot) slot = std::make_unique<DeviceWorker>(entry.device.to_string());
  return *slot;
}

std::size_t ModelManager::worker_count() const {
  std::lock_guard lock(mu_);
  return workers_.size();
}

std::vector<DeviceWorker::Fault> ModelManager::faults() const {
  std::vector<DeviceWorker::Fault> all;
  std::lock_guard lock(mu_);
  for (const auto& [name, w] : workers_) {
    auto f = w->faults();
    all.insert(all.end(), f.begin(), f.end());
  }
  return all;
}

Status ModelManager::reserve(const std::string& name, const std::filesystem::path& dir,
                             std::shared_ptr<LoadedModel>* out) {
  if (name.empty()) return make_error(ErrorCode::kInvalidArgument, "a model name must not be empty");
  std::lock_guard lock(mu_);
  if (shutting_down_) return make_error(ErrorCode::kUnavailable, "the server is shutting down");
  if (auto it = models_.find(name); it != models_.end() && it->second->state.load() != ModelState::kFailed) {
    return make_error(ErrorCode::kInvalidArgument, "a model named '" + name + "' is already loaded");
  }
  auto entry = std::make_shared<LoadedModel>();
  entry->name = name;
  entry->dir = dir;
  models_[name] = entry;
  *out = entry;
  return Status::Ok();
}

void ModelManager::forget(const std::string& name) {
  std::lock_guard lock(mu_);
  models_.erase(name);
}

Status ModelManager::add(const std::string& name, std::unique_ptr<models::Model> model, int max_batch_tokens,
                         const ServeOptions& serve_options, std::filesystem::path dir) {
  if (!model) return make_error(ErrorCode::kInvalidArgument, "model '" + name + "' is null");
  std::shared_ptr<LoadedModel> entry;
  FATHOM_TRY(reserve(name, dir, &entry));

  entry->info = model->info();
  entry->architecture = model->architecture();
  entry->dtype = model->dtype();
  entry->device = model->device();
  entry->memory_bytes = model->memory_bytes();
  entry->memory_budget = serve_options.memory_budget;
  entry->concurrent = serve_options.concurrent && model->runs_concurrently();
  if (serve_options.concurrent && !entry->concurrent) {
    FATHOM_LOG(kWarn) << "model '" << name << "' (" << entry->architecture << " on " << entry->device.to_string()
                      << ") cannot run concurrently with other models on its device; it shares the device's worker";
  }
  auto batch_options = [&] {
    EmbedSchedulerOptions options;
    options.limits.max_batch_tokens = std::max(1, max_batch_tokens);
    options.limits.max_batch_size = std::max(1, serve_options.max_batch_size);
    options.max_queued = serve_options.max_queued;
    options.priority = serve_options.priority > 0 ? serve_options.priority : 1.0;
    return options;
  };
  models::Embedder* embedder = model->as_embedder();
  if (entry->has_task(models::Task::kEmbed) && embedder == nullptr) {
    forget(name);
    return make_error(ErrorCode::kLoadFailed,
                      "model '" + name + "' declares the embed task but has no Embedder interface");
  }
  if (embedder != nullptr) {
    EmbedderFacts facts;
    facts.tokenizer = &embedder->tokenizer();
    facts.max_input_tokens = embedder->max_input_tokens();
    facts.embedding_dim = embedder->embedding_dim();
    facts.supports_matryoshka = embedder->supports_matryoshka();
    facts.matryoshka_dimensions = embedder->matryoshka_dimensions();
    facts.normalizes_by_default = embedder->normalizes_by_default();
    facts.prompts = embedder->prompts();
    facts.default_prompt_name = embedder->default_prompt_name();
    facts.token_outputs = embedder->token_outputs();
    for (models::TokenOutput kind : facts.token_outputs)
      entry->token_schedulers[kind] = std::make_shared<EmbedScheduler>(name, *embedder, kind, batch_options());
    entry->embedder = std::move(facts);

    entry->embed_scheduler = std::make_shared<EmbedScheduler>(name, *embedder, batch_options());
  }
  if (models::Classifier* classifier = model->as_classifier()) {
    ClassifierFacts facts;
    facts.tokenizer = &classifier->tokenizer();
    facts.max_input_tokens = classifier->max_input_tokens();
    facts.labels = classifier->labels();
    facts.activation = classifier->activation();
    entry->classifier = std::move(facts);
    entry->classify_scheduler = std::make_shared<EmbedScheduler>(name, *classifier, batch_options());
  }
  // Speech models get a speech queue (the registry already checked that declared speech tasks have one).
  if (models::SpeechToText* stt = model->as_speech_to_text()) {
    SpeechSchedulerOptions options;
    options.priority = serve_options.priority > 0 ? serve_options.priority : 1.0;
    entry->speech_scheduler = std::make_shared<SpeechScheduler>(name, *stt, options);
  }
  entry->model_ = std::move(model);
  if (entry->embed_scheduler) worker_of(*entry).attach(entry->embed_scheduler);
  for (const auto& [kind, scheduler] : entry->token_schedulers) worker_of(*entry).attach(scheduler);
  if (entry->classify_scheduler) worker_of(*entry).attach(entry->classify_scheduler);
  if (entry->speech_scheduler) worker_of(*entry).attach(entry->speech_scheduler);
  entry->created = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  entry->state = ModelState::kReady;
  return Status::Ok();
}

Status ModelManager::unload(const std::string& name) {
  std::shared_ptr<LoadedModel> entry;
  {
    std::lock_guard lock(mu_);
    auto it = models_.find(name);
    if (it == models_.end()) return make_error(ErrorCode::kNotFound, "no model named '" + name + "' is loaded");
    entry = it->second;
    if (entry->state == ModelState::kFailed) {
      models_.erase(it);
      return Status::Ok();
    }
    if (entry->state != ModelState::kReady) {
      return make_error(ErrorCode::kUnavailable, "model '" + name + "' is " + model_state_name(entry->state));
    }
    entry->state = ModelState::kUnloading;
  }
  // Let each queue's work finish, then detach it and fail anything that slipped in meanwhile.
  for (Scheduler* scheduler : schedulers_of(*entry)) {
    while (scheduler->has_work()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    worker_of(*entry).detach(scheduler);
    scheduler->close(make_error(ErrorCode::kUnavailable, "model '" + name + "' was unloaded", "model"));
  }
  forget(name);
  return Status::Ok();
}

std::shared_ptr<const LoadedModel> ModelManager::find(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = models_.find(name);
  return it == models_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<const LoadedModel>> ModelManager::list() const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<const LoadedModel>> out;
  for (const auto& [name, entry] : models_) out.push_back(entry);
  return out;
}

void ModelManager::shutdown() {
  if (shutting_down_.exchange(true)) return;
  std::vector<DeviceWorker*> workers;
  std::vector<std::shared_ptr<LoadedModel>> entries;
  {
    std::lock_guard lock(mu_);
    for (auto& [key, w] : workers_) workers.push_back(w.get());
    for (auto& [name, e] : models_) entries.push_back(e);
  }
  for (auto* w : workers) w->stop();  // finishes queued work
  for (auto& e : entries) {
    e->state = ModelState::kUnloading;
    for (Scheduler* scheduler : schedulers_of(*e))
      scheduler->close(make_error(ErrorCode::kUnavailable, "the server is shutting down"));
  }
}

}  // namespace fathom::engine
