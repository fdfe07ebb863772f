// Scaled dot-product attention as the decoder computes it: LibTorch's fused kernel on every device, and the
// reference path it is tested against.
#pragma once

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "compat/torch_version.h"

namespace vtb::model {

// softmax(q·kᵀ·scale, masked) · v, as Hugging Face's eager path computes it: scores in the input dtype,
// softmax in float32, cast back. q [B,H,T,d], k and v [B,H,S,d] (heads already repeated), `allowed` bool
// broadcastable to [B,H,T,S] (true = may attend). A row with no allowed key (a padding query) yields a
// uniform average instead of NaN.
inline at::Tensor attention_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                      const at::Tensor& allowed, double scale) {
  at::Tensor scores = at::matmul(q, k.transpose(-2, -1)) * scale;
  scores = scores.to(at::kFloat).masked_fill(allowed.logical_not(), std::numeric_limits<float>::lowest());
  return at::matmul(at::softmax(scores, -1).to(q.scalar_type()), v);
}

// The fused kernel, scaled_dot_product_attention: flash / memory-efficient on CUDA, the flash kernel on CPU
// (online softmax in float32, no [T, S] score tensor kept for backward). It equals attention_reference
// within 1e-6 of the largest output in float32 (tests/unit/test_decoder.cpp; with LibTorch 2.14 the
// difference is 1.4e-7–2.5e-7 for T 33–600, d 16–256). A query with no
// allowed key gets zeros where the reference averages; the decoder has none that reaches a valid position
// (causal + right padding: every query sees key 0, padding keys are masked for every real query). Both use
// scale 1/sqrt(d), the only scale vtb's decoder uses.
inline at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& allowed) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  return at::scaled_dot_product_attention(q, k, v, allowed, 0.0, false, scale);
}

}  // namespace vtb::model
