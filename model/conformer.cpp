#include "model/conformer.h"

#include <torch/torch.h>

#include <cmath>

namespace vtb::model {

at::Tensor relative_positions(int64_t T, int64_t d, const at::TensorOptions& options) {
  const auto f32 = options.dtype(torch::kFloat);
  at::Tensor pos = torch::arange(T - 1, -T, -1, f32).unsqueeze(1);  // T-1 … -(T-1)
  at::Tensor div = torch::exp(torch::arange(0, d, 2, f32) * (-std::log(10000.0) / d));
  at::Tensor pe = torch::zeros({2 * T - 1, d}, f32);
  pe.slice(1, 0, d, 2).copy_(torch::sin(pos * div));
  pe.slice(1, 1, d, 2).copy_(torch::cos(pos * div));
  return pe.unsqueeze(0).to(options.dtype());
}

at::Tensor padding_mask(const at::Tensor& lengths, int64_t T) {
  return torch::arange(T, lengths.options()).unsqueeze(0) >= lengths.unsqueeze(1);
}

FeedForwardImpl::FeedForwardImpl(int64_t d, int64_t ff, double p) {
  linear1 = register_module("linear1", torch::nn::Linear(d, ff));
  linear2 = register_module("linear2", torch::nn::Linear(ff, d));
  dropout = register_module("dropout", torch::nn::Dropout(p));
}

at::Tensor FeedForwardImpl::forward(const at::Tensor& x) { return linear2(dropout(torch::silu(linear1(x)))); }

RelPositionAttentionImpl::RelPositionAttentionImpl(int64_t d, int64_t heads, double p) : heads_(heads), dk_(d / heads) {
  if (d % heads != 0) throw std::invalid_argument("conformer: d_model must be a multiple of heads");
  linear_q = register_module("linear_q", torch::nn::Linear(d, d));
  linear_k = register_module("linear_k", torch::nn::Linear(d, d));
  linear_v = register_module("linear_v", torch::nn::Linear(d, d));
  linear_out = register_module("linear_out", torch::nn::Linear(d, d));
  linear_pos = register_module("linear_pos", torch::nn::Linear(torch::nn::LinearOptions(d, d).bias(false)));
  pos_bias_u = register_parameter("pos_bias_u", torch::zeros({heads, dk_}));
  pos_bias_v = register_parameter("pos_bias_v", torch::zeros({heads, dk_}));
  dropout = register_module("dropout", torch::nn::Dropout(p));
}

at::Tensor RelPositionAttentionImpl::forward(const at::Tensor& x, const at::Tensor& pos, const at::Tensor& pad) {
  const int64_t B = x.size(0), T = x.size(1);
  auto heads = [&](const at::Tensor& t) { return t.view({t.size(0), -1, heads_, dk_}).transpose(1, 2); };
  at::Tensor q = linear_q(x).view({B, T, heads_, dk_});  // [B,T,H,dk]: the biases add per head
  at::Tensor k = heads(linear_k(x)), v = heads(linear_v(x));
  at::Tensor p = heads(linear_pos(pos));                                                 // [1,H,2T-1,dk]
  at::Tensor ac = torch::matmul((q + pos_bias_u).transpose(1, 2), k.transpose(-2, -1));  // [B,H,T,T]
  at::Tensor bd = torch::matmul((q + pos_bias_v).transpose(1, 2), p.transpose(-2, -1));  // [B,H,T,2T-1]
  // Transformer-XL rel_shift: entry (i, j) becomes the score for relative position i - j.
  bd = torch::constant_pad_nd(bd, {1, 0})
           .view({B, heads_, 2 * T, T})
           .narrow(2, 1, 2 * T - 1)
           .view({B, heads_, T, 2 * T - 1});
  at::Tensor scores = (ac + bd.narrow(3, 0, T)) / std::sqrt(static_cast<double>(dk_));
  scores = scores.masked_fill(pad.view({B, 1, 1, T}), -10000.0);  // as NeMo: padded keys
  at::Tensor attn = dropout(torch::softmax(scores, -1));
  return linear_out(torch::matmul(attn, v).transpose(1, 2).reshape({B, T, heads_ * dk_}));
}

ConvolutionModuleImpl::ConvolutionModuleImpl(int64_t d, int64_t kernel) {
  if (kernel % 2 == 0) throw std::invalid_argument("conformer: conv_kernel must be odd");
  pointwise_conv1 = register_module("pointwise_conv1", torch::nn::Conv1d(torch::nn::Conv1dOptions(d, 2 * d, 1)));
  depthwise_conv = register_module(
      "depthwise_conv", torch::nn::Conv1d(torch::nn::Conv1dOptions(d, d, kernel).groups(d).padding((kernel - 1) / 2)));
  batch_norm = register_module("batch_norm", torch::nn::BatchNorm1d(d));
  pointwise_conv2 = register_module("pointwise_conv2", torch::nn::Conv1d(torch::nn::Conv1dOptions(d, d, 1)));
}

at::Tensor ConvolutionModuleImpl::forward(const at::Tensor& x, const at::Tensor& pad) {
  at::Tensor h = torch::glu(pointwise_conv1(x.transpose(1, 2)), 1);  // [B,d,T]
  h = h.masked_fill(pad.unsqueeze(1), 0.0);                          // padding never leaks into valid frames
  h = torch::silu(batch_norm(depthwise_conv(h)));
  return pointwise_conv2(h).transpose(1, 2);
}

ConformerLayerImpl::ConformerLayerImpl(const ConformerShape& s) {
  auto norm = [&](const char* name) {
    return register_module(name, torch::nn::LayerNorm(torch::nn::LayerNormOptions({s.d_model})));
  };
  norm_feed_forward1 = norm("norm_feed_forward1");
  feed_forward1 = register_module("feed_forward1", FeedForward(s.d_model, s.ff_dim, s.dropout));
  norm_self_att = norm("norm_self_att");
  self_attn = register_module("self_attn", RelPositionAttention(s.d_model, s.heads, s.dropout));
  norm_conv = norm("norm_conv");
  conv = register_module("conv", ConvolutionModule(s.d_model, s.conv_kernel));
  norm_feed_forward2 = norm("norm_feed_forward2");
  feed_forward2 = register_module("feed_forward2", FeedForward(s.d_model, s.ff_dim, s.dropout));
  norm_out = norm("norm_out");
  dropout = register_module("dropout", torch::nn::Dropout(s.dropout));
}

at::Tensor ConformerLayerImpl::forward(const at::Tensor& x, const at::Tensor& pos, const at::Tensor& pad) {
  at::Tensor h = x + 0.5 * dropout(feed_forward1(norm_feed_forward1(x)));
  h = h + dropout(self_attn(norm_self_att(h), pos, pad));
  h = h + dropout(conv(norm_conv(h), pad));
  h = h + 0.5 * dropout(feed_forward2(norm_feed_forward2(h)));
  return norm_out(h);
}

at::Tensor run_conformer_layers(torch::nn::ModuleList& layers, const ConformerShape& shape, at::Tensor x,
                                const at::Tensor& lengths, torch::nn::Dropout& dropout) {
  if (shape.xscaling) x = x * std::sqrt(static_cast<double>(shape.d_model));
  x = dropout(x);
  const at::Tensor pos = relative_positions(x.size(1), shape.d_model, x.options());
  const at::Tensor pad = padding_mask(lengths, x.size(1));
  for (auto& layer : *layers) x = layer->as<ConformerLayer>()->forward(x, pos, pad);
  return x;
}

}  // namespace vtb::model
