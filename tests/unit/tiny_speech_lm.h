// The smallest speech LM the model tests build: 20 mel bins, one or two tiny Conformer layers, a 2-layer
// Gemma-family LLM of width 24 with rank-4 LoRA, <audio> = id 7.
#pragma once

#include "model/speech_lm.h"

namespace vtb::testing {

inline model::EncoderConfig tiny_encoder_config() {
  model::EncoderConfig c;
  c.n_mels = 20;
  c.subsampling_channels = 8;
  c.conformer = model::ConformerShape{32, 2, 4, 64, 5, 0.1, true};
  return c;
}

inline model::SpeechLMConfig tiny_speech_lm_config() {
  model::SpeechLMConfig c;
  c.encoder = tiny_encoder_config();
  c.adapter = model::AdapterConfig{32, 24, model::ConformerShape{32, 1, 4, 64, 5, 0.0, true}};
  c.llm.family = "gemma";
  c.llm.vocab = 40;
  c.llm.hidden = 24;
  c.llm.intermediate = 48;
  c.llm.layers = 2;
  c.llm.heads = 2;
  c.llm.kv_heads = 1;
  c.llm.head_dim = 12;
  c.lora.rank = 4;
  c.lora.alpha = 8;
  c.audio_token_id = 7;
  return c;
}

}  // namespace vtb::testing
