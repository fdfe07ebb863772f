// SpeechLM: speech encoder → modality adapter → projection, spliced into the decoder LLM's input in
// place of each <audio> placeholder token (docs/design.md §3), so audio can sit anywhere, any number of times.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>

#include <vector>

#include "model/decoder_lm.h"
#include "model/speech_encoder.h"

namespace vtb::model {

struct SpeechLMConfig {
  EncoderConfig encoder;
  AdapterConfig adapter;
  DecoderConfig llm;
  LoraConfig lora;
  int64_t audio_token_id = -1;  // the <audio> placeholder's id
};

// A padded batch as the data pipeline builds it.
// The token tensors and feature_lengths are read on the host to lay out the spliced sequence: pass them as
// CPU tensors (training does) and the model reads nothing back from its device; features may be anywhere.
struct SpeechBatch {
  at::Tensor ids;              // [B, T] int64, right-padded
  at::Tensor lengths;          // [B] tokens per example
  at::Tensor loss_mask;        // [B, T] bool: token t is an answer token (the loss predicts it)
  at::Tensor features;         // [N, n_mels, F]: every audio segment of the batch, in placeholder order; or undefined
  at::Tensor feature_lengths;  // [N]
};

// The LLM's input after splicing: audio frames in place of placeholders, right-padded.
struct SplicedInput {
  at::Tensor embeds;        // [B, S, d_llm]
  at::Tensor valid;         // [B, S] bool
  at::Tensor positions;     // [B, S] int64 (positions count audio frames)
  at::Tensor targets;       // [B, S] int64: the token position s must predict, or -100
  at::Tensor lengths;       // [B] int64, CPU
  at::Tensor host_targets;  // targets, CPU: where the answers are, without reading the device
};

struct LossOutput {
  at::Tensor loss;              // mean cross-entropy over answer tokens (0 when there are none)
  at::Tensor loss_sum;          // Σ cross-entropy over answer tokens: what training backpropagates
  at::Tensor example_loss_sum;  // [B] float32 on the model's device, detached: Σ cross-entropy per example
  at::Tensor example_tokens;    // [B] int64, CPU: answer tokens per example
  int64_t tokens = 0;           // answer tokens counted
  int64_t positions = 0;        // LLM sequence positions processed (text tokens + audio frames, no padding)
  int64_t frames = 0;           // audio frames spliced in (speech-encoder output frames)
};

class SpeechLMImpl : public torch::nn::Module {
 public:
  explicit SpeechLMImpl(const SpeechLMConfig& c);
  // Builds from an already-constructed (e.g. loaded) LLM; c.llm and c.lora must describe it.
  SpeechLMImpl(const SpeechLMConfig& c, DecoderLM llm);

  const SpeechLMConfig& config() const { return config_; }

  // Adapter-projected frames of each audio segment: one [L_i, d_llm] tensor per segment.
  std::vector<at::Tensor> audio_embeddings(const at::Tensor& features, const at::Tensor& lengths);
  SplicedInput splice(const SpeechBatch& batch);
  LossOutput loss(const SpeechBatch& batch);

  // Freezes the LLM's base weights: trainable = encoder, adapter, projection, LoRA.
  void freeze_llm_base();

  SpeechEncoder encoder{nullptr};
  ModalityAdapter modality_adapter{nullptr};
  torch::nn::Linear proj{nullptr};
  DecoderLM llm{nullptr};

 private:
  void build_speech_modules();
  SpeechLMConfig config_;
};
TORCH_MODULE(SpeechLM);

// The config keys behind the model's sizes with their values (encoder.*, adapter.*, llm.*, lora.rank), for
// TensorLoad::name_sizes.
std::vector<std::pair<std::string, int64_t>> size_settings(const SpeechLMConfig& c);

// Loads `file`'s "encoder.*" tensors (safetensors, e.g. from vtb encoder pretrain) into `lm`'s encoder,
// buffers included; every missing, unexpected or mis-shaped tensor is named in one error.
void load_encoder_weights(SpeechLM& lm, const std::string& file);

// The same from tensors by name ("encoder.pre_encode.out.weight", ...) into `encoder`, built from
// `config.encoder`; `what` opens the error (which file, e.g. a .nemo's model_weights.ckpt).
void load_encoder_tensors(SpeechEncoder& encoder, const SpeechLMConfig& config,
                          const std::vector<std::pair<std::string, at::Tensor>>& tensors, const std::string& what);

}  // namespace vtb::model
