#include "train/data_parallel.h"

#include <spdlog/spdlog.h>

#include <vector>

namespace vtb::train {
namespace {

dist::BucketOptions bucket_options(const dist::DataParallelSettings& s) {
  dist::BucketOptions buckets = s.buckets;
  buckets.scatter = s.zero == 2;
  return buckets;
}

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

DataParallel::DataParallel(const dist::NamedTensors& params, dist::Communicator& comm,
                           const dist::DataParallelSettings& settings, const optim::AdamWOptions& adamw)
    : comm_(comm), zero_(settings.zero), bucketer_(params, comm, bucket_options(settings)), optimizer_(params, adamw) {
  if (zero_ >= 1) shards_ = shard_optimizer(optimizer_, bucketer_, comm_, zero_);
}

at::Tensor DataParallel::gradient_square_sum() {
  if (zero_ == 2) return piece_square_sum(bucketer_, comm_);
  std::vector<at::Tensor> params;
  for (const auto& named : optimizer_.params()) params.push_back(named.second);
  return optim::gradient_square_sum(params);
}

Update DataParallel::step(double clip, double lr, double grad_norm, double loss) {
  const Update update = zero_ == 2 ? clip_and_step(optimizer_, bucketer_, clip, lr, grad_norm, loss)
                                   : clip_and_step(optimizer_, clip, lr, grad_norm, loss);
  if (update.applied && shards_) gather_parameters(*shards_, optimizer_, comm_);  // → the full parameters
  return update;
}

}  // namespace vtb::train
