// Data parallelism behind one object the training loop calls once per step, as DDP and FSDP are one wrapper
// to torchtitan's loop: the gradient bucketer that averages gradients during backward, and AdamW with its state
// held by dist.zero's rule — 0: every rank holds all of it; 1: sharded over the ranks by gradient bucket
// (Note [Optimizer shards]); 2: the averaged gradients too, buckets reduce-scattered (Note [Scattered buckets]).
#pragma once

#include <optional>

#include "dist/communicator.h"
#include "dist/gradient_bucketer.h"
#include "dist/parameter_check.h"
#include "optim/adamw.h"
#include "optim/sharding.h"
#include "train/train_step.h"

namespace vtb::train {

class DataParallel {
 public:
  // `params`: the trainable parameters in registration order. Collective (the bucketer's parameter check).
  DataParallel(const dist::NamedTensors& params, dist::Communicator& comm, const dist::DataParallelSettings& settings,
               const optim::AdamWOptions& adamw);
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  dist::GradientBucketer& bucketer() { return bucketer_; }  // for forward_backward
  optim::AdamW& optimizer() { return optimizer_; }          // for the checkpointer

  // After forward_backward: Σg² of the averaged gradient, on the device (for read_step). Collective with
  // dist.zero = 2 (the ranks' pieces).
  at::Tensor gradient_square_sum();
  // Then, with the norm and loss the step's read gave: → clip to global norm `clip` → AdamW step at `lr`
  // (skipped when `loss` or the norm is not finite) → with shards, the full parameters gathered back.
  // Collective.
  Update step(double clip, double lr, double grad_norm, double loss);

 private:
  dist::Communicator& comm_;
  const int zero_;
  dist::GradientBucketer bucketer_;
  optim::AdamW optimizer_;
  std::optional<optim::ShardLayout> shards_;  // dist.zero ≥ 1: this rank's pieces of every bucket
};

}  // namespace vtb::train
