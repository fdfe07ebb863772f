#include "train/trainer.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "dist/exit_codes.h"
#include "train/data_parallel.h"
#include "train/faults.h"
#include "train/fixed_batch.h"
#include "train/host_reads.h"
#include "train/stop_signal.h"
#include "train/train_step.h"
#include "train/training_state.h"

namespace vtb::train {

namespace {

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

// Note [A skipped step changes nothing]: forward in training mode moves BatchNorm's running statistics
// before the loss is known. When the step is then skipped for a non-finite loss or gradient they are put
// back, so a NaN batch reaches no buffer and so no checkpoint (the parameters and AdamW state are not
// touched by a skipped step in the first place).
class BufferSnapshot {
 public:
  explicit BufferSnapshot(model::SpeechLM& lm) {
    for (const auto& b : lm->named_buffers()) buffers_.push_back(b.value());
  }
  void take() {
    copies_.clear();
    for (const auto& b : buffers_) copies_.push_back(b.clone());
  }
  void restore() {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < buffers_.size(); ++i) buffers_[i].copy_(copies_[i]);
  }

 private:
  std::vector<at::Tensor> buffers_, copies_;
};

// VTB_COUNT_HOST_READS=1: counts each step's reads of the device (Note [One read per step]), from drawing
// its batch to logging it, and reports the most in any step when the run ends (tests/e2e/host_reads.sh).
// VTB_CUDA_SYNC_DEBUG_FROM_STEP=N: over the same span of steps N on, CUDA's sync-debug mode is "error".
class StepReads {
 public:
  StepReads() {
    const char* on = std::getenv("VTB_COUNT_HOST_READS");
    if (on != nullptr && std::string(on) == "1") counter_.emplace();
    const char* from = std::getenv("VTB_CUDA_SYNC_DEBUG_FROM_STEP");
    if (from != nullptr && *from != '\0') sync_debug_from_ = std::stoll(from);
  }
  void begin(int64_t step) {
    if (counter_) counter_->reset();
    if (sync_debug_from_ > 0 && step >= sync_debug_from_) errors_.emplace(true);
  }
  void end() {
    errors_.reset();
    if (!counter_) return;
    ++steps_;
    most_ = std::max(most_, counter_->reads());
    implicit_ += counter_->implicit_reads();
    for (const auto& [op, n] : counter_->ops()) ops_[op] += n;
  }
  ~StepReads() {
    if (!counter_) return;
    std::string ops;
    for (const auto& [op, n] : ops_) ops += (ops.empty() ? "" : ", ") + op + " ×" + std::to_string(n);
    spdlog::info("host reads: {} steps, at most {} read_to_host in a step, {} implicit reads{}{}", steps_, most_,
                 implicit_, ops.empty() ? "" : ": ", ops);
  }

 private:
  std::optional<HostReadCounter> counter_;
  std::optional<SyncDebugErrors> errors_;  // VTB_CUDA_SYNC_DEBUG_FROM_STEP: CUDA syncs in the step are errors
  int64_t sync_debug_from_ = 0;
  int64_t steps_ = 0, most_ = 0, implicit_ = 0;
  std::map<std::string, int64_t> ops_;
};

// model.frozen_dtype (Note [Frozen weights in bf16]): bfloat16 storage of the frozen projections when the step
// computes in bf16 (auto) or when asked, which needs it.
void store_frozen_llm(model::SpeechLM& lm, model::FrozenDtype wanted, bool bf16_step, int rank) {
  using model::FrozenDtype;
  if (wanted == FrozenDtype::Bfloat16 && !bf16_step)
    throw std::runtime_error(
        "model.frozen_dtype = bfloat16 needs a step that computes in bf16 (run.precision = bf16, or auto choosing "
        "it); this run computes in fp32, where a bf16 weight would meet float32 activations. Use auto or float32.");
  if (wanted == FrozenDtype::Float32 || (wanted == FrozenDtype::Auto && !bf16_step)) return;
  const auto stored = lm->llm->store_frozen(torch::kBFloat16);
  if (rank == 0)
    spdlog::info(
        "model.frozen_dtype = {}: {} frozen LLM tensors stored in bfloat16 ({:.1f} → {:.1f} MB); the embedding {}; "
        "norms in float32",
        wanted == FrozenDtype::Auto ? "auto (the step computes in bf16)" : "bfloat16", stored.converted,
        static_cast<double>(stored.bytes_before) / 1e6, static_cast<double>(stored.bytes_after) / 1e6,
        stored.embedding ? "among them (every value exact in bf16)" : "in float32 (not every value is exact in bf16)");
}

}  // namespace

