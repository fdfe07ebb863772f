#include "model/speech_lm.h"

#include <torch/torch.h>

#include <stdexcept>
#include <unordered_map>

#include "model/safetensors.h"
#include "model/tensor_loading.h"

namespace vtb::model {

SpeechLMImpl::SpeechLMImpl(const SpeechLMConfig& c) : SpeechLMImpl(c, DecoderLM(c.llm, c.lora)) {}

SpeechLMImpl::SpeechLMImpl(const SpeechLMConfig& c, DecoderLM lm) : config_(c) {
  if (config_.adapter.input_dim != config_.encoder.conformer.d_model ||
      config_.adapter.output_dim != lm->config().hidden)
    throw std::invalid_argument("speech LM: adapter input_dim must equal encoder d_model (" +
                                std::to_string(config_.encoder.conformer.d_model) + ") and output_dim the LLM width (" +
                                std::to_string(lm->config().hidden) + ")");
  if (config_.audio_token_id < 0 || config_.audio_token_id >= lm->config().vocab)
    throw std::invalid_argument("speech LM: audio_token_id " + std::to_string(config_.audio_token_id) +
                                " is not in the vocabulary");
  build_speech_modules();
  llm = register_module("llm", std::move(lm));
}

void SpeechLMImpl::build_speech_modules() {
  encoder = register_module("encoder", SpeechEncoder(config_.encoder));
  modality_adapter = register_module("modality_adapter", ModalityAdapter(config_.adapter));
  proj = register_module("proj", torch::nn::Linear(config_.adapter.conformer.d_model, config_.adapter.output_dim));
}

void SpeechLMImpl::freeze_llm_base() { llm->freeze_base(); }

namespace {

// A host tensor's values to the model's device without waiting for it (Note [One read per step]).
at::Tensor to_device(const at::Tensor& host, const c10::Device& device) {
  return host.to(device, /*non_blocking=*/true);
}

}  // namespace

std::vector<at::Tensor> SpeechLMImpl::audio_embeddings(const at::Tensor& features, const at::Tensor& lengths) {
  auto [frames, frame_lengths] = encoder(features, to_device(lengths, features.device()));
  at::Tensor adapted = proj(modality_adapter(frames, frame_lengths));
  // Each segment's frame count from its feature count on the host: the device's frame_lengths hold the same.
  const at::Tensor lengths_cpu = lengths.to(torch::kCPU, torch::kLong).contiguous();
  const auto n = lengths_cpu.accessor<int64_t, 1>();
  std::vector<at::Tensor> out;
  for (int64_t i = 0; i < adapted.size(0); ++i)
    out.push_back(adapted[i].narrow(0, 0, config_.encoder.output_frames(n[i])));
  return out;
}

SplicedInput SpeechLMImpl::splice(const SpeechBatch& batch) {
  const int64_t B = batch.ids.size(0);
  const c10::Device device = proj->weight.device();
  // The token layout is read on the host: free when the batch's token tensors are CPU tensors, as training
  // passes them (Note [One read per step]); a copy back from the device otherwise.
  const at::Tensor ids_cpu = batch.ids.to(torch::kCPU).contiguous();
  const at::Tensor mask_cpu = batch.loss_mask.to(torch::kCPU, torch::kBool).contiguous();
  const at::Tensor lengths_cpu = batch.lengths.to(torch::kCPU, torch::kLong).contiguous();
  const auto ids = ids_cpu.accessor<int64_t, 2>();
  const auto mask = mask_cpu.accessor<bool, 2>();
  const auto lengths = lengths_cpu.accessor<int64_t, 1>();
  int64_t n_audio = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < lengths[b]; ++t) n_audio += ids[b][t] == config_.audio_token_id;
  const int64_t n_segments = batch.features.defined() ? batch.features.size(0) : 0;
  if (n_audio != n_segments)
    throw std::invalid_argument("speech LM: the batch has " + std::to_string(n_audio) + " <audio> placeholders but " +
                                std::to_string(n_segments) + " audio segments");
  std::vector<at::Tensor> audio;
  if (n_segments > 0) audio = audio_embeddings(to_device(batch.features, device), batch.feature_lengths);

