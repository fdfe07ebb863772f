#include "train/trainer.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <csignal>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "data/manifest.h"
#include "dist/exit_codes.h"
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

std::vector<data::Batch> draw(data::BatchLoader& loader, int64_t micro_batches) {
  std::vector<data::Batch> out;
  for (int64_t m = 0; m < micro_batches; ++m) out.push_back(loader.next());
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

  const PrecisionChoice precision = choose_precision(s.precision, comm);
  spdlog::info("{}", precision.reason);
  TrainSettings logged = s;  // MFU against the measured rate of the precision in use, unless one is given
  if (logged.peak_tflops == 0)
    logged.peak_tflops = (precision.bf16 ? precision.bf16_gflops : precision.fp32_gflops) / 1e3;
  const Faults faults = Faults::from_environment();
  Checkpointer checkpointer(comm, s, lm, optimizer, loader, faults);
  RunState run = checkpointer.resume();
  MetricsLog log(comm, logged, lm, source_names, run.step);
  BadSteps bad_steps(s.max_bad_steps);
  while (run.step < s.max_steps) {
    const auto started = std::chrono::steady_clock::now();
    const int64_t step = run.step + 1;
    const double lr = optim::warmup_cosine(step, s.lr, s.lr_min, s.warmup_steps, s.max_steps);
    faults.before_step(step, comm.rank(), comm.size());

    // Draw a batch from the mix → forward → loss on answers → backward with overlapped allreduce.
    const std::vector<data::Batch> micro_batches = draw(loader, s.micro_batches);
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
