// The model's shape from the configuration ([model], [llm], [encoder], [adapter], [lora] keys).
#pragma once

#include "launch/config.h"
#include "model/speech_lm.h"
#include "model/speech_lm_settings.h"

namespace vtb {

// When model.llm names a Hugging Face folder, the LLM's shape comes from its config.json (and the
// embedding rows from its safetensors header), never from [llm]. Reads no weights.
// audio_token_id is left at -1: the tokenizer decides it.
model::SpeechLMConfig read_model_settings(const Config& config);

// The model's shape and where its weights come from (model.llm, model.encoder).
model::SpeechLMSettings read_speech_lm_settings(const Config& config);

}  // namespace vtb