  // Text embeddings are scaled as the LLM defines; adapter frames enter unscaled (docs/design.md §3).
  at::Tensor text = llm->embed(to_device(batch.ids, device));
  std::vector<at::Tensor> rows(B);
  std::vector<std::vector<int64_t>> targets(B);
  size_t next_segment = 0;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t len = lengths[b];
    std::vector<at::Tensor> pieces;
    std::vector<int64_t> tokens;  // per spliced position: the token there if it is an answer token, else -100
    int64_t start = 0;
    auto flush_text = [&](int64_t end) {
      if (end <= start) return;
      pieces.push_back(text[b].narrow(0, start, end - start));
      for (int64_t t = start; t < end; ++t) tokens.push_back(mask[b][t] ? ids[b][t] : -100);
    };
    for (int64_t t = 0; t < len; ++t) {
      if (ids[b][t] != config_.audio_token_id) continue;
      flush_text(t);
      const at::Tensor& frames = audio[next_segment++];
      pieces.push_back(frames.to(text.scalar_type()));
      tokens.insert(tokens.end(), static_cast<size_t>(frames.size(0)), -100);
      start = t + 1;
    }
    flush_text(len);
    rows[b] = torch::cat(pieces, 0);
    // Position s predicts what stands at s+1.
    targets[b].assign(tokens.begin() + (tokens.empty() ? 0 : 1), tokens.end());
    targets[b].push_back(-100);
  }

  int64_t S = 0;
  for (const auto& r : rows) S = std::max(S, r.size(0));
  SplicedInput out;
  out.embeds = torch::zeros({B, S, text.size(2)}, text.options());
  out.valid = torch::zeros({B, S}, torch::kBool);
  out.host_targets = torch::full({B, S}, -100, torch::kLong);
  out.lengths = torch::zeros({B}, torch::kLong);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = rows[b].size(0);
    out.embeds[b].narrow(0, 0, n).copy_(rows[b]);
    out.valid[b].narrow(0, 0, n).fill_(true);
    out.host_targets[b].narrow(0, 0, n).copy_(torch::tensor(targets[b], torch::kLong));
    out.lengths[b] = n;
  }
  out.positions = to_device(torch::arange(S, torch::kLong).expand({B, S}).contiguous(), device);
  out.valid = to_device(out.valid, device);
  out.targets = to_device(out.host_targets, device);
  return out;
}

