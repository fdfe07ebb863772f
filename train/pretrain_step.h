// What `vtb lm pretrain` and `vtb encoder pretrain` share around their forward passes: gradients averaged
// over ranks by the bucketer, then clip_and_step (train_step.h) at the warmup + cosine rate, and the loss averaged
// over ranks into the log every log_every steps.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "dist/gradient_bucketer.h"
#include "optim/adamw.h"

namespace vtb::train {

struct PretrainSchedule {
  int64_t steps = 600;
  int64_t warmup_steps = 50;
  int64_t log_every = 50;
  double lr = 3e-3, lr_min = 1e-4, clip = 1.0;
};

struct PretrainReport {
  int64_t documents = 0;  // lm pretrain: documents in the corpus
  int64_t tokens = 0;     // lm pretrain: tokens in the corpus
  double first_loss = 0;  // mean over the first log_every steps
  double last_loss = 0;   // mean over the last log_every steps
  double seconds = 0;
};

class PretrainStepper {
 public:
  // Collective (the bucketer's parameter check). `what` prefixes the log lines ("lm pretrain").
  PretrainStepper(dist::Communicator& comm, dist::NamedTensors params, const dist::BucketOptions& buckets,
                  const optim::AdamWOptions& adamw, PretrainSchedule schedule, std::string what);

  void before_backward() { bucketer_.prepare(/*sync=*/true); }
  // After loss.backward() of step `step` (from 1): sync, clip, update, zero; log.
  void after_backward(int64_t step, const at::Tensor& loss);

  PretrainReport& report() { return report_; }

 private:
  dist::Communicator& comm_;
  dist::GradientBucketer bucketer_;
  optim::AdamW optimizer_;
  PretrainSchedule schedule_;
  std::string what_;
  double window_ = 0;
  PretrainReport report_;
};

}  // namespace vtb::train
