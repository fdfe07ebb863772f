// The speech encoder (FastConformer, as in Canary-1B) and the modality adapter, with NeMo's names.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>

#include <utility>

#include "model/speech_config.h"

namespace vtb::model {

// dw_striding subsampling ×2^k: Conv2d(1→C, k3, s2) + ReLU, then k−1 × [depthwise Conv2d k3 s2,
// pointwise Conv2d 1×1, ReLU], channel-major flatten, Linear to d_model. Padded time steps are zeroed
// before every convolution so they never reach valid outputs.
class ConvSubsamplingImpl : public torch::nn::Module {
 public:
  explicit ConvSubsamplingImpl(const EncoderConfig& c);
  // features [B, n_mels, T], lengths [B] → frames [B, T', d_model], lengths'
  std::pair<at::Tensor, at::Tensor> forward(const at::Tensor& features, const at::Tensor& lengths);
  torch::nn::ModuleList conv;  // NeMo's indices: 0 conv, 1 ReLU, 2 dw, 3 pw, 4 ReLU, ...
  torch::nn::Linear out{nullptr};

 private:
  int64_t stages_;
};
TORCH_MODULE(ConvSubsampling);

class SpeechEncoderImpl : public torch::nn::Module {
 public:
  explicit SpeechEncoderImpl(const EncoderConfig& c);
  std::pair<at::Tensor, at::Tensor> forward(const at::Tensor& features, const at::Tensor& lengths);
  ConvSubsampling pre_encode{nullptr};
  torch::nn::ModuleList layers;
  torch::nn::Dropout dropout{nullptr};

 private:
  EncoderConfig config_;
};
TORCH_MODULE(SpeechEncoder);

// Conformer layers with no time reduction; its "pre_encode" is a Linear (NeMo dw_striding factor 1).
class ModalityAdapterImpl : public torch::nn::Module {
 public:
  explicit ModalityAdapterImpl(const AdapterConfig& c);
  at::Tensor forward(const at::Tensor& frames, const at::Tensor& lengths);  // [B,T,in] → [B,T,d_model]
  torch::nn::Linear pre_encode{nullptr};
  torch::nn::ModuleList layers;
  torch::nn::Dropout dropout{nullptr};

 private:
  AdapterConfig config_;
};
TORCH_MODULE(ModalityAdapter);

}  // namespace vtb::model
