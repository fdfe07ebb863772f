#include "model/decoder_lm.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "model/attention.h"
#include "model/safetensors.h"
#include "model/tensor_loading.h"

namespace vtb::model {
namespace {

torch::nn::Linear linear(int64_t in, int64_t out) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false));
}

at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

// [B,T] positions → cos, sin [B,1,T,d], computed in float32 (as HF), cast to `dtype`.
std::pair<at::Tensor, at::Tensor> rope(const at::Tensor& positions, int64_t d, double theta, at::ScalarType dtype) {
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat).device(positions.device());
  at::Tensor exponent = torch::arange(0, d, 2, f32) / static_cast<double>(d);
  at::Tensor inv_freq = 1.0 / torch::pow(torch::scalar_tensor(theta, f32), exponent);
  at::Tensor freqs = positions.to(torch::kFloat).unsqueeze(-1) * inv_freq;  // [B,T,d/2]
  at::Tensor emb = torch::cat({freqs, freqs}, -1).unsqueeze(1);             // [B,1,T,d]
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

// Note [Activation checkpointing]: the layer runs without autograd in forward; backward recomputes it
// with autograd on (replaying the CPU RNG, so dropout draws the same mask) and back-propagates through
// the recomputation, which accumulates parameter gradients directly (a reentrant backward, as PyTorch's
// original checkpoint) and returns the input's gradient.
struct CheckpointedLayer : torch::autograd::Function<CheckpointedLayer> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos,
                            const at::Tensor& sin, const at::Tensor& allowed, DecoderLayerImpl* layer) {
    ctx->saved_data["layer"] = reinterpret_cast<int64_t>(layer);
    ctx->saved_data["rng"] = at::detail::getDefaultCPUGenerator().get_state();
    ctx->save_for_backward({x, cos, sin, allowed});
    torch::NoGradGuard no_grad;
    return layer->forward(x, cos, sin, allowed, nullptr, nullptr);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto* layer = reinterpret_cast<DecoderLayerImpl*>(ctx->saved_data["layer"].toInt());
    at::Tensor x = saved[0].detach().requires_grad_(true);
    auto generator = at::detail::getDefaultCPUGenerator();
    const at::Tensor rng_now = generator.get_state();
    generator.set_state(ctx->saved_data["rng"].toTensor());
    at::Tensor out;
    {
      torch::AutoGradMode enable(true);
      out = layer->forward(x, saved[1], saved[2], saved[3], nullptr, nullptr);
    }
    generator.set_state(rng_now);
    torch::autograd::backward({out}, {grads[0]});
    return {x.grad(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

bool is_lora_parameter(const std::string& name) { return name.find("_lora.") != std::string::npos; }

int64_t lora_parameter_count(const DecoderConfig& c, const LoraConfig& lora) {
  if (!lora.enabled()) return 0;
  const int64_t q = c.heads * c.head_dim, kv = c.kv_heads * c.head_dim;
  auto has = [&](const char* t) { return lora.targets.count(t) > 0; };
  auto adapter = [&](int64_t in, int64_t out) { return out > 0 ? lora.rank * (in + out) : 0; };
  int64_t per_layer = adapter(q, c.hidden * has("o")) + adapter(c.intermediate, c.hidden * has("down"));
  if (lora.layout == LoraLayout::Fused) {
    per_layer += adapter(c.hidden, q * has("q") + kv * has("k") + kv * has("v"));
    per_layer += adapter(c.hidden, c.intermediate * (has("gate") + has("up")));
  } else {
    per_layer += adapter(c.hidden, q * has("q")) + adapter(c.hidden, kv * has("k")) + adapter(c.hidden, kv * has("v"));
    per_layer += adapter(c.hidden, c.intermediate * has("gate")) + adapter(c.hidden, c.intermediate * has("up"));
  }
  return c.layers * per_layer;
}

// ---- RMSNorm -----------------------------------------------------------------------------------------

RMSNormImpl::RMSNormImpl(int64_t dim, double eps, bool unit_offset) : eps_(eps), unit_offset_(unit_offset) {
  weight = register_parameter("weight", unit_offset ? torch::zeros({dim}) : torch::ones({dim}));
}

at::Tensor RMSNormImpl::forward(const at::Tensor& x) {
  at::Tensor xf = x.to(torch::kFloat);
  at::Tensor normed = xf * torch::rsqrt(xf.pow(2).mean(-1, true) + eps_);
  if (unit_offset_) return (normed * (1.0 + weight.to(torch::kFloat))).to(x.scalar_type());
  return weight * normed.to(x.scalar_type());
}

// ---- Attention ---------------------------------------------------------------------------------------

AttentionImpl::AttentionImpl(const DecoderConfig& c, const LoraConfig& lora)
    : heads_(c.heads), kv_heads_(c.kv_heads), head_dim_(c.head_dim) {
  const int64_t q_out = c.heads * c.head_dim, kv_out = c.kv_heads * c.head_dim;
  q_proj = register_module("q_proj", linear(c.hidden, q_out));
  k_proj = register_module("k_proj", linear(c.hidden, kv_out));
  v_proj = register_module("v_proj", linear(c.hidden, kv_out));
  o_proj = register_module("o_proj", linear(q_out, c.hidden));
  qkv = LoraGroup(*this, lora, c.hidden, {{"q", q_out}, {"k", kv_out}, {"v", kv_out}}, "qkv_lora");
  if (lora.enabled() && lora.targets.count("o")) o_lora = register_module("o_lora", LoraAdapter(q_out, c.hidden, lora));
}

at::Tensor AttentionImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                  const at::Tensor& allowed, at::Tensor* cache_k, at::Tensor* cache_v) {
  at::Tensor q = q_proj(x), k = k_proj(x), v = v_proj(x);
  if (!merged_) qkv.add_updates(x, {&q, &k, &v});
  const int64_t B = x.size(0), T = x.size(1);
  q = q.view({B, T, heads_, head_dim_}).transpose(1, 2);
  k = k.view({B, T, kv_heads_, head_dim_}).transpose(1, 2);
  v = v.view({B, T, kv_heads_, head_dim_}).transpose(1, 2);
  q = q * cos + rotate_half(q) * sin;
  k = k * cos + rotate_half(k) * sin;
  if (cache_k != nullptr) {
    if (cache_k->defined()) {
      k = torch::cat({*cache_k, k}, 2);
      v = torch::cat({*cache_v, v}, 2);
    }
    *cache_k = k;
    *cache_v = v;
  }
  const int64_t groups = heads_ / kv_heads_;  // repeat_kv: each KV head serves `groups` query heads
  if (groups > 1) {
    const int64_t S = k.size(2);
    k = k.unsqueeze(2).expand({B, kv_heads_, groups, S, head_dim_}).reshape({B, heads_, S, head_dim_});
    v = v.unsqueeze(2).expand({B, kv_heads_, groups, S, head_dim_}).reshape({B, heads_, S, head_dim_});
  }
  at::Tensor out = attention(q, k, v, allowed).transpose(1, 2).reshape({B, T, heads_ * head_dim_});
  at::Tensor y = o_proj(out);
  if (o_lora && !merged_) y = y + o_lora(out);
  return y;
}

void AttentionImpl::merge_lora(bool merge) {
  if (merged_ == merge) return;
  const double sign = merge ? 1.0 : -1.0;
  qkv.apply_to_weights({&q_proj, &k_proj, &v_proj}, sign);
  if (o_lora) add_delta_rows(o_proj, o_lora->delta_weight(), 0, sign);
  merged_ = merge;
}

// ---- MLP ---------------------------------------------------------------------------------------------

MlpImpl::MlpImpl(const DecoderConfig& c, const LoraConfig& lora) : gelu_(c.is_gemma()) {
  gate_proj = register_module("gate_proj", linear(c.hidden, c.intermediate));
  up_proj = register_module("up_proj", linear(c.hidden, c.intermediate));
  down_proj = register_module("down_proj", linear(c.intermediate, c.hidden));
  gate_up = LoraGroup(*this, lora, c.hidden, {{"gate", c.intermediate}, {"up", c.intermediate}}, "gate_up_lora");
  if (lora.enabled() && lora.targets.count("down"))
    down_lora = register_module("down_lora", LoraAdapter(c.intermediate, c.hidden, lora));
}

at::Tensor MlpImpl::forward(const at::Tensor& x) {
  at::Tensor gate = gate_proj(x), up = up_proj(x);
  if (!merged_) gate_up.add_updates(x, {&gate, &up});
  at::Tensor h = (gelu_ ? torch::gelu(gate, "tanh") : torch::silu(gate)) * up;
  at::Tensor y = down_proj(h);
  if (down_lora && !merged_) y = y + down_lora(h);
  return y;
}

void MlpImpl::merge_lora(bool merge) {
  if (merged_ == merge) return;
  const double sign = merge ? 1.0 : -1.0;
  gate_up.apply_to_weights({&gate_proj, &up_proj}, sign);
  if (down_lora) add_delta_rows(down_proj, down_lora->delta_weight(), 0, sign);
  merged_ = merge;
}

// ---- layers and the model ----------------------------------------------------------------------------

DecoderLayerImpl::DecoderLayerImpl(const DecoderConfig& c, const LoraConfig& lora) {
  input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden, c.rms_eps, c.is_gemma()));
  self_attn = register_module("self_attn", Attention(c, lora));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(c.hidden, c.rms_eps, c.is_gemma()));
  mlp = register_module("mlp", Mlp(c, lora));
}

