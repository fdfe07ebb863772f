// AdamW (decoupled weight decay, Loshchilov & Hutter), weight decay on or off per parameter (default_decays),
// its whole state plain named tensors a checkpoint can hold and restore exactly. Same update as PyTorch's AdamW:
//   p ← p·(1 − lr·wd);  m ← lerp(m, g, 1−β1) = m + (1−β1)·(g − m);  v ← β2·v + (1−β2)·g²
//   p ← p − lr · (m / (1−β1^t)) / (sqrt(v / (1−β2^t)) + ε)
// Note [Fused AdamW]: train.fused_adamw = on updates every parameter of a decay group in one call of LibTorch's
// fused kernel (at::_fused_adamw_, CPU and CUDA): one pass over each tensor instead of seven ATen ops per
// parameter, each a kernel launch on a GPU. off writes the update out in ATen ops as PyTorch's single-tensor
// AdamW does (lerp for m). One update of the two agrees within 1 ulp per element (tests/unit/test_optim.cpp).
// auto (the default) is on for CUDA parameters and off on CPU: the CPU kernel rounds its vectorised body and
// its scalar tail differently, so an element's update depends on where its tensor or dist.zero piece begins,
// and dist.zero = 1 and 2 would no longer equal dist.zero = 0 bit for bit as they do written out (on CUDA the
// GPU check compares dist.zero = 2 with 0). On CPU, on is faster for the optimizer (timed once in Python on
// 7.6 M parameters, one thread, 2-core Xeon: 27 against 100 ms per update), and a piece's update stays within
// 1 ulp of the written-out one. The CPU kernel reads each parameter's step count with .item() (a CPU tensor:
// no device is waited for); train/host_reads.h does not count reads inside it.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "optim/sharding.h"

namespace vtb::optim {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.98;  // the paper's
  double eps = 1e-8;
  double weight_decay = 1e-3;
  enum class Fused { Auto, On, Off } fused = Fused::Auto;  // train.fused_adamw (Note [Fused AdamW])
};
inline constexpr std::array<std::pair<std::string_view, AdamWOptions::Fused>, 3> kFusedAdamW{
    {{"auto", AdamWOptions::Fused::Auto}, {"on", AdamWOptions::Fused::On}, {"off", AdamWOptions::Fused::Off}}};

struct ParamState {
  at::Tensor exp_avg, exp_avg_sq;  // shaped like the parameter; sharded: 1-D, the owned elements only
  int64_t step = 0;
  int64_t offset = 0;  // sharded: the first owned element of the flattened parameter
};

class AdamW {
 public:
  // `params`: name → tensor. Weight decay applies to those default_decays(name, tensor) accepts.
  AdamW(std::vector<std::pair<std::string, at::Tensor>> params, AdamWOptions options);

  // From now on update only this rank's pieces of the parameters (Note [Optimizer shards]); the moments
  // cover those pieces only. Call before the first step or before state is restored.
  void shard(const ShardLayout& layout);
  bool sharded() const { return zero_ >= 1; }
  int zero() const { return zero_; }  // the layout's dist.zero; 0 unsharded
  // Sharded: the piece of parameter k this rank owns, or nullptr.
  const ShardPiece* piece(size_t k) const {
    const auto it = piece_.find(k);
    return it == piece_.end() ? nullptr : &it->second;
  }

  // One update at learning rate `lr`. Parameters without a gradient are left alone (as PyTorch does).
  void step(double lr);
  // Sharded, with this rank's averaged gradient pieces instead of .grad (dist.zero = 2): bucket_grads[b] is
  // the piece of bucket b (GradientBucketer::gradient_piece). Every owned piece is updated.
  void step(double lr, const std::vector<at::Tensor>& bucket_grads);
  void zero_grad();  // sets gradients to none

  const std::vector<std::pair<std::string, at::Tensor>>& params() const { return params_; }
  std::map<std::string, ParamState>& state() { return state_; }
  bool decays(const std::string& name) const { return decay_.at(name); }
  bool fused() const { return fused_; }  // train.fused_adamw resolved for these parameters' device

 private:
  std::vector<std::pair<std::string, at::Tensor>> params_;
  std::map<std::string, bool> decay_;
  std::map<std::string, ParamState> state_;
  AdamWOptions options_;
  bool fused_ = false;
  // The tensors one step updates, gathered in parameter order; apply() then updates them (Note [Fused AdamW]).
  struct Batch {
    std::vector<std::string> names;
    std::vector<at::Tensor> params, grads;  // a parameter or its owned elements, and its gradient
  };
  void add(Batch& batch, const std::string& name, at::Tensor p, const at::Tensor& g, int64_t offset);
  void apply(const Batch& batch, double lr);
  // One written-out update of `p` with gradient `g` (train.fused_adamw off).
  void update(ParamState& s, bool decay, at::Tensor p, const at::Tensor& g, double lr);
  int zero_ = 0;
  std::map<size_t, ShardPiece> piece_;  // sharded: parameter index → the piece this rank owns
};

// Decay off for norms, biases and Transformer-XL position biases: everything with fewer than two
// dimensions, and pos_bias_u/v.
bool default_decays(const std::string& name, const at::Tensor& t);

// Scales all gradients so their global L2 norm is at most `max_norm` (≤ 0: no clipping). Returns the norm
// before clipping, in float64; non-finite when some gradient is (nothing is scaled then). Reads the norm back
// from the device: the training step uses the two halves below instead (train/host_reads.h).
double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm);
// Σ g² over the gradients the parameters have, in float64 on their device (0-dim; zero when none has one).
at::Tensor gradient_square_sum(const std::vector<at::Tensor>& params);
// Multiplies every gradient by `scale` (1: leaves them alone).
void scale_gradients(const std::vector<at::Tensor>& params, double scale);
// The factor clip_grad_norm scales by for a gradient of global norm `norm`: 1 when it does not clip.
double clip_coefficient(double norm, double max_norm);

// Linear warmup from 0 to `peak` over `warmup` steps, then cosine decay to `floor` at `total` steps, flat
// after. `step` counts from 1 (the first update).
double warmup_cosine(int64_t step, double peak, double floor, int64_t warmup, int64_t total);

}  // namespace vtb::optim
