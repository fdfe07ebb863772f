#include "train/trainer.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <csignal>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "dist/exit_codes.h"
#include "train/data_parallel.h"
#include "train/faults.h"
#include "train/fixed_batch.h"
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

}  // namespace

int run_training(dist::Communicator& comm, const TrainSettings& s, const RunContext& context) {
  install_stop_handlers();
  const data::Tokenizer tok = data::Tokenizer::load(s.data.tokenizer, s.data.audio_piece);
  model::SpeechLM lm = model::build_speech_lm(s.model, tok.special().audio, tok.vocab_size(), s.seed);
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
  const PrecisionChoice precision = choose_precision(s.precision, comm);
  spdlog::info("{}", precision.reason);
  MetricsSettings metrics = s.metrics;  // MFU against the measured rate of the precision in use, unless one is given
  if (metrics.peak_tflops == 0)
    metrics.peak_tflops = (precision.bf16 ? precision.bf16_gflops : precision.fp32_gflops) / 1e3;
  const Faults faults = Faults::from_environment();
  Checkpointer checkpointer(comm, context.checkpoint_comm,
                            {s.run_dir, context.config_text, model::llm_label(s.model, s.seed), schedule.max_steps},
                            s.ckpt, lm, parallel.optimizer(), loader, faults);
  RunState run = checkpointer.resume(context.resume_from);
  if (fixed && run.step == 0 && comm.rank() == 0) write_initial_parameters(lm, s.run_dir);
  MetricsLog log(comm, s.run_dir, metrics, schedule.max_steps, lm, source_names, run.step);
  BadSteps bad_steps(schedule.max_bad_steps);
  BufferSnapshot buffers(lm);
  while (run.step < schedule.max_steps) {
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
    StepStatistics stats = forward_backward(lm, micro_batches, parallel.bucketer(), comm, step_options);
    stats.allreduce(comm);  // the logged loss: Σ CE / N over the job (Note [Loss normalisation])
    // → clip → step (skipped when the loss or the gradient is not finite).
    const Update update = parallel.step(schedule.clip, lr, stats.loss_sum);
    if (!update.applied) buffers.restore();  // Note [A skipped step changes nothing]
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
