// Every LibTorch-version-dependent call in vtb, in one header. vtb builds against LibTorch >= 2.7 (the
// PyPI wheel, C++11 ABI; cmake/VtbTorch.cmake refuses older): Debian's 1.13 is no longer supported, since it
// needs C++17 where 2.x headers need C++20 and its autograd hooks differ.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <cmath>
#include <limits>

static_assert(TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 7),
              "vtb needs LibTorch 2.7 or newer");

// Resolved at run time from the libgomp and MKL LibTorch loads; null where its build has none.
extern "C" void omp_set_num_threads(int) __attribute__((weak));
extern "C" int MKL_Set_Num_Threads_Local(int) __attribute__((weak));  // mkl.h's mkl_set_num_threads_local

namespace vtb::compat {

// Note [One OpenMP team]: every thread that runs an ATen op above the grain size becomes the master of its
// own OpenMP team of run.threads threads. libgomp counts all teams' threads, and once they exceed the CPUs it
// stops spinning at barriers (its spin count drops from 300,000 to 100): the training thread's workers
// then sleep in a futex after each parallel region and must be woken for the next one. The loader threads
// (features, batching) and the communication thread (the averaging division) made two more teams, so on 2
// cores 1 rank × 2 threads ran slower than 1 × 1 (perf: 178,000 context switches in 30 steps of `small`
// against 1,900, both in gomp_barrier_wait_end). Helper threads therefore run ATen single-threaded — their
// work is small, and they overlap the training thread rather than share its cores — which keeps one team.
// Call at the start of every thread vtb creates that may run ATen ops.
inline void run_aten_serially_on_this_thread() {
  (void)at::get_num_threads();  // LibTorch's lazy per-thread init first: it would reset what follows
  if (omp_set_num_threads != nullptr) omp_set_num_threads(1);
  if (MKL_Set_Num_Threads_Local != nullptr) MKL_Set_Num_Threads_Local(1);
}

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

// bfloat16 autocast on `device` (CPU or CUDA) for the scope of the guard, like Python's
// torch.autocast(device, bfloat16); does nothing when `enabled` is false. LibTorch has no C++ guard of its own.
class Bf16Autocast {
 public:
  Bf16Autocast(c10::DeviceType device, bool enabled) : device_(device), enabled_(enabled) {
    if (!enabled_) return;
    previous_ = at::autocast::is_autocast_enabled(device_);
    previous_dtype_ = at::autocast::get_autocast_dtype(device_);
    at::autocast::set_autocast_dtype(device_, at::kBFloat16);
    at::autocast::set_autocast_enabled(device_, true);
    at::autocast::increment_nesting();
  }
  ~Bf16Autocast() {
    if (!enabled_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(device_, previous_);
    at::autocast::set_autocast_dtype(device_, previous_dtype_);
  }
  Bf16Autocast(const Bf16Autocast&) = delete;
  Bf16Autocast& operator=(const Bf16Autocast&) = delete;

 private:
  c10::DeviceType device_;
  bool enabled_;
  bool previous_ = false;
  at::ScalarType previous_dtype_ = at::kHalf;
};

}  // namespace vtb::compat
