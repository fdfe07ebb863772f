#include "model/decoder_config.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <optional>
#include <stdexcept>
#include <type_traits>

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

namespace {

// config.json's `key` as a T; `fallback` when the key is absent or null (none: the key is required). A
// value of another type is an error naming the file, the key and what it holds.
template <class T>
T field(const nlohmann::json& j, const std::string& path, const char* key, std::optional<T> fallback = std::nullopt) {
  if (!j.contains(key) || j[key].is_null()) {
    if (fallback) return *fallback;
    throw std::runtime_error(path + ": missing \"" + std::string(key) + "\"");
  }
  const nlohmann::json& v = j[key];
  const bool fits = std::is_same_v<T, std::string> ? v.is_string()
                    : std::is_same_v<T, bool>      ? v.is_boolean()
                    : std::is_integral_v<T>        ? v.is_number_integer()
                                                   : v.is_number();
  if (!fits)
    throw std::runtime_error(path + ": \"" + std::string(key) + "\" is " + v.dump() + ", expected " +
                             (std::is_same_v<T, std::string> ? "a string"
                              : std::is_same_v<T, bool>      ? "true or false"
                              : std::is_integral_v<T>        ? "an integer"
                                                             : "a number"));
  return v.get<T>();
}

// RoPE's base: "rope_theta" (transformers 4) or "rope_parameters": {"rope_type": "default", "rope_theta": …}
// (transformers 5); both present must agree. Another rope_type (scaled RoPE) is refused by name.
double rope_theta(const nlohmann::json& j, const std::string& path) {
  const bool has_theta = j.contains("rope_theta") && !j["rope_theta"].is_null();
  if (!j.contains("rope_parameters") || j["rope_parameters"].is_null())
    return field<double>(j, path, "rope_theta", 10000.0);
  const nlohmann::json& rp = j["rope_parameters"];
  const std::string where = path + " rope_parameters";
  if (!rp.is_object()) throw std::runtime_error(where + " is " + rp.dump() + ", expected an object");
  const std::string type = field<std::string>(rp, where, "rope_type", std::string("default"));
  if (type != "default") throw std::runtime_error(where + ": rope_type '" + type + "' is not supported (default)");
  const double theta =
      field<double>(rp, where, "rope_theta", has_theta ? field<double>(j, path, "rope_theta") : 10000.0);
  if (has_theta && field<double>(j, path, "rope_theta") != theta)
    throw std::runtime_error(path + ": \"rope_theta\" and rope_parameters.rope_theta differ");
  return theta;
}

}  // namespace

DecoderConfig read_hf_decoder_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw std::runtime_error(path + ": not a JSON object");
  DecoderConfig c;
  c.family = field<std::string>(j, path, "model_type");
  if (c.family != "gemma" && c.family != "llama")
    throw std::runtime_error(path + ": model_type '" + c.family + "' is not supported (gemma, llama)");
  c.vocab = field<int64_t>(j, path, "vocab_size");
  c.hidden = field<int64_t>(j, path, "hidden_size");
  c.intermediate = field<int64_t>(j, path, "intermediate_size");
  c.layers = field<int64_t>(j, path, "num_hidden_layers");
  c.heads = field<int64_t>(j, path, "num_attention_heads");
  c.kv_heads = field<int64_t>(j, path, "num_key_value_heads", c.heads);
  if (c.heads <= 0) throw std::runtime_error(path + ": num_attention_heads must be positive");
  c.head_dim = field<int64_t>(j, path, "head_dim", c.hidden / c.heads);
  c.rms_eps = field<double>(j, path, "rms_norm_eps", 1e-6);
  c.rope_theta = rope_theta(j, path);
  c.max_positions = field<int64_t>(j, path, "max_position_embeddings", c.max_positions);
  // Fields that would change the math vtb implements: refused by name, never ignored.
  for (const char* bias : {"attention_bias", "mlp_bias"})
    if (field<bool>(j, path, bias, false))
      throw std::runtime_error(path + ": \"" + std::string(bias) +
                               "\": true is not supported (no biases in vtb's LLM)");
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null())
    throw std::runtime_error(path + ": rope_scaling is not supported yet");
  c.tie_embeddings = field<bool>(j, path, "tie_word_embeddings", c.family == "gemma");
  if (c.family == "llama") {
    const std::string act = field<std::string>(j, path, "hidden_act", std::string("silu"));
    if (act != "silu") throw std::runtime_error(path + ": llama with hidden_act '" + act + "' is not supported (silu)");
  }
  try {
    c.validate();
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
  return c;
}

}  // namespace vtb::model
