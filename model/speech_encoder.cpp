#include "model/speech_encoder.h"

#include <torch/torch.h>

#include <stdexcept>

#include "model/conformer.h"

namespace vtb::model {
namespace {

int64_t stride_stages(int64_t factor) {
  int64_t k = 0;
  while ((int64_t{1} << k) < factor) ++k;
  if ((int64_t{1} << k) != factor || k < 1)
    throw std::invalid_argument("encoder.subsampling_factor must be a power of two ≥ 2, got " + std::to_string(factor));
  return k;
}

// NeMo calc_length for kernel 3, stride 2, padding 1: floor((L + 2 - 3) / 2) + 1.
at::Tensor halve(const at::Tensor& lengths) { return torch::floor_divide(lengths - 1, 2) + 1; }

}  // namespace

// ---- shapes and counts -------------------------------------------------------------------------------

int64_t ConformerShape::layer_parameter_count() const {
  const int64_t d = d_model;
  const int64_t ff = 2 * (d * ff_dim + ff_dim + ff_dim * d + d);
  const int64_t attention = 4 * (d * d + d) + d * d + 2 * d;  // q, k, v, out; linear_pos; pos_bias_u/v
  const int64_t conv = (d * 2 * d + 2 * d) + (d * conv_kernel + d) + 2 * d + (d * d + d);
  return ff + attention + conv + 5 * 2 * d;  // + five LayerNorms
}

int64_t EncoderConfig::subsampled_mels() const {
  int64_t f = n_mels;
  for (int64_t i = 0; i < stride_stages(subsampling_factor); ++i) f = (f - 1) / 2 + 1;
  return f;
}

int64_t EncoderConfig::output_frames(int64_t feature_frames) const {
  int64_t t = feature_frames;
  for (int64_t i = 0; i < stride_stages(subsampling_factor); ++i) t = t >= 1 ? (t - 1) / 2 + 1 : 0;  // = halve
  return t;
}

int64_t EncoderConfig::parameter_count() const {
  const int64_t C = subsampling_channels, stages = stride_stages(subsampling_factor);
  const int64_t convs = (9 * C + C) + (stages - 1) * ((9 * C + C) + (C * C + C));
  const int64_t out = C * subsampled_mels() * conformer.d_model + conformer.d_model;
  return convs + out + conformer.layers * conformer.layer_parameter_count();
}

void EncoderConfig::validate() const {
  stride_stages(subsampling_factor);
  if (n_mels <= 0 || subsampling_channels <= 0 || conformer.d_model <= 0 || conformer.layers < 0)
    throw std::invalid_argument("encoder: sizes must be positive");
}

int64_t AdapterConfig::parameter_count() const {
  return input_dim * conformer.d_model + conformer.d_model + conformer.layers * conformer.layer_parameter_count();
}

// ---- subsampling ---------------------------------------------------------------------------------------

ConvSubsamplingImpl::ConvSubsamplingImpl(const EncoderConfig& c) : stages_(stride_stages(c.subsampling_factor)) {
  const int64_t C = c.subsampling_channels;
  using torch::nn::Conv2dOptions;
  conv = register_module("conv", torch::nn::ModuleList());
  conv->push_back(torch::nn::Conv2d(Conv2dOptions(1, C, 3).stride(2).padding(1)));
  conv->push_back(torch::nn::ReLU());
  for (int64_t s = 1; s < stages_; ++s) {
    conv->push_back(torch::nn::Conv2d(Conv2dOptions(C, C, 3).stride(2).padding(1).groups(C)));
    conv->push_back(torch::nn::Conv2d(Conv2dOptions(C, C, 1)));
    conv->push_back(torch::nn::ReLU());
  }
  out = register_module("out", torch::nn::Linear(C * c.subsampled_mels(), c.conformer.d_model));
}

std::pair<at::Tensor, at::Tensor> ConvSubsamplingImpl::forward(const at::Tensor& features, const at::Tensor& lengths) {
  at::Tensor x = features.transpose(1, 2).unsqueeze(1);  // [B,1,T,F]
  at::Tensor len = lengths;
  auto mask_time = [&](at::Tensor t) {
    return t.masked_fill(padding_mask(len, t.size(2)).view({t.size(0), 1, t.size(2), 1}), 0.0);
  };
  size_t i = 0;
  for (int64_t s = 0; s < stages_; ++s) {
    x = mask_time(x);
    const size_t convs_in_stage = s == 0 ? 1 : 2;
    for (size_t j = 0; j < convs_in_stage; ++j) x = conv[i++]->as<torch::nn::Conv2d>()->forward(x);
    x = torch::relu(x);
    ++i;  // the ReLU entry
    len = halve(len);
  }
  x = mask_time(x);
  const int64_t B = x.size(0), C = x.size(1), T = x.size(2), F = x.size(3);
  x = x.transpose(1, 2).reshape({B, T, C * F});  // channel-major flatten
  return {out(x), len};
}

// ---- encoder and adapter -------------------------------------------------------------------------------

SpeechEncoderImpl::SpeechEncoderImpl(const EncoderConfig& c) : config_(c) {
  c.validate();
  pre_encode = register_module("pre_encode", ConvSubsampling(c));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.conformer.layers; ++i) layers->push_back(ConformerLayer(c.conformer));
  dropout = register_module("dropout", torch::nn::Dropout(c.conformer.dropout));
}

std::pair<at::Tensor, at::Tensor> SpeechEncoderImpl::forward(const at::Tensor& features, const at::Tensor& lengths) {
  auto [x, len] = pre_encode(features, lengths);
  return {run_conformer_layers(layers, config_.conformer, x, len, dropout), len};
}

ModalityAdapterImpl::ModalityAdapterImpl(const AdapterConfig& c) : config_(c) {
  pre_encode = register_module("pre_encode", torch::nn::Linear(c.input_dim, c.conformer.d_model));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.conformer.layers; ++i) layers->push_back(ConformerLayer(c.conformer));
  dropout = register_module("dropout", torch::nn::Dropout(c.conformer.dropout));
}

at::Tensor ModalityAdapterImpl::forward(const at::Tensor& frames, const at::Tensor& lengths) {
  return run_conformer_layers(layers, config_.conformer, pre_encode(frames), lengths, dropout);
}

}  // namespace vtb::model