at::Tensor DecoderLayerImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                     const at::Tensor& allowed, at::Tensor* cache_k, at::Tensor* cache_v) {
  at::Tensor h = x + self_attn(input_layernorm(x), cos, sin, allowed, cache_k, cache_v);
  return h + mlp(post_attention_layernorm(h));
}

DecoderBackboneImpl::DecoderBackboneImpl(const DecoderConfig& c, const LoraConfig& lora) {
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(c.vocab, c.hidden));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.layers; ++i) layers->push_back(DecoderLayer(c, lora));
  norm = register_module("norm", RMSNorm(c.hidden, c.rms_eps, c.is_gemma()));
}

DecoderLMImpl::DecoderLMImpl(const DecoderConfig& config, const LoraConfig& lora) : config_(config), lora_(lora) {
  config_.validate();
  model = register_module("model", DecoderBackbone(config_, lora));
  if (!config_.tie_embeddings) lm_head = register_module("lm_head", linear(config_.hidden, config_.vocab));
  // HF initialisation: normal(0, 0.02) for projections and embeddings (norms keep their 0 or 1).
  torch::NoGradGuard no_grad;
  for (auto& p : named_parameters())
    if (p.value().dim() == 2 && !is_lora_parameter(p.key())) p.value().normal_(0.0, 0.02);
}

