// `vtb ckpt export`: a trained checkpoint in the formats other tools load.
//   adapter/adapter_model.safetensors + adapter_config.json   the LoRA as a Hugging Face PEFT adapter
//   speech.safetensors                                        encoder, modality adapter, projection (NeMo names)
//   merged/ (optional)                                        the LLM with LoRA merged, Hugging Face layout
#pragma once

#include <map>
#include <set>
#include <string>

#include "model/speech_lm.h"

namespace vtb::train {

// PEFT tensor name → tensor for `lm`'s LoRA. A fused adapter becomes one PEFT adapter per projection:
// the shared A, and that projection's rows of B (Note [LoRA layouts]).
std::map<std::string, at::Tensor> peft_adapter_tensors(model::SpeechLM& lm);

void export_checkpoint(model::SpeechLM& lm, const std::string& out_dir, const std::string& base_model, bool merged);

}  // namespace vtb::train
