// Every LibTorch-version-dependent call in vtb, behind TORCH_VERSION_MAJOR/MINOR (libtorch-compat.md).
#pragma once

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <limits>

namespace vtb::compat {

// Scaled dot-product attention, softmax(q·kᵀ·scale, masked) · v, as Hugging Face's eager path computes
// it: scores in the input dtype, softmax in float32, cast back. q [B,H,T,d], k and v [B,H,S,d] (heads
// already repeated), `allowed` bool broadcastable to [B,H,T,S] (true = may attend). A row with no
// allowed key (a padding query) yields a uniform average instead of NaN.
inline at::Tensor attention_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                      const at::Tensor& allowed, double scale) {
  at::Tensor scores = at::matmul(q, k.transpose(-2, -1)) * scale;
  scores = scores.to(at::kFloat).masked_fill(allowed.logical_not(), std::numeric_limits<float>::lowest());
  return at::matmul(at::softmax(scores, -1).to(q.scalar_type()), v);
}

// The fused kernel where LibTorch has it (2.x) and it pays (CUDA); the reference path otherwise.
// Both use scale 1/sqrt(d), the only scale vtb's decoder uses.
inline at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& allowed) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
#if TORCH_VERSION_MAJOR >= 2
  if (q.is_cuda()) return at::scaled_dot_product_attention(q, k, v, allowed, 0.0, false);
#endif
  return attention_reference(q, k, v, allowed, scale);
}

// bfloat16 autocast on CUDA for the scope of the guard, like Python's torch.autocast("cuda", bfloat16);
// does nothing when `enabled` is false (CPU runs stay float32). LibTorch has no C++ guard of its own.
class CudaBf16Autocast {
 public:
  explicit CudaBf16Autocast(bool enabled) : enabled_(enabled) {
    if (!enabled_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    previous_ = at::autocast::is_autocast_enabled(at::kCUDA);
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
#else
    previous_ = at::autocast::is_enabled();
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(true);
#endif
    at::autocast::increment_nesting();
  }
  ~CudaBf16Autocast() {
    if (!enabled_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(at::kCUDA, previous_);
#else
    at::autocast::set_enabled(previous_);
#endif
  }
  CudaBf16Autocast(const CudaBf16Autocast&) = delete;
  CudaBf16Autocast& operator=(const CudaBf16Autocast&) = delete;

 private:
  bool enabled_;
  bool previous_ = false;
};

}  // namespace vtb::compat
