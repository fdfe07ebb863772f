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

LoraGroup::LoraGroup(torch::nn::Module& owner, const LoraConfig& lora, int64_t in, std::vector<Projection> projections,
                     const std::string& fused_name) {
  const size_t n = projections.size();
  rows_.assign(n, -1);
  separate.resize(n, LoraAdapter(nullptr));
  for (const auto& p : projections) outs_.push_back(p.out);
  if (!lora.enabled()) return;
  if (lora.layout == LoraLayout::Fused) {
    int64_t rows = 0;
    for (size_t i = 0; i < n; ++i)
      if (lora.targets.count(projections[i].target)) rows_[i] = rows, rows += projections[i].out;
    if (rows > 0) fused = owner.register_module(fused_name, LoraAdapter(in, rows, lora));
    return;
  }
  for (size_t i = 0; i < n; ++i)
    if (lora.targets.count(projections[i].target))
      separate[i] = owner.register_module(std::string(projections[i].target) + "_lora",
                                          LoraAdapter(in, projections[i].out, lora));
}

void LoraGroup::add_updates(const at::Tensor& x, const std::vector<at::Tensor*>& outputs) {
  if (fused) {
    const at::Tensor d = fused(x);
    for (size_t i = 0; i < outputs.size(); ++i)
      if (rows_[i] >= 0) *outputs[i] = *outputs[i] + d.narrow(-1, rows_[i], outs_[i]);
  }
  for (size_t i = 0; i < outputs.size(); ++i)
    if (separate[i]) *outputs[i] = *outputs[i] + separate[i](x);
}

void LoraGroup::apply_to_weights(const std::vector<torch::nn::Linear*>& bases, double sign) const {
  if (fused) {
    const at::Tensor d = fused->delta_weight();
    for (size_t i = 0; i < bases.size(); ++i)
      if (rows_[i] >= 0) add_delta_rows(*bases[i], d, rows_[i], sign);
  }
  for (size_t i = 0; i < bases.size(); ++i)
    if (separate[i]) add_delta_rows(*bases[i], separate[i]->delta_weight(), 0, sign);
}

std::pair<at::Tensor, at::Tensor> LoraGroup::peft_adapter(size_t i) const {
  if (fused && rows_[i] >= 0) return {fused->A, fused->B.narrow(0, rows_[i], outs_[i])};
  if (separate[i]) return {separate[i]->A, separate[i]->B};
  return {};
}

void add_delta_rows(torch::nn::Linear& base, const at::Tensor& delta, int64_t row, double sign) {
  torch::NoGradGuard no_grad;
  at::Tensor& w = base->weight;
  w.add_(delta.narrow(0, row, w.size(0)).to(w.scalar_type()), sign);
}

}  // namespace vtb::model
