#include "optim/adamw.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cmath>
#include <stdexcept>

namespace vtb::optim {

bool default_decays(const std::string& name, const at::Tensor& t) {
  return t.dim() >= 2 && name.find("pos_bias") == std::string::npos;
}

AdamW::AdamW(std::vector<std::pair<std::string, at::Tensor>> params, AdamWOptions options)
    : params_(std::move(params)), options_(options) {
  for (const auto& [name, p] : params_) decay_[name] = default_decays(name, p);
  const bool cuda = !params_.empty() && params_.front().second.is_cuda();
  fused_ = options_.fused == AdamWOptions::Fused::On || (options_.fused == AdamWOptions::Fused::Auto && cuda);
}

void AdamW::shard(const ShardLayout& layout) {
  zero_ = layout.zero;
  piece_.clear();
  for (const ShardPiece& piece : layout.mine) piece_[piece.param] = piece;  // at most one per parameter
}

void AdamW::step(double lr) {
  c10::AutoGradMode no_grad(false);
  Batch batch;
  for (size_t k = 0; k < params_.size(); ++k) {
    at::Tensor p = params_[k].second, g = params_[k].second.grad();
    if (!g.defined()) continue;
    int64_t offset = 0;
    if (sharded()) {  // the owned elements: views, so the update lands in the parameter
      const auto it = piece_.find(k);
      if (it == piece_.end()) continue;
      offset = it->second.offset;
      p = p.view({-1}).narrow(0, offset, it->second.length);
      g = g.reshape({-1}).narrow(0, offset, it->second.length);
    }
    add(batch, params_[k].first, p, g, offset);
  }
  apply(batch, lr);
}

void AdamW::step(double lr, const std::vector<at::Tensor>& bucket_grads) {
  if (!sharded()) throw std::logic_error("AdamW::step with gradient pieces needs a sharded optimizer");
  c10::AutoGradMode no_grad(false);
  Batch batch;
  for (const auto& [k, piece] : piece_) {  // parameter order, as step(lr)
    const at::Tensor p = params_[k].second.view({-1}).narrow(0, piece.offset, piece.length);
    add(batch, params_[k].first, p, bucket_grads.at(piece.bucket).narrow(0, piece.at, piece.length), piece.offset);
  }
  apply(batch, lr);
}

void AdamW::add(Batch& batch, const std::string& name, at::Tensor p, const at::Tensor& g, int64_t offset) {
  ParamState& s = state_[name];
  if (!s.exp_avg.defined()) {
    s.exp_avg = at::zeros_like(p);
    s.exp_avg_sq = at::zeros_like(p);
    s.offset = offset;
  }
  batch.names.push_back(name);
  batch.params.push_back(std::move(p));
  batch.grads.push_back(g);
}

void AdamW::apply(const Batch& batch, double lr) {
  if (!fused_) {
    for (size_t i = 0; i < batch.names.size(); ++i)
      update(state_[batch.names[i]], decay_[batch.names[i]], batch.params[i], batch.grads[i], lr);
    return;
  }
  // One fused call per weight-decay group and device (Note [Fused AdamW]); the kernel takes each tensor's
  // step count after this step's increment, as float32 tensors beside the parameters.
  for (const bool decay : {true, false}) {
    std::vector<at::Tensor> params, grads, exp_avgs, exp_avg_sqs;
    std::vector<float> steps;
    for (size_t i = 0; i < batch.names.size(); ++i) {
      if (decay_[batch.names[i]] != decay) continue;
      ParamState& s = state_[batch.names[i]];
      ++s.step;
      params.push_back(batch.params[i]);
      grads.push_back(batch.grads[i]);
      exp_avgs.push_back(s.exp_avg);
      exp_avg_sqs.push_back(s.exp_avg_sq);
      steps.push_back(static_cast<float>(s.step));
    }
    if (params.empty()) continue;
    const at::Tensor step_tensor = at::tensor(steps, at::kFloat).to(params.front().device(), /*non_blocking=*/true);
    at::_fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, {}, step_tensor.unbind(), lr, options_.beta1,
                      options_.beta2, decay ? options_.weight_decay : 0.0, options_.eps, /*amsgrad=*/false,
                      /*maximize=*/false);
  }
}

void AdamW::update(ParamState& s, bool decay, at::Tensor p, const at::Tensor& g, double lr) {
  const double b1 = options_.beta1, b2 = options_.beta2;
  ++s.step;
  if (decay && options_.weight_decay > 0) p.mul_(1 - lr * options_.weight_decay);
  s.exp_avg.lerp_(g, 1 - b1);
  s.exp_avg_sq.mul_(b2).addcmul_(g, g, 1 - b2);
  const double bias1 = 1 - std::pow(b1, static_cast<double>(s.step));
  const double bias2 = 1 - std::pow(b2, static_cast<double>(s.step));
  // As PyTorch: denom = sqrt(v)/sqrt(bias2) + eps; p -= (lr/bias1) · m / denom.
  at::Tensor denom = (s.exp_avg_sq.sqrt() / std::sqrt(bias2)).add_(options_.eps);
  p.addcdiv_(s.exp_avg, denom, -lr / bias1);
}

void AdamW::zero_grad() {
  for (auto& [name, p] : params_) p.mutable_grad() = at::Tensor();
}

at::Tensor gradient_square_sum(const std::vector<at::Tensor>& params) {
  c10::AutoGradMode no_grad(false);
  at::Tensor total;
  for (const auto& p : params) {
    if (!p.grad().defined()) continue;
    at::Tensor sq = p.grad().to(at::kDouble).pow(2).sum();
    total = total.defined() ? total + sq : sq;
  }
  if (total.defined()) return total;
  return at::zeros({}, at::TensorOptions(at::kDouble).device(params.empty() ? at::kCPU : params.front().device()));
}

void scale_gradients(const std::vector<at::Tensor>& params, double scale) {
  if (scale == 1) return;
  c10::AutoGradMode no_grad(false);
  for (const auto& p : params)
    if (p.grad().defined()) p.grad().mul_(scale);
}

double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm) {
  const double norm = std::sqrt(gradient_square_sum(params).cpu().item<double>());
  scale_gradients(params, clip_coefficient(norm, max_norm));
  return norm;
}

double clip_coefficient(double norm, double max_norm) {
  if (!std::isfinite(norm) || max_norm <= 0 || norm <= max_norm) return 1;
  return max_norm / (norm + 1e-6);  // as torch.nn.utils.clip_grad_norm_
}

double warmup_cosine(int64_t step, double peak, double floor, int64_t warmup, int64_t total) {
  if (warmup > 0 && step <= warmup) return peak * static_cast<double>(step) / static_cast<double>(warmup);
  if (step >= total) return floor;
  const double progress =
      static_cast<double>(step - warmup) / static_cast<double>(std::max<int64_t>(1, total - warmup));
  return floor + (peak - floor) * 0.5 * (1 + std::cos(M_PI * progress));
}

}  // namespace vtb::optim
