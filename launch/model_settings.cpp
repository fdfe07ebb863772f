#include "launch/model_settings.h"

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <vector>

#include "model/safetensors.h"

namespace vtb {
namespace {

model::ConformerShape conformer(const Config& c, const std::string& section) {
  model::ConformerShape s;
  s.d_model = c.integer(section + ".d_model");
  s.layers = c.integer(section + ".layers");
  s.heads = c.integer(section + ".heads");
  s.ff_dim = c.integer(section + ".ff_dim");
  s.conv_kernel = c.integer(section + ".conv_kernel");
  s.dropout = c.real(section + ".dropout");
  s.xscaling = c.flag(section + ".xscaling");
  return s;
}

// The LLM shape the llm.* keys state.
model::DecoderConfig stated_llm(const Config& c) {
  model::DecoderConfig d;
  d.family = c.str("llm.family");
  d.vocab = c.integer("llm.vocab");
  d.hidden = c.integer("llm.hidden");
  d.intermediate = c.integer("llm.intermediate");
  d.layers = c.integer("llm.layers");
  d.heads = c.integer("llm.heads");
  d.kv_heads = c.integer("llm.kv_heads");
  d.head_dim = c.integer("llm.head_dim");
  d.rms_eps = c.real("llm.rms_eps");
  d.rope_theta = c.real("llm.rope_theta");
  d.tie_embeddings = c.flag("llm.tie_embeddings");
  return d;
}

// A shape the model code refuses is a config error (exit 2), named by the model's own message.
template <class Shape>
void validate(const Shape& shape) {
  try {
    shape.validate();
  } catch (const std::invalid_argument& e) {
    throw ConfigError(e.what());
  }
}

model::DecoderConfig stand_in_llm(const Config& c) {
  const model::DecoderConfig d = stated_llm(c);
  validate(d);
  return d;
}

model::DecoderConfig pretrained_llm(const std::string& dir) {
  namespace fs = std::filesystem;
  model::DecoderConfig d = model::read_hf_decoder_config((fs::path(dir) / "config.json").string());
  d.vocab = model::SafetensorsCheckpoint::open(dir).entry("model.embed_tokens.weight").shape.at(0);
  return d;
}

// With model.llm set the LLM's shape is its config.json's; an llm.* key set to something else would be
// silently ignored (and recorded in checkpoints as if it held).
void refuse_contradicting_llm_keys(const Config& c, const model::DecoderConfig& loaded, const std::string& dir) {
  const model::DecoderConfig stated = stated_llm(c);
  const std::vector<std::pair<const char*, bool>> same = {
      {"llm.family", stated.family == loaded.family},
      {"llm.vocab", stated.vocab == loaded.vocab},
      {"llm.hidden", stated.hidden == loaded.hidden},
      {"llm.intermediate", stated.intermediate == loaded.intermediate},
      {"llm.layers", stated.layers == loaded.layers},
      {"llm.heads", stated.heads == loaded.heads},
      {"llm.kv_heads", stated.kv_heads == loaded.kv_heads},
      {"llm.head_dim", stated.head_dim == loaded.head_dim},
      {"llm.rms_eps", stated.rms_eps == loaded.rms_eps},
      {"llm.rope_theta", stated.rope_theta == loaded.rope_theta},
      {"llm.tie_embeddings", stated.tie_embeddings == loaded.tie_embeddings}};
  std::string wrong;
  for (const auto& [key, equal] : same)
    if (c.is_set(key) && !equal) wrong += (wrong.empty() ? "" : ", ") + std::string(key);
  if (!wrong.empty())
    throw ConfigError(wrong + (wrong.find(',') == std::string::npos ? " is" : " are") + " set, but model.llm = " + dir +
                      " has another value: its config.json and tensors give the LLM's shape. Remove the key or "
                      "point model.llm at the LLM you mean");
}

}  // namespace

model::SpeechLMConfig read_model_settings(const Config& c) {
  model::SpeechLMConfig m;
  m.encoder.n_mels = c.integer("encoder.n_mels");
  m.encoder.subsampling_factor = c.integer("encoder.subsampling_factor");
  m.encoder.subsampling_channels = c.integer("encoder.subsampling_channels");
  m.encoder.conformer = conformer(c, "encoder");
  validate(m.encoder);

  const std::string llm_dir = c.str("model.llm");
  m.llm = llm_dir.empty() ? stand_in_llm(c) : pretrained_llm(llm_dir);
  if (!llm_dir.empty()) refuse_contradicting_llm_keys(c, m.llm, llm_dir);

  m.adapter.input_dim = m.encoder.conformer.d_model;
  m.adapter.output_dim = m.llm.hidden;
  m.adapter.conformer = conformer(c, "adapter");

  m.lora.rank = c.integer("lora.rank");
  m.lora.alpha = c.real("lora.alpha");
  m.lora.dropout = c.real("lora.dropout");
  m.lora.layout = c.choice<model::LoraLayout>("lora.layout", model::kLoraLayouts);
  m.lora.targets.clear();
  std::stringstream targets(c.str("lora.targets"));
  for (std::string t; std::getline(targets, t, ',');) {
    if (std::find(model::kLoraTargets.begin(), model::kLoraTargets.end(), t) == model::kLoraTargets.end())
      throw ConfigError("lora.targets: unknown projection '" + t + "' (q, k, v, o, gate, up, down)");
    m.lora.targets.insert(t);
  }
  return m;
}

model::SpeechLMSettings read_speech_lm_settings(const Config& c) {
  model::SpeechLMSettings s;
  s.config = read_model_settings(c);
  s.llm_dir = c.str("model.llm");
  s.encoder_init = c.str("model.encoder");
  s.frozen_dtype = c.choice<model::FrozenDtype>("model.frozen_dtype", model::kFrozenDtypes);
  return s;
}

}  // namespace vtb
