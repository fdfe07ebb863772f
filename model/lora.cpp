#include "model/lora.h"

#include <torch/nn/functional/dropout.h>
#include <torch/nn/init.h>

#include <cmath>

namespace vtb::model {

bool LoraConfig::targets_any(std::initializer_list<const char*> names) const {
  if (!enabled()) return false;
  for (const char* n : names)
    if (targets.count(n)) return true;
  return false;
}

LoraAdapterImpl::LoraAdapterImpl(int64_t in, int64_t out, const LoraConfig& config)
    : scale_(config.scale()), dropout_(config.dropout) {
  A = register_parameter("A", torch::empty({config.rank, in}));
  B = register_parameter("B", torch::zeros({out, config.rank}));
  torch::nn::init::kaiming_uniform_(A, std::sqrt(5.0));
}

at::Tensor LoraAdapterImpl::forward(const at::Tensor& x) {
  at::Tensor h = dropout_ > 0 ? torch::nn::functional::dropout(
                                    x, torch::nn::functional::DropoutFuncOptions().p(dropout_).training(is_training()))
                              : x;
  // As PEFT: compute in the adapter's dtype (fp32 trainable weights under a bf16 base), return x's dtype.
  return (torch::matmul(torch::matmul(h.to(A.scalar_type()), A.t()), B.t()) * scale_).to(x.scalar_type());
}

at::Tensor LoraAdapterImpl::delta_weight() const { return torch::matmul(B, A) * scale_; }

}  // namespace vtb::model
