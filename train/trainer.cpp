#include "train/trainer.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "data/manifest.h"
#include "dist/exit_codes.h"
#include "model/safetensors.h"
#include "train/checkpointer.h"
#include "train/faults.h"
#include "train/metrics_log.h"
#include "train/pretrain_encoder.h"
#include "train/stop_signal.h"
#include "train/train_step.h"
#include "train/training_state.h"

namespace vtb::train {

model::SpeechLM build_speech_lm(const TrainSettings& s, const data::Tokenizer& tok) {
  model::SpeechLMConfig c = s.model;
  c.audio_token_id = tok.special().audio;
  // Every rank seeds the same generator before building: identical stand-in LLM and initial weights.
  torch::manual_seed(static_cast<uint64_t>(s.seed));
  model::SpeechLM lm = s.llm_dir.empty() ? model::SpeechLM(c)
                                         : model::SpeechLM(c, model::load_hf_decoder(s.llm_dir, c.lora, torch::kFloat));
  if (tok.vocab_size() > lm->llm->config().vocab)
    throw std::runtime_error("the tokenizer has " + std::to_string(tok.vocab_size()) +
                             " pieces but the LLM's vocabulary is " + std::to_string(lm->llm->config().vocab) +
                             " (llm.vocab, or the model's embedding rows)");
  if (!s.encoder_init.empty()) model::load_encoder_weights(lm, s.encoder_init);
  lm->freeze_llm_base();
  lm->train();
  return lm;
}

std::vector<data::LoaderSource> read_sources(const TrainSettings& s) {
  if (s.sources.empty()) throw std::runtime_error("no data sources: give at least one data.source");
  std::vector<data::LoaderSource> out;
  for (const auto& src : s.sources) {
    data::ManifestOptions o;
    o.kind = data::source_kind(src.task);
    o.default_prompt = src.prompt;
    o.skip_bad_lines = s.skip_bad_lines;
    o.min_duration = s.min_duration;
    o.max_duration = s.max_duration;
    data::Manifest m = data::read_manifest(src.manifest, o);
    if (m.examples.empty())
      throw std::runtime_error("source '" + src.name + "' (" + src.manifest + ") has no usable examples");
    out.push_back({src.name, src.weight, std::move(m.examples)});
  }
  return out;
}

namespace {

// Note [Fixed batch]: with train.fixed_batch every step trains on one batch read from a file, so another
// implementation fed the same file does the same work per step (bench/bench_vs_pytorch.sh). The file holds
// the job's whole batch — ids [B, T] int64, lengths [B], loss_mask [B, T] (0/1), features [N, n_mels, F],
// feature_lengths [N], the audio segments in placeholder order — and rank r of W takes rows
// [r·B/W, (r+1)·B/W) with their segments. No loader, no SpecAugment; everything else (the step, the
// bucketer, the optimizer, checkpoints, metrics) is the normal run's. Rank 0 writes every parameter before
// the first step to RUN_DIR/initial_parameters.safetensors, so the other implementation can start from the
// same weights and check its loss against step 1's.
data::Batch read_fixed_batch(const std::string& path, int64_t audio_token_id, int rank, int ranks) {
  const auto file = model::SafetensorsFile::open(path);
  auto need = [&](const char* name) {
    if (file->find(name) == nullptr)
      throw std::runtime_error(path + ": train.fixed_batch has no tensor '" + name + "'");
    return file->tensor(name);
  };
  const at::Tensor ids = need("ids").to(torch::kLong), lengths = need("lengths").to(torch::kLong);
  const at::Tensor mask = need("loss_mask").to(torch::kLong);
  const int64_t B = ids.size(0);
  if (ids.dim() != 2 || mask.sizes() != ids.sizes() || lengths.sizes() != at::IntArrayRef{B} || B < ranks)
    throw std::runtime_error(path + ": train.fixed_batch needs ids and loss_mask [B, T], lengths [B], B >= " +
                             std::to_string(ranks) + " ranks");
  const int64_t begin = rank * B / ranks, end = (rank + 1) * B / ranks;
  // Segments before this rank's rows, and in them: the <audio> placeholders within each row's length.
  const at::Tensor placeholders =
      (ids.eq(audio_token_id) & (torch::arange(ids.size(1)).unsqueeze(0) < lengths.unsqueeze(1))).sum(1);
  const int64_t first = placeholders.narrow(0, 0, begin).sum().item<int64_t>();
  const int64_t count = placeholders.narrow(0, begin, end - begin).sum().item<int64_t>();
  data::Batch b;
  b.ids = ids.narrow(0, begin, end - begin).contiguous();
  b.lengths = lengths.narrow(0, begin, end - begin).contiguous();
  b.loss_mask = mask.narrow(0, begin, end - begin).to(torch::kBool).contiguous();
  b.sources.assign(static_cast<size_t>(end - begin), 0);
  b.answer_tokens = b.loss_mask.sum().item<int64_t>();
  if (count > 0) {
    const at::Tensor features = need("features").to(torch::kFloat);
    const at::Tensor frames = need("feature_lengths").to(torch::kLong);
    if (features.dim() != 3 || frames.sizes() != at::IntArrayRef{features.size(0)} ||
        placeholders.sum().item<int64_t>() != features.size(0))
      throw std::runtime_error(path +
                               ": train.fixed_batch needs features [N, n_mels, F] and feature_lengths [N], "
                               "one segment per <audio> placeholder (" +
                               std::to_string(placeholders.sum().item<int64_t>()) + ")");
    b.features = features.narrow(0, first, count).contiguous();
    b.feature_lengths = frames.narrow(0, first, count).contiguous();
    b.audio_seconds = static_cast<double>(b.feature_lengths.sum().item<int64_t>()) / 100.0;  // 10 ms hop
  }
  return b;
}

// train.fixed_batch's batch for this rank, or none (Note [Fixed batch]).
std::optional<data::Batch> fixed_batch(const TrainSettings& s, model::SpeechLM& lm, dist::Communicator& comm) {
  if (s.fixed_batch.empty()) return std::nullopt;
  data::Batch b = read_fixed_batch(s.fixed_batch, lm->config().audio_token_id, comm.rank(), comm.size());
  spdlog::info("train.fixed_batch: every step trains on {} rows of {} on this rank (Note [Fixed batch])", b.ids.size(0),
               s.fixed_batch);
  return b;
}

// The weights step 1 starts from, for another implementation to start from too (Note [Fixed batch]).
void write_initial_parameters(model::SpeechLM& lm, const std::string& run_dir) {
  std::filesystem::create_directories(run_dir);
  std::vector<std::pair<std::string, at::Tensor>> all;
  for (const auto& p : lm->named_parameters()) all.emplace_back(p.key(), p.value().detach().cpu());
  model::write_safetensors(run_dir + "/initial_parameters.safetensors", all);
}

std::vector<data::Batch> draw(data::BatchLoader& loader, int64_t micro_batches,
                              const std::optional<data::Batch>& fixed) {
  std::vector<data::Batch> out;
  for (int64_t m = 0; m < micro_batches; ++m) out.push_back(fixed ? *fixed : loader.next());
  return out;
}

// Steps skipped in a row for a non-finite loss or gradient: a warning each, an error after max_bad_steps.
class BadSteps {
 public:
  explicit BadSteps(int64_t limit) : limit_(limit) {}
  void count(int64_t step, const Update& update) {
    if (update.applied) {
      in_a_row_ = 0;
      return;
    }
    if (++in_a_row_ >= limit_)
      throw std::runtime_error(
          "step " + std::to_string(step) + ": " + std::to_string(in_a_row_) +
          " steps in a row with a non-finite loss or gradient; stopping. Lower train.lr or check the data.");
    spdlog::warn("step {}: non-finite loss or gradient norm; step skipped ({} in a row)", step, in_a_row_);
  }