at::Tensor DecoderLMImpl::embed(const at::Tensor& ids) {
  at::Tensor e = model->embed_tokens(ids);
  if (widen_embeddings_) e = e.to(torch::kFloat);  // exact: the table held only bf16 values (store_frozen)
  if (!config_.is_gemma()) return e;
  // Gemma multiplies by √hidden *rounded to the activation dtype* (HF: torch.tensor(..., dtype=...)).
  return e * torch::scalar_tensor(std::sqrt(static_cast<double>(config_.hidden)), e.options());
}

at::Tensor DecoderLMImpl::hidden_states(const at::Tensor& embeds, const at::Tensor& positions,
                                        const at::Tensor& key_valid, KVCache* cache) {
  const int64_t B = embeds.size(0), T = embeds.size(1);
  const int64_t past = cache ? cache->length() : 0, S = past + T;
  // allowed[b, 0, i, j]: query i (sequence index past+i) may see key j ≤ past+i that is not padding.
  const auto bool_opts = torch::TensorOptions().dtype(torch::kBool).device(embeds.device());
  at::Tensor causal = torch::ones({T, S}, bool_opts).tril(past);
  at::Tensor allowed = causal.view({1, 1, T, S});
  if (key_valid.defined()) allowed = allowed.logical_and(key_valid.to(torch::kBool).view({B, 1, 1, S}));
  auto [cos, sin] = rope(positions, config_.head_dim, config_.rope_theta, embeds.scalar_type());

  at::Tensor h = embeds;
  for (int64_t i = 0; i < config_.layers; ++i) {
    at::Tensor* ck = cache ? &cache->k[i] : nullptr;
    at::Tensor* cv = cache ? &cache->v[i] : nullptr;
    auto* layer = model->layers[i]->as<DecoderLayer>();
    // An input that needs no gradient (layer 0 under frozen embeddings) would hide the layer's LoRA
    // parameters from a checkpointed backward: run such a layer normally.
    const bool checkpoint =
        checkpointing_ && is_training() && cache == nullptr && h.requires_grad() && torch::GradMode::is_enabled();
    h = checkpoint ? CheckpointedLayer::apply(h, cos, sin, allowed, layer)
                   : layer->forward(h, cos, sin, allowed, ck, cv);
  }
  return model->norm(h);
}

