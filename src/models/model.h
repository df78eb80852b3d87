#pragma once
// What a loaded model is and what it can do.
//
// Static facts about an architecture (ModelInfo) are known without loading weights; they drive
// `fathom models`, `fathom inspect`, the startup table and which HTTP routes exist. Capabilities are C++
// interfaces reached through accessors (as_embedder(), as_speech_to_text()): a model that declares a task in its
// ModelInfo must return a non-null interface for it (checked at load by the registry).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/dtype.h"
#include "base/error.h"
#include "runtime/device.h"

namespace fathom::formats {
class Tokenizer;
}

namespace fathom::models {

// Tasks a model can serve. Each maps to OpenAI-style endpoints (see task_endpoints()).
enum class Task { kEmbed, kTranscribe, kTranslate, kScore, kClassify };

const char* task_name(Task task);  // "embed", "transcribe", ...
// The HTTP endpoints that serve `task`, e.g. {"/v1/embeddings"}.
std::vector<std::string> task_endpoints(Task task);

// Devices live in the runtime layer; these names stay usable here.
using fathom::Device;
using fathom::DeviceKind;

// Static description of an architecture.
struct ModelInfo {
  std::string name;                              // fathom's name for the family, e.g. "bert"
  std::vector<std::string> hf_architectures;     // config.json `architectures[0]` values matched
  std::vector<std::string> model_types;          // config.json `model_type` values matched (fallback)
  std::vector<Task> tasks;                       // what it serves
  std::vector<DeviceKind> devices;               // where it runs
  std::vector<DType> compute_dtypes;             // dtypes it computes in
  bool cuda_graphs = false;                      // whole forward capturable in a CUDA graph
  std::string source = "built-in";               // "built-in" or the plugin's path
};

// Per-token outputs an embedder may have beside its pooled vector: bge-m3's FlagEmbedding heads.
//   kSparse: lexical weights, relu(sparse_linear(h)) per position;
//   kColbert: multi-vector rows, colbert_linear(h) per position after the first.
enum class TokenOutput { kSparse, kColbert };
const char* token_output_name(TokenOutput kind);  // "sparse" / "colbert"

// Embedding (pooling) capability.
class Embedder {
 public:
  virtual ~Embedder() = default;
  virtual const formats::Tokenizer& tokenizer() const = 0;
  // Longest input accepted, in tokens including special tokens.
  virtual int max_input_tokens() const = 0;
  virtual int embedding_dim() const = 0;
  // Matryoshka dimensions the model declares (config.json `matryoshka_dimensions` / `is_matryoshka`);
  // empty when it does not support `dimensions`. When `is_matryoshka` is set without a list, every
  // size from 1 to embedding_dim() is allowed and this holds {embedding_dim()}.
  virtual bool supports_matryoshka() const = 0;
  virtual std::vector<int> matryoshka_dimensions() const = 0;
  // Whether the model's own configuration L2-normalises its output (sentence-transformers Normalize).
  virtual bool normalizes_by_default() const = 0;
  // Named prompts the model declares (config_sentence_transformers.json `prompts`, e.g. Qwen3-Embedding's
  // "query" instruction): a request naming one (`prompt_name`) has its text prepended to every input before
  // tokenization, as sentence-transformers' encode(prompt_name=...) does; the default prompt (empty: none)
  // applies when a request names none. Empty for models that declare no prompts.
  virtual std::vector<std::pair<std::string, std::string>> prompts() const { return {}; }
  virtual std::string default_prompt_name() const { return ""; }
  // Runs encoder + pooling on a batch of token-id sequences (each already tokenized with special tokens,
  // each 1..max_input_tokens() long). Returns sequences.size() * embedding_dim() floats, row-major,
  // pooled but NOT normalised. Called from one thread at a time (the device worker).
  virtual Result<std::vector<float>> embed(const std::vector<std::vector<int32_t>>& sequences) = 0;

