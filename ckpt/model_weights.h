// What eval, generate, chat and export read of a checkpoint: its trained weights and the config it was
// trained with. The training state around them (optimizer, generators, data order) is train/training_state.h's.
#pragma once

#include <string>

#include "ckpt/hdf5_io.h"
#include "model/speech_lm.h"

namespace vtb::ckpt {

// Loads the trainable parameters and buffers of `lm` from `state` (the checkpoint `folder`'s state.h5); the
// frozen LLM is not in a checkpoint (it comes from model.llm). Every missing, unexpected or mis-shaped tensor
// is named in one error.
void load_model_weights(const Hdf5Reader& state, const std::string& folder, model::SpeechLM& lm);
void load_model_weights(const std::string& folder, model::SpeechLM& lm);

// The resolved config text a checkpoint was trained with.
std::string stored_config(const std::string& folder);

}  // namespace vtb::ckpt
