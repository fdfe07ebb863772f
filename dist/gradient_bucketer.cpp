#include "dist/gradient_bucketer.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <stdexcept>

namespace vtb::dist {

std::vector<std::vector<size_t>> plan_buckets(const std::vector<TensorFootprint>& tensors,
                                              const BucketOptions& options) {
  std::vector<std::vector<size_t>> buckets;
  size_t filled = 0;
  for (size_t k = tensors.size(); k-- > 0;) {
    const size_t cap = buckets.size() == 1 ? options.first_bucket_bytes : options.bucket_bytes;
    const bool fits =
        !buckets.empty() && tensors[buckets.back().front()].kind == tensors[k].kind && filled + tensors[k].bytes <= cap;
    if (!fits) {
      buckets.emplace_back();
      filled = 0;
    }
    buckets.back().push_back(k);
    filled += tensors[k].bytes;
  }
  return buckets;
}

GradientBucketer::GradientBucketer(NamedTensors params, Communicator& comm, BucketOptions options)
    : params_(std::move(params)), comm_(comm), scatter_(options.scatter) {
  verify_same_parameters(comm_, params_);

  std::vector<TensorFootprint> footprints;
  for (const auto& [name, p] : params_) {
    if (!p.requires_grad())
      throw std::invalid_argument("GradientBucketer: parameter '" + name +
                                  "' does not require grad; pass only "
                                  "trainable parameters");
    footprints.push_back({static_cast<size_t>(p.numel()) * p.element_size(),
                          std::string(dtype_name(p.scalar_type())) + "@" + p.device().str()});
  }

  slots_.resize(params_.size());
  for (const auto& indices : plan_buckets(footprints, options)) {
    Bucket b;
    for (size_t i : indices) {
      slots_[i].bucket = buckets_.size();
      slots_[i].offset = b.numel;
      b.numel += params_[i].second.numel();
    }
    b.options = params_[indices.front()].second.options().requires_grad(false);
    b.params = indices;
    if (scatter_) {
      b.piece = at::zeros({(b.numel + comm_.size() - 1) / comm_.size()}, b.options);
    } else {
      allocate(b);
    }
    buckets_.push_back(std::move(b));
  }

  // Hooks on the gradient accumulators (what DDP's Reducer uses): they fire after .grad is updated.
  using torch::autograd::variable_list;
  for (size_t i = 0; i < params_.size(); ++i) {
    accumulators_.push_back(torch::autograd::impl::grad_accumulator(params_[i].second));
    hook_keys_.push_back(accumulators_.back()->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
        [this, i](const variable_list& outputs, const variable_list&) {
          on_gradient_accumulated(i);
          return outputs;
        })));
  }
}

GradientBucketer::~GradientBucketer() {
  for (size_t i = 0; i < accumulators_.size(); ++i) accumulators_[i]->del_post_hook(hook_keys_[i]);
  for (auto& b : buckets_)
    if (b.work) b.work->wait();  // never free a buffer a collective still uses
}

std::vector<std::string> GradientBucketer::bucket_names(size_t b) const {
  std::vector<std::string> names;
  for (size_t i : buckets_.at(b).params) names.push_back(params_[i].first);
  return names;
}

size_t GradientBucketer::bucket_bytes(size_t b) const {
  const Bucket& bucket = buckets_.at(b);
  return static_cast<size_t>(bucket.numel) * c10::elementSize(c10::typeMetaToScalarType(bucket.options.dtype()));
}

void GradientBucketer::allocate(Bucket& b) {
  if (scatter_) {  // every step: each view is written in mark_ready, so only the padding needs zeros
    b.buffer = at::empty({b.piece.numel() * comm_.size()}, b.options);
    b.buffer.narrow(0, b.numel, b.buffer.numel() - b.numel).zero_();
  } else {
    b.buffer = at::zeros({b.numel}, b.options);
  }
  for (size_t i : b.params) {
    const at::Tensor& p = params_[i].second;
    slots_[i].view = b.buffer.narrow(0, slots_[i].offset, p.numel()).view(p.sizes());
  }
}

void GradientBucketer::release(Bucket& b) {
  b.buffer = at::Tensor();
  for (size_t i : b.params) slots_[i].view = at::Tensor();
}

void GradientBucketer::prepare(bool sync) {
  std::lock_guard<std::mutex> lock(mu_);
  sync_ = sync;
  next_launch_ = 0;
  for (auto& s : slots_) s.ready = false;
  for (auto& b : buckets_) {
    b.pending = b.params.size();
    b.work.reset();
  }
}

bool GradientBucketer::grad_is_view(size_t i) const {
  const at::Tensor& grad = params_[i].second.grad();
  const at::Tensor& view = slots_[i].view;
  return grad.defined() && grad.data_ptr() == view.data_ptr() && grad.sizes() == view.sizes() &&
         grad.strides() == view.strides();
}

void GradientBucketer::on_gradient_accumulated(size_t i) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!sync_) return;
  if (slots_[i].ready)
    throw std::logic_error("GradientBucketer: parameter '" + params_[i].first +
                           "' received a second gradient in one "
                           "backward pass; call prepare() before each micro-step and backward once per micro-step");
  mark_ready(i);
  launch_ready_buckets();
}

void GradientBucketer::mark_ready(size_t i) {
  Slot& s = slots_[i];
  if (scatter_ && !buckets_[s.bucket].buffer.defined()) allocate(buckets_[s.bucket]);
  if (!grad_is_view(i)) {
    c10::AutoGradMode no_grad(false);
    const at::Tensor& grad = params_[i].second.grad();
    if (grad.defined()) {
      s.view.copy_(grad);
    } else {
      s.view.zero_();  // no gradient on this rank: it contributes zeros to the average
    }
  }
  if (scatter_) params_[i].second.mutable_grad() = at::Tensor();  // its average will be in a piece
  s.ready = true;
  --buckets_[s.bucket].pending;
}

void GradientBucketer::launch_ready_buckets() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) {
    Bucket& b = buckets_[next_launch_++];
    if (!scatter_) {
      b.work = comm_.allreduce_async(b.buffer, ReduceOp::Avg);
      continue;
    }
    b.work = comm_.reduce_scatter_async(b.buffer, b.piece, ReduceOp::Avg);
    release(b);
  }
}

void GradientBucketer::finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!sync_) throw std::logic_error("GradientBucketer::finish() called on a micro-step prepared with sync = false");
  unused_last_ = 0;
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].ready) continue;
    mark_ready(i);
    ++unused_last_;
  }
  launch_ready_buckets();
  for (auto& b : buckets_) {
    b.work->wait();
    b.work.reset();
  }
  if (!scatter_)
    for (size_t i = 0; i < slots_.size(); ++i)
      if (!grad_is_view(i)) params_[i].second.mutable_grad() = slots_[i].view;
  sync_ = false;
}

void GradientBucketer::zero_grad() {
  std::lock_guard<std::mutex> lock(mu_);
  if (scatter_) {  // the pieces are overwritten by the next reduction
    for (auto& [name, p] : params_) p.mutable_grad() = at::Tensor();
    return;
  }
  for (auto& b : buckets_) b.buffer.zero_();
  for (size_t i = 0; i < slots_.size(); ++i)
    if (!grad_is_view(i)) params_[i].second.mutable_grad() = slots_[i].view;
}

}  // namespace vtb::dist