  // The per-token outputs the model has (empty: dense only) and the floats per position of each.
  virtual std::vector<TokenOutput> token_outputs() const { return {}; }
  virtual int token_output_width(TokenOutput kind) const {
    (void)kind;
    return 0;
  }
  // Runs the encoder and the `kind` head on a batch (inputs as embed()). Returns, sequence after sequence,
  // token_output_rows(kind, len) rows of token_output_width(kind) floats:
  //   kSparse: one weight per position, relu(w . h + b), 0 at positions holding the tokens FlagEmbedding
  //            leaves out (the tokenizer's cls, eos, pad and unk tokens);
  //   kColbert: positions 1..len-1 (the first token dropped, as FlagEmbedding does), NOT normalised.
  // kUnsupported for a kind not in token_outputs(). Called from the device worker only, like embed().
  virtual Result<std::vector<float>> embed_tokens(const std::vector<std::vector<int32_t>>& sequences,
                                                  TokenOutput kind);
};

// Rows embed_tokens() returns for one sequence of `length` tokens.
std::size_t token_output_rows(TokenOutput kind, std::size_t length);

// Sequence classification capability: cross-encoders (rerankers) and text classifiers, i.e. a
// `*ForSequenceClassification` head on an encoder. Inputs are single texts or text pairs; a pair's segment
// (token type) travels in the high bits of each id (pack_segment), so that sequences batch, queue and replay
// from CUDA graphs exactly like an embedder's.
enum class ScoreActivation { kSigmoid, kSoftmax, kIdentity };
constexpr int kSegmentShift = 24;  // ids < 2^24; segment (type id) in bits 24..30
inline int32_t pack_segment(int32_t id, int32_t segment) { return id | (segment << kSegmentShift); }
inline int32_t unpack_id(int32_t packed) { return packed & ((1 << kSegmentShift) - 1); }
inline int32_t unpack_segment(int32_t packed) { return packed >> kSegmentShift; }

class Classifier {
 public:
  virtual ~Classifier() = default;
  virtual const formats::Tokenizer& tokenizer() const = 0;
  // Longest input (a text or a pair with its special tokens) in tokens.
  virtual int max_input_tokens() const = 0;
  // Label names in id order (config.json id2label; "LABEL_i" where it names none). size() = logits per input.
  virtual std::vector<std::string> labels() const = 0;
  // What turns logits into scores, as sentence-transformers' CrossEncoder and transformers' pipelines do:
  // config.json `sentence_transformers.activation_fn` when given, else sigmoid for one label and softmax for
  // several (problem_type "multi_label_classification": sigmoid per label).
  virtual ScoreActivation activation() const = 0;
  // Runs encoder + head on a batch of packed sequences (pack_segment ids, special tokens included, each
  // 1..max_input_tokens() long). Returns sequences.size() * labels().size() raw logits, row-major, as f32.
  // Called from one thread at a time (the device worker).
  virtual Result<std::vector<float>> classify(const std::vector<std::vector<int32_t>>& sequences) = 0;
};

// Speech-to-text capability (Whisper family). A request becomes a SpeechJob; the device worker advances
// all running jobs together with step(), so requests join and leave the running batch at any step
// (encoder windows batched, one batched decoder call per step).
struct SpeechOptions {
  bool translate = false;            // translate into English instead of transcribing
  std::string language;              // source language code ("en"); empty: detect
  std::string prompt;                // text conditioning the decoder (<|startofprev|>)
  bool timestamps = false;           // segment timestamps (verbose_json, srt, vtt); always on past 30 s
  float temperature = 0.0f;          // 0: greedy (or beam search); > 0: sampling
  float top_p = 1.0f;                // nucleus sampling mass
  uint64_t seed = 0;                 // sampling seed
  int beams = 1;                     // beam search width (temperature 0 only)
  int max_new_tokens = 0;            // per 30 s window; 0: the model's default (max_target_positions / 2)
  // Temperature fallback (Whisper; models/whisper/fallback.h): with two or more temperatures (increasing;
  // they replace `temperature`, attempt by attempt) a window is decoded again at the next one while its text compresses
  // more than compression_ratio_threshold or its avg_logprob is below logprob_threshold, and a final window
  // whose no_speech_prob exceeds no_speech_threshold (avg_logprob not above logprob_threshold) is skipped as
  // silence. Empty or one entry: off, `temperature` alone decides, the thresholds unused. Models without fallback refuse a schedule.
  std::vector<float> temperatures;
  std::optional<double> compression_ratio_threshold = 2.4;
  std::optional<double> logprob_threshold = -1.0;
  std::optional<double> no_speech_threshold = 0.6;
};

struct SpeechSegment {
  int id = 0;
  int seek = 0;                      // window start, in mel frames (10 ms) of the original audio
  double start = 0, end = 0;         // seconds from the start of the original audio
  std::string text;
  std::vector<int32_t> tokens;       // text and timestamp tokens of the segment
  float temperature = 0;
  double avg_logprob = 0;
  double compression_ratio = 0;      // of the window's text, zlib (as Whisper)
  double no_speech_prob = 0;
};

struct Transcription {
  std::string text;                  // the tokenizer's decode of all text tokens
  std::string language;              // code ("en"); empty for English-only models
  double language_prob = 1.0;
  double duration = 0;               // seconds of input audio
  std::vector<SpeechSegment> segments;
  std::vector<int32_t> tokens;       // all generated tokens, window after window (no prompt, no EOS)
};

class SpeechJob {
 public:
  virtual ~SpeechJob() = default;
  virtual bool done() const = 0;
  // Text decoded so far (complete UTF-8 only), growing monotonically; for streamed deltas.
  virtual std::string text_so_far() const = 0;
  // The outcome once done(): the transcription, or the error that failed this job alone.
  virtual Result<Transcription> result() const = 0;
  // Seconds of the input audio fully processed so far (0 .. duration; the duration once done), for progress
  // reports. Any thread. The default (-1) means the model does not report progress.
  virtual double seconds_done() const { return -1.0; }
};

class SpeechToText {
 public:
  virtual ~SpeechToText() = default;
  virtual const formats::Tokenizer& tokenizer() const = 0;
  virtual std::vector<std::string> languages() const = 0;  // accepted codes; empty: English-only
  // Validates `options` (language, lengths) and creates a job over `samples`: 16 kHz mono float32 audio
  // (formats::decode_audio's output; duration = samples.size() / 16000 s). Each model computes its own
  // features from the samples (Whisper: its log-mel; a CTC model: its filterbank), here or in step().
  // No device work. Thread-safe.
  virtual Result<std::unique_ptr<SpeechJob>> start(std::vector<float> samples, const SpeechOptions& options) = 0;
  // Advances every job by one step. Device worker thread only. Never throws for a request's fault: a
  // failure ends only the jobs it concerns (their result() holds the error).
  virtual void step(const std::vector<SpeechJob*>& jobs) = 0;
  // Ends `job` now (a client went away): frees what it holds on the device; its result() becomes a
  // kUnavailable "cancelled" error. No-op for a finished job. Device worker thread only. The default
  // does nothing (the job then runs to completion): models whose jobs hold device state override it.
  virtual void cancel(SpeechJob* job) { (void)job; }
};

// A loaded model.
class Model {
 public:
  virtual ~Model() = default;
  virtual const ModelInfo& info() const = 0;
  virtual std::string architecture() const = 0;  // the matched config.json architecture
  virtual DType dtype() const = 0;               // compute dtype
  virtual Device device() const = 0;
  // Weights + persistent workspaces held now. Any thread (the /metrics route reads it while the model runs).
  virtual std::size_t memory_bytes() const = 0;
  virtual Embedder* as_embedder() { return nullptr; }
  virtual SpeechToText* as_speech_to_text() { return nullptr; }
  virtual Classifier* as_classifier() { return nullptr; }
  // Whether the model's device work may overlap other models' on its device, i.e. it may run on a device
  // worker thread of its own (LoadOptions::concurrent). CPU models may; a CUDA model only when it owns every
  // device resource its steps write (stream, staging, GEMM workspace). Any thread.
  virtual bool runs_concurrently() const { return device().kind == DeviceKind::kCpu; }
};

}  // namespace fathom::models
