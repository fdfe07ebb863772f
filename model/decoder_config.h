// The decoder LLM's shape: Gemma-1 and Llama families, read from a Hugging Face config.json or set
// from vtb's config (a seeded stand-in LLM when no pretrained one is given).
#pragma once

#include <cstdint>
#include <string>

namespace vtb::model {

struct DecoderConfig {
  std::string family = "gemma";  // gemma | llama: the four differences of docs/design.md §2
  int64_t vocab = 256000;
  int64_t hidden = 2048;
  int64_t intermediate = 16384;
  int64_t layers = 18;
  int64_t heads = 8;
  int64_t kv_heads = 1;
  int64_t head_dim = 256;
  double rms_eps = 1e-6;
  double rope_theta = 10000;
  bool tie_embeddings = true;
  // The longest sequence the model was trained for (config.json's max_position_embeddings): decoding
  // refuses a longer prompt + answer by default. Not a shape: RoPE itself has no limit.
  int64_t max_positions = 8192;

  bool is_gemma() const { return family == "gemma"; }
  // Throws std::invalid_argument naming the field when the shape is impossible.
  void validate() const;
  int64_t parameter_count() const;  // without LoRA
};

// Reads config.json of a Hugging Face model folder. model_type must be gemma or llama. Gemma always uses
// tanh-GELU, whatever hidden_act says (as transformers does). `vocab` is taken from the file here;
// load_hf_decoder overrides it with the embedding's row count.
DecoderConfig read_hf_decoder_config(const std::string& config_json_path);

}  // namespace vtb::model
