#include "dist/gradient_bucketer.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <stdexcept>

namespace vtb::dist {

std::vector<std::vector<size_t>> plan_buckets(const std::vector<TensorFootprint>& tensors,
                                              const BucketOptions& options) {
  std::vector<std::vector<size_t>> buckets;
  size_t filled = 0;
  for (size_t k = tensors.size(); k-- > 0;) {
    const size_t cap = buckets.size() == 1 ? options.first_bucket_bytes : options.bucket_bytes;
    const bool fits = !buckets.empty() && tensors[buckets.back().front()].kind == tensors[k].kind &&
                      filled + tensors[k].bytes <= cap;
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
    : params_(std::move(params)), comm_(comm) {
  verify_same_parameters(comm_, params_);

  std::vector<TensorFootprint> footprints;
  for (const auto& [name, p] : params_) {
    if (!p.requires_grad())
      throw std::invalid_argument("GradientBucketer: parameter '" + name + "' does not require grad; pass only "
                                  "trainable parameters");
    footprints.push_back({static_cast<size_t>(p.numel()) * p.element_size(),
                          std::string(dtype_name(p.scalar_type())) + "@" + p.device().str()});
  }

  slots_.resize(params_.size());
  for (const auto& indices : plan_buckets(footprints, options)) {
    Bucket b;
    int64_t numel = 0;
    for (size_t i : indices) numel += params_[i].second.numel();
    const at::Tensor& first = params_[indices.front()].second;
    b.buffer = at::zeros({numel}, first.options().requires_grad(false));
    int64_t offset = 0;
    for (size_t i : indices) {
      const at::Tensor& p = params_[i].second;
      slots_[i].bucket = buckets_.size();
      slots_[i].view = b.buffer.narrow(0, offset, p.numel()).view(p.sizes());
      offset += p.numel();
    }
    b.params = indices;
    buckets_.push_back(std::move(b));
  }

  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor p = params_[i].second;
    hooks_.push_back(p.register_hook([this, i](const at::Tensor& grad) { on_gradient(i, grad); }));
  }
}

GradientBucketer::~GradientBucketer() {
  for (size_t i = 0; i < hooks_.size(); ++i) params_[i].second.remove_hook(hooks_[i]);
  for (auto& b : buckets_)
    if (b.work) b.work->wait();  // never free a buffer a collective still uses
}

std::vector<std::string> GradientBucketer::bucket_names(size_t b) const {
  std::vector<std::string> names;
  for (size_t i : buckets_.at(b).params) names.push_back(params_[i].first);
  return names;
}

size_t GradientBucketer::bucket_bytes(size_t b) const {
  const at::Tensor& buf = buckets_.at(b).buffer;
  return static_cast<size_t>(buf.numel()) * buf.element_size();
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

void GradientBucketer::on_gradient(size_t i, const at::Tensor& grad) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!sync_) return;
  if (slots_[i].ready)
    throw std::logic_error("GradientBucketer: parameter '" + params_[i].first + "' received a second gradient in one "
                           "backward pass; call prepare() before each micro-step and backward once per micro-step");
  mark_ready(i, &grad);
  launch_ready_buckets();
}

void GradientBucketer::mark_ready(size_t i, const at::Tensor* grad) {
  c10::AutoGradMode no_grad(false);
  Slot& s = slots_[i];
  const at::Tensor& accumulated = params_[i].second.grad();
  // .grad after this backward would be accumulated + grad (AccumulateGrad); build the same sum here.
  if (grad != nullptr && accumulated.defined()) {
    at::add_out(s.view, *grad, accumulated);
  } else if (grad != nullptr) {
    s.view.copy_(*grad);
  } else if (accumulated.defined()) {
    s.view.copy_(accumulated);
  } else {
    s.view.zero_();
  }
  s.ready = true;
  --buckets_[s.bucket].pending;
}

void GradientBucketer::launch_ready_buckets() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) {
    Bucket& b = buckets_[next_launch_++];
    b.work = comm_.allreduce_async(b.buffer, ReduceOp::Avg);
  }
}

void GradientBucketer::finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!sync_) throw std::logic_error("GradientBucketer::finish() called on a micro-step prepared with sync = false");
  unused_last_ = 0;
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].ready) continue;
    mark_ready(i, nullptr);
    ++unused_last_;
  }
  launch_ready_buckets();
  c10::AutoGradMode no_grad(false);
  for (auto& b : buckets_) {
    b.work->wait();
    b.work.reset();
    for (size_t i : b.params) {
      at::Tensor& grad = params_[i].second.mutable_grad();
      if (grad.defined()) {
        grad.copy_(slots_[i].view);
      } else {
        grad = slots_[i].view.clone();
      }
    }
  }
  sync_ = false;
}

}  // namespace vtb::dist
