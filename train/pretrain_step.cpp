#include "train/pretrain_step.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "train/train_step.h"

namespace vtb::train {

PretrainStepper::PretrainStepper(dist::Communicator& comm, dist::NamedTensors params,
                                 const dist::BucketOptions& buckets, const optim::AdamWOptions& adamw,
                                 PretrainSchedule schedule, std::string what)
    : comm_(comm),
      bucketer_(params, comm, buckets),
      optimizer_(params, adamw),
      schedule_(schedule),
      what_(std::move(what)) {}

void PretrainStepper::after_backward(int64_t step, const at::Tensor& loss) {
  const PretrainSchedule& s = schedule_;
  bucketer_.finish();
  at::Tensor mean = loss.detach().to(torch::kDouble).reshape({1}).cpu();
  comm_.allreduce(mean, dist::ReduceOp::Avg);  // over ranks, for the log
  const Update update = clip_and_step(
      optimizer_, s.clip, optim::warmup_cosine(step, s.lr, s.lr_min, s.warmup_steps, s.steps), mean.item<double>());
  if (!update.applied) spdlog::warn("{}: step {}: non-finite loss or gradient norm; step skipped", what_, step);
  bucketer_.zero_grad();

  window_ += mean.item<double>();
  if (step % s.log_every == 0 || step == s.steps) {
    const int64_t n = step % s.log_every == 0 ? s.log_every : step % s.log_every;
    if (report_.first_loss == 0) report_.first_loss = window_ / static_cast<double>(n);
    report_.last_loss = window_ / static_cast<double>(n);
    spdlog::info("{}: step {}/{} loss {:.4f}", what_, step, s.steps, report_.last_loss);
    window_ = 0;
  }
}

}  // namespace vtb::train