 private:
  int64_t limit_, in_a_row_ = 0;
};

// dist.zero = 1 or 2: this rank's pieces of every gradient bucket (Note [Optimizer shards]).
optim::ShardLayout shard_optimizer(optim::AdamW& optimizer, const dist::GradientBucketer& bucketer,
                                   dist::Communicator& comm, int zero) {
  std::vector<int64_t> numel;
  for (const auto& named : optimizer.params()) numel.push_back(named.second.numel());
  std::vector<std::vector<size_t>> buckets;
  for (size_t b = 0; b < bucketer.bucket_count(); ++b) buckets.push_back(bucketer.bucket_params(b));
  optim::ShardLayout layout = optim::plan_shards(numel, buckets, comm.size(), comm.rank());
  layout.zero = zero;
  optimizer.shard(layout);
  int64_t total = 0;
  for (int64_t n : numel) total += n;
  spdlog::info(
      "dist.zero = {}: AdamW state{} sharded over {} ranks, {} of {} trainable elements on this rank ({} buckets)",
      zero, zero == 2 ? " and averaged gradients" : "", comm.size(), layout.owned(), total, buckets.size());
  return layout;
}

}  // namespace

int run_training(dist::Communicator& comm, const TrainSettings& s) {
  install_stop_handlers();
  const data::Tokenizer tok = data::Tokenizer::load(s.tokenizer, s.audio_piece);
  model::SpeechLM lm = build_speech_lm(s, tok);
  lm->to(comm.device());  // cuda:<local rank> with NCCL, cpu with MPI
  dist::NamedTensors trainable;
  for (const auto& p : lm->named_parameters())
    if (p.value().requires_grad()) trainable.emplace_back(p.key(), p.value());
  dist::BucketOptions buckets = s.buckets;
  buckets.scatter = s.zero == 2;
  dist::GradientBucketer bucketer(trainable, comm, buckets);
  optim::AdamW optimizer(trainable, s.adamw);
  std::optional<optim::ShardLayout> shards;
  if (s.zero >= 1) shards = shard_optimizer(optimizer, bucketer, comm, s.zero);
  std::vector<data::LoaderSource> sources = read_sources(s);
  std::vector<std::string> source_names;
  for (const auto& src : sources) source_names.push_back(src.name);
  data::BatchLoader loader(std::move(sources), tok, s.limits, s.mix, s.loader, comm.rank(), comm.size());

  const std::optional<data::Batch> fixed = fixed_batch(s, lm, comm);
  const PrecisionChoice precision = choose_precision(s.precision, comm);
  spdlog::info("{}", precision.reason);
  TrainSettings logged = s;  // MFU against the measured rate of the precision in use, unless one is given
  if (logged.peak_tflops == 0)
    logged.peak_tflops = (precision.bf16 ? precision.bf16_gflops : precision.fp32_gflops) / 1e3;
  const Faults faults = Faults::from_environment();
  Checkpointer checkpointer(comm, s, lm, optimizer, loader, faults);
  RunState run = checkpointer.resume();
  if (fixed && run.step == 0 && comm.rank() == 0) write_initial_parameters(lm, s.run_dir);
  MetricsLog log(comm, logged, lm, source_names, run.step);
  BadSteps bad_steps(s.max_bad_steps);
  while (run.step < s.max_steps) {
    const auto started = std::chrono::steady_clock::now();
    const int64_t step = run.step + 1;
    const double lr = optim::warmup_cosine(step, s.lr, s.lr_min, s.warmup_steps, s.max_steps);
    faults.before_step(step, comm.rank(), comm.size());

    // Draw a batch from the mix → forward → loss on answers → backward with overlapped allreduce.
    const std::vector<data::Batch> micro_batches = draw(loader, s.micro_batches, fixed);
    StepOptions step_options = faults.step_options(step, comm.rank(), source_names.size());
    step_options.bf16 = precision.bf16;
    StepStatistics stats = forward_backward(lm, micro_batches, bucketer, comm, step_options);
    stats.allreduce(comm);  // the logged loss: Σ CE / N over the job (Note [Loss normalisation])
    // → clip → step (skipped when the loss or the gradient is not finite).
    const Update update = s.zero == 2 ? clip_and_step(optimizer, bucketer, comm, s.clip, lr, stats.loss_sum)
                                      : clip_and_step(optimizer, s.clip, lr, stats.loss_sum);
    if (update.applied && shards) gather_parameters(*shards, optimizer, comm);  // → the full parameters
    bad_steps.count(step, update);
    run.step = step;
    log.record({step, lr, update, std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()},
               stats);

    // → maybe checkpoint: on schedule, at the end, or when a signal asked some rank to stop.
    const Checkpointer::Decision decision = checkpointer.after_step(run);
    if (step == faults.kill_after) {
      checkpointer.wait();  // the crash comes after checkpoints already under way commit
      std::raise(SIGKILL);
    }
    if (decision.stopping) {
      spdlog::warn("stop signal received: checkpoint at step {} committed; exiting with {} (requeue me)", step,
                   kExitRequeue);
      return kExitRequeue;
    }
  }
  checkpointer.wait();
  return kExitOk;
}

}  // namespace vtb::train