LossOutput SpeechLMImpl::loss(const SpeechBatch& batch) {
  SplicedInput in = splice(batch);
  at::Tensor hidden = llm->hidden_states(in.embeds, in.positions, in.valid);
  // Logits only where there is a target: the vocabulary projection is the largest activation. The answer
  // positions come from the host copy of the targets; a boolean mask on the device would read back its count.
  const int64_t B = in.host_targets.size(0), S = in.host_targets.size(1);
  const auto targets = in.host_targets.accessor<int64_t, 2>();
  const auto lengths = in.lengths.accessor<int64_t, 1>();
  std::vector<int64_t> where, answers, example_of, per_example(static_cast<size_t>(B), 0);
  LossOutput out;
  for (int64_t b = 0; b < B; ++b) {
    out.positions += lengths[b];
    for (int64_t s = 0; s < S; ++s) {
      if (targets[b][s] == -100) continue;
      where.push_back(b * S + s);
      answers.push_back(targets[b][s]);
      example_of.push_back(b);
      ++per_example[static_cast<size_t>(b)];
    }
  }
  out.tokens = static_cast<int64_t>(where.size());
  // Every placeholder token became its segment's frames.
  const int64_t segments = batch.features.defined() ? batch.features.size(0) : 0;
  const at::Tensor tokens_cpu = batch.lengths.to(torch::kCPU, torch::kLong).contiguous();
  const auto tokens_per_example = tokens_cpu.accessor<int64_t, 1>();
  out.frames = out.positions + segments;
  for (int64_t b = 0; b < B; ++b) out.frames -= tokens_per_example[b];
  out.example_tokens = torch::tensor(per_example, torch::kLong);
  const c10::Device device = hidden.device();
  if (out.tokens == 0) {
    out.loss_sum = hidden.sum() * 0.0;  // keeps the graph (and every rank's collectives) alive
    out.loss = out.loss_sum;
    out.example_loss_sum = torch::zeros({B}, hidden.options().dtype(torch::kFloat));
    return out;
  }
  const at::Tensor rows =
      hidden.reshape({B * S, hidden.size(2)}).index_select(0, to_device(torch::tensor(where), device));
  at::Tensor logits = llm->logits(rows).to(torch::kFloat);
  at::Tensor per_token =
      torch::nn::functional::cross_entropy(logits, to_device(torch::tensor(answers), device),
                                           torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
  out.loss_sum = per_token.sum();
  out.loss = out.loss_sum / static_cast<double>(out.tokens);
  // Per example, for per-source logging: index_add_ adds in token order on CPU; on CUDA it is deterministic only
  // under deterministic algorithms, which the loss and the gradient do not depend on.
  out.example_loss_sum = torch::zeros({B}, per_token.options())
                             .index_add_(0, to_device(torch::tensor(example_of), device), per_token.detach());
  return out;
}

std::vector<std::pair<std::string, int64_t>> size_settings(const SpeechLMConfig& c) {
  const auto& e = c.encoder.conformer;
  const auto& a = c.adapter.conformer;
  return {{"encoder.n_mels", c.encoder.n_mels},
          {"encoder.subsampling_channels", c.encoder.subsampling_channels},
          {"encoder.d_model", e.d_model},
          {"encoder.ff_dim", e.ff_dim},
          {"encoder.conv_kernel", e.conv_kernel},
          {"adapter.d_model", a.d_model},
          {"adapter.ff_dim", a.ff_dim},
          {"adapter.conv_kernel", a.conv_kernel},
          {"llm.hidden", c.llm.hidden},
          {"llm.intermediate", c.llm.intermediate},
          {"llm.vocab", c.llm.vocab},
          {"lora.rank", c.lora.rank}};
}

void load_encoder_tensors(SpeechEncoder& encoder, const SpeechLMConfig& config,
                          const std::vector<std::pair<std::string, at::Tensor>>& tensors, const std::string& what) {
  TensorLoad load(what);
  std::vector<std::pair<std::string, int64_t>> encoder_sizes;
  for (const auto& kv : size_settings(config))
    if (kv.first.rfind("encoder.", 0) == 0) encoder_sizes.push_back(kv);
  load.name_sizes(encoder_sizes);
  std::unordered_map<std::string, at::Tensor> by_name;
  std::vector<std::string> names;
  for (const auto& [name, tensor] : tensors) {
    by_name.emplace(name, tensor);
    names.push_back(name);
  }
  auto copy = [&](const std::string& name, const at::Tensor& target) {
    const auto it = by_name.find("encoder." + name);
    load.copy("encoder." + name, target, it != by_name.end() ? it->second : at::Tensor());
  };
  for (const auto& p : encoder->named_parameters()) copy(p.key(), p.value());
  for (const auto& b : encoder->named_buffers()) copy(b.key(), b.value());
  load.check_unexpected(names);
  load.finish();
}

void load_encoder_weights(SpeechLM& lm, const std::string& file) {
  const auto f = SafetensorsFile::open(file);
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& entry : f->header().tensors) tensors.emplace_back(entry.name, f->tensor(entry.name));
  load_encoder_tensors(lm->encoder, lm->config(), tensors,
                       "model.encoder " + file + " does not fit this config's encoder (encoder.*):");
}

}  // namespace vtb::model