at::Tensor DecoderLMImpl::logits(const at::Tensor& hidden) {
  return lm_head ? lm_head(hidden) : torch::matmul(hidden, model->embed_tokens->weight.t());
}

at::Tensor DecoderLMImpl::forward(const at::Tensor& ids) {
  at::Tensor positions =
      torch::arange(ids.size(1), ids.options().dtype(torch::kLong)).expand({ids.size(0), ids.size(1)});
  return logits(hidden_states(embed(ids), positions, at::Tensor()));
}

DecoderLMImpl::FrozenStorage DecoderLMImpl::store_frozen(at::ScalarType dtype) {
  torch::NoGradGuard no_grad;
  FrozenStorage out;
  const at::Tensor embedding = model->embed_tokens->weight;
  for (auto& p : named_parameters()) {
    at::Tensor t = p.value();
    if (t.requires_grad()) continue;
    const int64_t before = t.numel() * static_cast<int64_t>(t.element_size());
    out.bytes_before += before;
    const bool is_embedding = t.is_same(embedding);
    // Projections (2-D, not the embedding) always; the embedding only when the cast loses nothing.
    bool convert = t.dim() >= 2 && t.scalar_type() == torch::kFloat && dtype != torch::kFloat;
    if (convert && is_embedding) convert = at::equal(t.to(dtype).to(torch::kFloat), t);
    if (convert) {
      t.set_data(t.to(dtype));
      ++out.converted;
      if (is_embedding) out.embedding = widen_embeddings_ = true;
    }
    out.bytes_after += t.numel() * static_cast<int64_t>(t.element_size());
  }
  return out;
}

void DecoderLMImpl::freeze_base() {
  for (auto& p : named_parameters()) p.value().set_requires_grad(is_lora_parameter(p.key()));
}

void DecoderLMImpl::merge_lora() {
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* a = m->as<Attention>()) a->merge_lora(true);
    if (auto* f = m->as<Mlp>()) f->merge_lora(true);
  }
  merged_ = true;
}

void DecoderLMImpl::unmerge_lora() {
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* a = m->as<Attention>()) a->merge_lora(false);
    if (auto* f = m->as<Mlp>()) f->merge_lora(false);
  }
  merged_ = false;
}

// ---- Hugging Face folders ----------------------------------------------------------------------------

