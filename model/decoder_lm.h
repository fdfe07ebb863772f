// The decoder LLM: Gemma-1 and Llama from one implementation (docs/design.md §2), Hugging Face parameter names,
// multi-query/grouped attention, RoPE, a KV cache for incremental decoding, and LoRA (lora.h).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>

#include <string>
#include <vector>

#include "model/decoder_config.h"
#include "model/lora.h"

namespace vtb::model {

// Per-layer keys and values of the positions seen so far: [B, kv_heads, S, head_dim].
struct KVCache {
  std::vector<at::Tensor> k, v;
  int64_t length() const { return k.empty() || !k[0].defined() ? 0 : k[0].size(2); }
};

class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps, bool unit_offset);
  at::Tensor forward(const at::Tensor& x);
  at::Tensor weight;

 private:
  double eps_;
  bool unit_offset_;  // Gemma: x̂·(1+w) in float32; Llama: w·x̂ after casting x̂ back
};
TORCH_MODULE(RMSNorm);

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(const DecoderConfig& c, const LoraConfig& lora);
  // x [B,T,D]; cos/sin [B,1,T,head_dim]; allowed bool [B,1,T,S]; cache_k/v: this layer's cache or null.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& allowed,
                     at::Tensor* cache_k, at::Tensor* cache_v);
  void merge_lora(bool merge);  // adds (merge) or subtracts (unmerge) the LoRA update into the base weights

  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  LoraGroup qkv;  // q, k, v in that order: "qkv_lora" (fused) or "q_lora", "k_lora", "v_lora"
  LoraAdapter o_lora{nullptr};

 private:
  int64_t heads_, kv_heads_, head_dim_;
  bool merged_ = false;
};
TORCH_MODULE(Attention);

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(const DecoderConfig& c, const LoraConfig& lora);
  at::Tensor forward(const at::Tensor& x);
  void merge_lora(bool merge);

  torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
  LoraGroup gate_up;  // gate, up in that order: "gate_up_lora" (fused) or "gate_lora", "up_lora"
  LoraAdapter down_lora{nullptr};

 private:
  bool gelu_;  // Gemma: GeGLU with tanh-GELU; Llama: SwiGLU
  bool merged_ = false;
};
TORCH_MODULE(Mlp);

class DecoderLayerImpl : public torch::nn::Module {
 public:
  DecoderLayerImpl(const DecoderConfig& c, const LoraConfig& lora);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& allowed,
                     at::Tensor* cache_k, at::Tensor* cache_v);
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  Attention self_attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(DecoderLayer);

// Holds what Hugging Face keeps under "model.": embeddings, layers, final norm.
class DecoderBackboneImpl : public torch::nn::Module {
 public:
  DecoderBackboneImpl(const DecoderConfig& c, const LoraConfig& lora);
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers;
  RMSNorm norm{nullptr};
};
TORCH_MODULE(DecoderBackbone);

class DecoderLMImpl : public torch::nn::Module {
 public:
  DecoderLMImpl(const DecoderConfig& config, const LoraConfig& lora = {});

  const DecoderConfig& config() const { return config_; }
  const LoraConfig& lora_config() const { return lora_; }

  // Token embeddings as the LLM defines them (Gemma: × √hidden rounded to the dtype). [B,T] → [B,T,D]
  at::Tensor embed(const at::Tensor& ids);
  // The final hidden states [B,T,D] of `embeds` at `positions` [B,T]. `key_valid` [B, past+T] marks real
  // (not padding) keys; undefined = all real. With a cache, keys/values of earlier calls are reused and
  // this call's are appended. Attention is causal in sequence order.
  at::Tensor hidden_states(const at::Tensor& embeds, const at::Tensor& positions, const at::Tensor& key_valid,
                           KVCache* cache = nullptr);
  at::Tensor logits(const at::Tensor& hidden);  // [.., D] → [.., vocab]
  at::Tensor forward(const at::Tensor& ids);    // [B,T] → logits [B,T,V], no padding, no cache

  KVCache new_cache() const {
    return KVCache{std::vector<at::Tensor>(config_.layers), std::vector<at::Tensor>(config_.layers)};
  }

  // Activation checkpointing: in training, each layer keeps only its input and recomputes its
  // activations during backward (less memory, about one more forward of compute).
  void set_activation_checkpointing(bool on) { checkpointing_ = on; }

  // Freezes every base weight; only LoRA tensors keep requires_grad.
  void freeze_base();

  // Note [Frozen weights in bf16]: model.frozen_dtype = bfloat16 (auto: whenever the training step computes
  // in bf16) stores the frozen projection weights (q, k, v, o, gate, up, down; lm_head when untied) in bf16.
  // Under bf16 autocast a linear casts a float32 weight to bf16 before every matmul, so a bf16-stored weight
  // hands the matmul the very same operands: losses and gradients do not change by one bit, and those weights
  // take half the memory and no cast per forward. What autocast does not cast stays as it was:
  //   - the RMSNorm weights: applied in float32 (a few KB per layer, nothing to gain);
  //   - the embedding: its rows enter the model by lookup, not through a matmul, so bf16 rows would change
  //     the first layer's input. It is stored in bf16 only when every value survives the cast unchanged —
  //     true of every checkpoint published in bf16 (Gemma, Llama) — and its rows are widened back to float32
  //     after the lookup, so nothing changes either; a float32 table that bf16 cannot hold exactly (vtb's
  //     random stand-ins) stays float32.
  // Trained tensors (LoRA, and outside the LLM the encoder, adapter and projection) keep float32 masters.
  // Training only: without autocast a bf16 weight meets float32 activations, so eval keeps float32.
  struct FrozenStorage {
    int64_t bytes_before = 0, bytes_after = 0;  // of the frozen parameters
    int64_t converted = 0;                      // tensors now stored in `dtype`
    bool embedding = false;                     // the embedding was among them
  };
  FrozenStorage store_frozen(at::ScalarType dtype);
  void merge_lora();
  void unmerge_lora();
  bool lora_merged() const { return merged_; }

  DecoderBackbone model{nullptr};
  torch::nn::Linear lm_head{nullptr};  // null when tied to the embeddings

 private:
  DecoderConfig config_;
  LoraConfig lora_;
  bool merged_ = false;
  bool checkpointing_ = false;
  bool widen_embeddings_ = false;  // the embedding is stored narrower than float32 (store_frozen)
};
TORCH_MODULE(DecoderLM);

// LoRA parameters a DecoderLM of `c` with `lora` has, without building it.
int64_t lora_parameter_count(const DecoderConfig& c, const LoraConfig& lora);

// True for parameter names that belong to LoRA adapters.
bool is_lora_parameter(const std::string& name);

// Builds a DecoderLM from a Hugging Face folder (config.json + safetensors): the embedding row count comes
// from the tensor, not config.json; every missing, unexpected or mis-shaped tensor is listed in one error.
// Weights are converted to `dtype`; LoRA adapters (if any) are fresh.
DecoderLM load_hf_decoder(const std::string& dir, const LoraConfig& lora, at::ScalarType dtype = at::kFloat);

// Writes `model`'s base weights (LoRA merged if `merge_lora`, else left out) as a Hugging Face folder.
void save_hf_decoder(DecoderLM& model, const std::string& dir, bool merge_lora);

}  // namespace vtb::model
