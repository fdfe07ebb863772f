// Every LibTorch-version-dependent call in vtb, in one header. vtb builds against LibTorch >= 2.7 (the
// PyPI wheel, C++11 ABI; cmake/VtbTorch.cmake refuses older): Debian's 1.13 is no longer supported, since it
// needs C++17 where 2.x headers need C++20 and its autograd hooks differ.
#pragma once

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <cmath>
#include <limits>

static_assert(TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 7),
              "vtb needs LibTorch 2.7 or newer");

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

// The fused kernel (scaled_dot_product_attention: flash / memory-efficient) on CUDA; the reference path
// on CPU, where vtb's tests compare against Hugging Face's eager numerics. Both use scale 1/sqrt(d), the
// only scale vtb's decoder uses.
inline at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& allowed) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  if (q.is_cuda()) return at::scaled_dot_product_attention(q, k, v, allowed, 0.0, false, scale);
  return attention_reference(q, k, v, allowed, scale);
}

// bfloat16 autocast on CUDA for the scope of the guard, like Python's torch.autocast("cuda", bfloat16);
// does nothing when `enabled` is false (CPU runs stay float32). LibTorch has no C++ guard of its own.
class CudaBf16Autocast {
 public:
  explicit CudaBf16Autocast(bool enabled) : enabled_(enabled) {
    if (!enabled_) return;
    previous_ = at::autocast::is_autocast_enabled(at::kCUDA);
    previous_dtype_ = at::autocast::get_autocast_dtype(at::kCUDA);
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
    at::autocast::increment_nesting();
  }
  ~CudaBf16Autocast() {
    if (!enabled_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(at::kCUDA, previous_);
    at::autocast::set_autocast_dtype(at::kCUDA, previous_dtype_);
  }
  CudaBf16Autocast(const CudaBf16Autocast&) = delete;
  CudaBf16Autocast& operator=(const CudaBf16Autocast&) = delete;

 private:
  bool enabled_;
  bool previous_ = false;
  at::ScalarType previous_dtype_ = at::kHalf;
};

}  // namespace vtb::compat
