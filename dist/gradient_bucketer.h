// Data-parallel gradient averaging that overlaps the backward pass, in the manner of PyTorch DDP's
// Reducer (which LibTorch's C++ frontend lacks).
//
// Note [Bucket protocol]:
//  1. At construction every rank checks it holds the same parameters (verify_same_parameters), then cuts
//     them, in reverse registration order (the order backward produces gradients), into buckets: the
//     first up to first_bucket_bytes so reduction starts early, the rest up to bucket_bytes. A bucket
//     holds one dtype on one device and at least one parameter. The plan is a pure function of the
//     parameters, so it is the same on every rank.
//  2. A post-hook on each parameter's gradient accumulator fires once backward has accumulated its
//     gradient into .grad. After the first step .grad *is* a view into the bucket's flat buffer (as
//     DDP's gradient_as_bucket_view), so nothing is copied; if someone replaced .grad (set it to none),
//     the hook copies it in once.
//  3. When a bucket is full and every earlier bucket has been launched, it is launched: an averaging
//     allreduce handed to the communicator, which runs it while backward continues. Launching strictly in
//     bucket order keeps the collective order identical on every rank.
//  4. finish(), after backward: parameters that got no gradient this step (e.g. the speech encoder on a
//     text-only batch) contribute their accumulated .grad or zeros, remaining buckets launch in order,
//     every bucket is awaited, and each parameter's .grad is the bucket view holding the average.
// On non-syncing micro-steps (gradient accumulation) hooks do nothing and .grad accumulates locally.
//
// Note [Scattered buckets] (dist.zero = 2, BucketOptions::scatter): a bucket's buffer is padded to size()
// equal pieces (Note [Optimizer shards]) and exists only while its gradients arrive: allocated when the first
// of them does, each parameter's .grad is copied in and freed (set to none), and when the bucket is launched
// it is reduce-scattered into this rank's persistent piece and dropped (the communicator keeps it alive
// until the reduction is done). After finish() every .grad is none and gradient_piece(b) holds the average
// of this rank's piece of bucket b; between steps a rank holds 1/size() of the gradients. Peak memory
// during backward is bounded by the buckets still in flight, not by all of them.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <torch/csrc/autograd/variable.h>

#include "dist/communicator.h"
#include "dist/parameter_check.h"

namespace vtb::dist {

struct BucketOptions {
  size_t first_bucket_bytes = size_t{1} << 20;  // dist.first_bucket_mib
  size_t bucket_bytes = size_t{25} << 20;       // dist.bucket_mib
  bool scatter = false;                         // dist.zero = 2: Note [Scattered buckets]
};

// dist.*: how a training run averages gradients and holds optimizer state over its ranks. Every default here
// is also the config key's default (launch/config_keys.cpp reads them).
struct DataParallelSettings {
  BucketOptions buckets;  // `scatter` follows `zero`
  int zero = 0;           // dist.zero: 1 = AdamW state sharded over the ranks (Note [Optimizer shards]), 2 = and the
                          // averaged gradients (Note [Scattered buckets])
};

// What plan_buckets needs to know of a parameter.
struct TensorFootprint {
  size_t bytes = 0;
  std::string kind;  // dtype + device: a bucket never mixes kinds
};

// Step 1 of Note [Bucket protocol]: indices into `tensors`, bucket by bucket, in reverse order.
std::vector<std::vector<size_t>> plan_buckets(const std::vector<TensorFootprint>& tensors,
                                              const BucketOptions& options);

class GradientBucketer {
 public:
  // `params`: the trainable parameters in registration order. Collective (parameter check).
  GradientBucketer(NamedTensors params, Communicator& comm, BucketOptions options = {});
  ~GradientBucketer();
  GradientBucketer(const GradientBucketer&) = delete;
  GradientBucketer& operator=(const GradientBucketer&) = delete;

  // Before each micro-step's backward: `sync` is true only on the last micro-step of an accumulation.
  void prepare(bool sync);

  // After the backward of a syncing micro-step: .grad of every parameter holds the average over ranks.
  void finish();

  // Zeroes every gradient in place (the bucket buffers), keeping .grad a view into the buckets so the
  // next step copies nothing. Prefer it to setting gradients to none.
  void zero_grad();

  size_t bucket_count() const { return buckets_.size(); }
  std::vector<std::string> bucket_names(size_t b) const;  // parameter names in bucket b
  const std::vector<size_t>& bucket_params(size_t b) const { return buckets_[b].params; }  // their indices
  size_t bucket_bytes(size_t b) const;  // of its parameters' gradients (without padding)
  // Scatter mode, after finish(): the averaged gradient of elements [rank·k, rank·k + k) of bucket b, where
  // k = ceil(bucket elements / size()); elements past the bucket's end are zero.
  const at::Tensor& gradient_piece(size_t b) const { return buckets_.at(b).piece; }
  bool scatters() const { return scatter_; }
  size_t unused_in_last_step() const { return unused_last_; }  // parameters with no gradient at finish()

 private:
  struct Slot {
    size_t bucket = 0;
    int64_t offset = 0;  // in the bucket
    at::Tensor view;     // this parameter's place in the bucket buffer, shaped like the parameter
    bool ready = false;
  };
  struct Bucket {
    at::Tensor buffer;  // flat; scatter mode: padded to size() pieces, defined only while gradients arrive
    at::Tensor piece;   // scatter mode: this rank's averaged piece
    int64_t numel = 0;  // of its parameters
    at::TensorOptions options;
    std::vector<size_t> params;
    size_t pending = 0;  // parameters whose gradient has not arrived yet
    std::shared_ptr<Work> work;
  };

  void allocate(Bucket& b);  // the buffer and its views
  void release(Bucket& b);
  void on_gradient_accumulated(size_t i);
  void mark_ready(size_t i);    // caller holds mu_
  void launch_ready_buckets();  // caller holds mu_
  bool grad_is_view(size_t i) const;

  NamedTensors params_;
  Communicator& comm_;
  bool scatter_ = false;
  std::vector<Slot> slots_;
  std::vector<Bucket> buckets_;
  // Kept alive: hooks live on them (a shared_ptr in LibTorch 1.13, an intrusive_ptr in 2.14).
  using NodePtr = decltype(torch::autograd::impl::grad_accumulator(std::declval<const at::Tensor&>()));
  std::vector<NodePtr> accumulators_;
  std::vector<uintptr_t> hook_keys_;
  std::mutex mu_;
  bool sync_ = false;
  size_t next_launch_ = 0;
  size_t unused_last_ = 0;
};

}  // namespace vtb::dist
