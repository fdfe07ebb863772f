#include "launch/model_settings.h"

#include <algorithm>
#include <filesystem>
#include <sstream>

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

model::DecoderConfig stand_in_llm(const Config& c) {
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
  d.validate();
  return d;
}

model::DecoderConfig pretrained_llm(const std::string& dir) {
  namespace fs = std::filesystem;
  model::DecoderConfig d = model::read_hf_decoder_config((fs::path(dir) / "config.json").string());
  d.vocab = model::SafetensorsCheckpoint::open(dir).entry("model.embed_tokens.weight").shape.at(0);
  return d;
}

}  // namespace

model::SpeechLMConfig read_model_settings(const Config& c) {
  model::SpeechLMConfig m;
  m.encoder.n_mels = c.integer("encoder.n_mels");
  m.encoder.subsampling_factor = c.integer("encoder.subsampling_factor");
  m.encoder.subsampling_channels = c.integer("encoder.subsampling_channels");
  m.encoder.conformer = conformer(c, "encoder");
  m.encoder.validate();

  const std::string llm_dir = c.str("model.llm");
  m.llm = llm_dir.empty() ? stand_in_llm(c) : pretrained_llm(llm_dir);

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

}  // namespace vtb
