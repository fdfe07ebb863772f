#include "model/decoder_config.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace vtb::model {

void DecoderConfig::validate() const {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("decoder config: " + what);
  };
  need(family == "gemma" || family == "llama", "family must be gemma or llama, got '" + family + "'");
  need(vocab > 0 && hidden > 0 && intermediate > 0 && layers > 0 && heads > 0 && kv_heads > 0 && head_dim > 0,
       "all sizes must be positive");
  need(heads % kv_heads == 0,
       "heads (" + std::to_string(heads) + ") must be a multiple of kv_heads (" + std::to_string(kv_heads) + ")");
  need(head_dim % 2 == 0, "head_dim must be even for rotary embeddings");
}

int64_t DecoderConfig::parameter_count() const {
  const int64_t attention = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2;
  const int64_t mlp = 3 * hidden * intermediate;
  const int64_t layer = attention + mlp + 2 * hidden;
  return vocab * hidden * (tie_embeddings ? 1 : 2) + layers * layer + hidden;
}

DecoderConfig read_hf_decoder_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": not valid JSON: " + e.what());
  }
  auto get = [&](const char* key) -> const nlohmann::json& {
    if (!j.contains(key) || j[key].is_null()) throw std::runtime_error(path + ": missing \"" + std::string(key) + "\"");
    return j[key];
  };
  DecoderConfig c;
  c.family = get("model_type").get<std::string>();
  if (c.family != "gemma" && c.family != "llama")
    throw std::runtime_error(path + ": model_type '" + c.family + "' is not supported (gemma, llama)");
  c.vocab = get("vocab_size").get<int64_t>();
  c.hidden = get("hidden_size").get<int64_t>();
  c.intermediate = get("intermediate_size").get<int64_t>();
  c.layers = get("num_hidden_layers").get<int64_t>();
  c.heads = get("num_attention_heads").get<int64_t>();
  c.kv_heads =
      j.value("num_key_value_heads", nlohmann::json()).is_null() ? c.heads : j["num_key_value_heads"].get<int64_t>();
  c.head_dim = j.value("head_dim", nlohmann::json()).is_null() ? c.hidden / c.heads : j["head_dim"].get<int64_t>();
  c.rms_eps = j.value("rms_norm_eps", 1e-6);
  c.rope_theta = j.value("rope_theta", 10000.0);
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null())
    throw std::runtime_error(path + ": rope_scaling is not supported yet");
  c.tie_embeddings = j.value("tie_word_embeddings", c.family == "gemma");
  if (c.family == "llama") {
    const std::string act = j.value("hidden_act", std::string("silu"));
    if (act != "silu") throw std::runtime_error(path + ": llama with hidden_act '" + act + "' is not supported (silu)");
  }
  c.validate();
  return c;
}

}  // namespace vtb::model