int run_training(dist::Communicator& comm, const TrainSettings& s, const RunContext& context) {
  install_stop_handlers();
  const data::Tokenizer tok = data::Tokenizer::load(s.data.tokenizer, s.data.audio_piece);
  model::SpeechLM lm = model::build_speech_lm(s.model, tok.special().audio, tok.vocab_size(), s.seed);
  const PrecisionChoice precision = choose_precision(s.precision, comm);
  spdlog::info("{}", precision.reason);
  // The LLM as loaded identifies it in checkpoints, whatever its storage (Note [Frozen weights in bf16]).
  const std::string llm_hash = frozen_llm_hash(lm);
  // On the host, before the move: the device never holds a float32 copy of what is stored in bf16.
  store_frozen_llm(lm, s.model.frozen_dtype, precision.bf16, comm.rank());
  lm->to(comm.device());  // cuda:<local rank> with NCCL, cpu with MPI
  dist::NamedTensors trainable;
  for (const auto& p : lm->named_parameters())
    if (p.value().requires_grad()) trainable.emplace_back(p.key(), p.value());
  const ScheduleSettings& schedule = s.schedule;
  DataParallel parallel(trainable, comm, s.parallel, schedule.adamw);
  std::vector<data::LoaderSource> sources = data::read_sources(s.data);
  std::vector<std::string> source_names;
  for (const auto& src : sources) source_names.push_back(src.name);
  data::BatchLoader loader(std::move(sources), tok, s.data.limits, s.data.mix, s.data.loader, comm.rank(), comm.size());

  const std::optional<data::Batch> fixed = fixed_batch(s.fixed_batch, lm, comm);
  MetricsSettings metrics = s.metrics;  // MFU against the measured rate of the precision in use, unless one is given
  if (metrics.peak_tflops == 0)
    metrics.peak_tflops = (precision.bf16 ? precision.bf16_gflops : precision.fp32_gflops) / 1e3;
  const Faults faults = Faults::from_environment();
  Checkpointer checkpointer(
      comm, context.checkpoint_comm,
      {s.run_dir, context.config_text, model::llm_label(s.model, s.seed), llm_hash, schedule.max_steps}, s.ckpt, lm,
      parallel.optimizer(), loader, faults);
  RunState run = checkpointer.resume(context.resume_from);
  if (fixed && run.step == 0 && comm.rank() == 0) write_initial_parameters(lm, s.run_dir);
  MetricsLog log(comm, s.run_dir, metrics, schedule.max_steps, lm, source_names, run.step);
  BadSteps bad_steps(schedule.max_bad_steps);
  BufferSnapshot buffers(lm);
  StepReads reads;
  while (run.step < schedule.max_steps) {
    reads.begin(run.step + 1);
    const auto started = std::chrono::steady_clock::now();
    const int64_t step = run.step + 1;
    const double lr =
        optim::warmup_cosine(step, schedule.lr, schedule.lr_min, schedule.warmup_steps, schedule.max_steps);
    faults.before_step(step, comm.rank(), comm.size());

    // Draw a batch from the mix → forward → loss on answers → backward with overlapped allreduce.
    const std::vector<data::Batch> micro_batches = draw(loader, schedule.micro_batches, fixed);
    buffers.take();
    StepOptions step_options = faults.step_options(step, comm.rank(), source_names.size());
    step_options.bf16 = precision.bf16;
    const StepStatistics mine = forward_backward(lm, micro_batches, parallel.bucketer(), comm, step_options);
    // The step's one read of the device (Note [One read per step]): the logged loss Σ CE / N over the job
    // (Note [Loss normalisation]) with the other statistics, the checkpointer's flags and the gradient norm.
    const StepReading reading =
        read_step(mine, checkpointer.flags(), comm, [&] { return parallel.gradient_square_sum(); });
    const StepStatistics& stats = reading.stats;
    // → clip → step (skipped when the loss or the gradient is not finite).
    const Update update = parallel.step(schedule.clip, lr, reading.grad_norm, stats.loss_sum);
    if (!update.applied) buffers.restore();  // Note [A skipped step changes nothing]
    bad_steps.count(step, update);
    run.step = step;
    log.record({step, lr, update, std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()},
               stats);
    reads.end();

    // → maybe checkpoint: on schedule, at the end, or when a signal asked some rank to stop.
    const Checkpointer::Decision decision = checkpointer.after_step(run, reading.flags);
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