DecoderLM load_hf_decoder(const std::string& dir, const LoraConfig& lora, at::ScalarType dtype) {
  namespace fs = std::filesystem;
  DecoderConfig config = read_hf_decoder_config((fs::path(dir) / "config.json").string());
  SafetensorsCheckpoint ckpt = SafetensorsCheckpoint::open(dir);
  const std::string embed_name = "model.embed_tokens.weight";
  if (!ckpt.contains(embed_name)) throw std::runtime_error(dir + ": no tensor '" + embed_name + "'");
  // transformers refuses this too ("size mismatch for model.embed_tokens.weight"): a config that does not
  // describe its weights is a wrong folder or a half-edited one, never to be loaded silently.
  const int64_t rows = ckpt.entry(embed_name).shape.at(0);
  if (rows != config.vocab)
    throw std::runtime_error(dir + ": config.json says vocab_size " + std::to_string(config.vocab) + ", but " +
                             embed_name + " has " + std::to_string(rows) +
                             " rows; the config does not describe these weights (transformers refuses them too)");

  DecoderLM lm(config, lora);
  lm->to(dtype);
  TensorLoad load(dir + ": the weights do not fit a " + config.family + " model of this config.json.");
  load.name_sizes({{"hidden_size", config.hidden},
                   {"intermediate_size", config.intermediate},
                   {"head_dim", config.head_dim},
                   {"num_attention_heads × head_dim", config.heads * config.head_dim},
                   {"num_key_value_heads × head_dim", config.kv_heads * config.head_dim}});
  for (auto& p : lm->named_parameters())
    if (!is_lora_parameter(p.key()))
      load.copy(p.key(), p.value(), ckpt.contains(p.key()) ? ckpt.tensor(p.key()) : at::Tensor());
  load.check_unexpected(ckpt.names(), [&](const std::string& name) {
    const bool tied_head = name == "lm_head.weight" && config.tie_embeddings;  // transformers ignores it too
    const std::string rope_suffix = ".rotary_emb.inv_freq";  // old Llama checkpoints carry these buffers
    return tied_head || (name.size() > rope_suffix.size() &&
                         name.compare(name.size() - rope_suffix.size(), rope_suffix.size(), rope_suffix) == 0);
  });
  load.finish();
  return lm;
}

void save_hf_decoder(DecoderLM& model, const std::string& dir, bool merge_lora) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  const bool was_merged = model->lora_merged();
  if (merge_lora && !was_merged) model->merge_lora();
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (auto& p : model->named_parameters())
    if (!is_lora_parameter(p.key())) tensors.emplace_back(p.key(), p.value().detach());
  write_safetensors((fs::path(dir) / "model.safetensors").string(), tensors, {{"format", "pt"}});
  if (merge_lora && !was_merged) model->unmerge_lora();

  const DecoderConfig& c = model->config();
  nlohmann::ordered_json j;
  j["model_type"] = c.family;
  j["architectures"] = {c.is_gemma() ? "GemmaForCausalLM" : "LlamaForCausalLM"};
  j["vocab_size"] = c.vocab;
  j["hidden_size"] = c.hidden;
  j["intermediate_size"] = c.intermediate;
  j["num_hidden_layers"] = c.layers;
  j["num_attention_heads"] = c.heads;
  j["num_key_value_heads"] = c.kv_heads;
  j["head_dim"] = c.head_dim;
  j["rms_norm_eps"] = c.rms_eps;
  j["rope_theta"] = c.rope_theta;
  j["tie_word_embeddings"] = c.tie_embeddings;
  j["max_position_embeddings"] = c.max_positions;
  j[c.is_gemma() ? "hidden_activation" : "hidden_act"] = c.is_gemma() ? "gelu_pytorch_tanh" : "silu";
  j["torch_dtype"] = "float32";
  std::ofstream((fs::path(dir) / "config.json").string()) << j.dump(2) << "\n";
}

}  // namespace vtb::model
