// Conformer building blocks shared by the FastConformer encoder and the modality adapter, with NeMo's
// module names (so NeMo checkpoints map one to one): macaron feed-forwards, Transformer-XL relative
// position self-attention with per-layer pos_bias_u/v, and the convolution module with BatchNorm.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "model/speech_config.h"

namespace vtb::model {

// Sinusoidal embeddings of relative positions T-1 … -(T-1): [1, 2T-1, d].
at::Tensor relative_positions(int64_t T, int64_t d, const at::TensorOptions& options);

// [B, T] bool, true at padding (t ≥ length).
at::Tensor padding_mask(const at::Tensor& lengths, int64_t T);

class FeedForwardImpl : public torch::nn::Module {
 public:
  FeedForwardImpl(int64_t d, int64_t ff, double dropout);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::Linear linear1{nullptr}, linear2{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(FeedForward);

class RelPositionAttentionImpl : public torch::nn::Module {
 public:
  RelPositionAttentionImpl(int64_t d, int64_t heads, double dropout);
  // x [B,T,d]; pos [1,2T-1,d]; pad [B,T] (true = padding key).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& pos, const at::Tensor& pad);
  torch::nn::Linear linear_q{nullptr}, linear_k{nullptr}, linear_v{nullptr}, linear_out{nullptr}, linear_pos{nullptr};
  at::Tensor pos_bias_u, pos_bias_v;  // [heads, d/heads]
  torch::nn::Dropout dropout{nullptr};

 private:
  int64_t heads_, dk_;
};
TORCH_MODULE(RelPositionAttention);

class ConvolutionModuleImpl : public torch::nn::Module {
 public:
  ConvolutionModuleImpl(int64_t d, int64_t kernel);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& pad);  // x [B,T,d]
  torch::nn::Conv1d pointwise_conv1{nullptr}, depthwise_conv{nullptr}, pointwise_conv2{nullptr};
  torch::nn::BatchNorm1d batch_norm{nullptr};
};
TORCH_MODULE(ConvolutionModule);

class ConformerLayerImpl : public torch::nn::Module {
 public:
  explicit ConformerLayerImpl(const ConformerShape& s);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& pos, const at::Tensor& pad);
  torch::nn::LayerNorm norm_feed_forward1{nullptr}, norm_self_att{nullptr}, norm_conv{nullptr},
      norm_feed_forward2{nullptr}, norm_out{nullptr};
  FeedForward feed_forward1{nullptr}, feed_forward2{nullptr};
  RelPositionAttention self_attn{nullptr};
  ConvolutionModule conv{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(ConformerLayer);

// The layers after a pre-encoder: x·√d (xscaling), dropout, relative positions, then each layer of
// `layers` (ConformerLayer). x [B,T,d], lengths [B]. Encoder and adapter both register their own
// "layers" list so parameter names stay NeMo's.
at::Tensor run_conformer_layers(torch::nn::ModuleList& layers, const ConformerShape& shape, at::Tensor x,
                                const at::Tensor& lengths, torch::nn::Dropout& dropout);

}  // namespace vtb::model
