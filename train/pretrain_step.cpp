#include "train/pretrain_step.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

namespace vtb::train {

PretrainStepper::PretrainStepper(dist::Communicator& comm, dist::NamedTensors params, const dist::BucketOptions& buckets,
                                 const optim::AdamWOptions& adamw, PretrainSchedule schedule, std::string what)
    : comm_(comm), bucketer_(params, comm, buckets), optimizer_(params, adamw), schedule_(schedule), what_(std::move(what)) {
  for (const auto& [name, p] : params) tensors_.push_back(p);
}

void PretrainStepper::after_backward(int64_t step, const at::Tensor& loss) {
  const PretrainSchedule& s = schedule_;
  bucketer_.finish();
  optim::clip_grad_norm(tensors_, s.clip);
  optimizer_.step(optim::warmup_cosine(step, s.lr, s.lr_min, s.warmup_steps, s.steps));
  bucketer_.zero_grad();

  at::Tensor mean = loss.detach().to(torch::kDouble).reshape({1}).cpu();
  comm_.allreduce(mean, dist::ReduceOp::Avg);  // over ranks, for the log
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
