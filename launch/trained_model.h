// A trained checkpoint rebuilt for use (export, eval, generate): the model comes from the config stored in
// the checkpoint, with keys given on the command line overriding it (e.g. model.llm when the base moved).
#pragma once

#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "launch/config.h"
#include "model/speech_lm.h"
#include "train/trainer.h"

namespace vtb {

// A checkpoint folder as given, or a run folder's latest.
std::string resolve_checkpoint(const std::string& path);

Config checkpoint_config(const std::string& folder, const std::vector<std::string>& overrides);

struct TrainedModel {
  train::TrainSettings settings;
  data::Tokenizer tokenizer;
  model::SpeechLM lm{nullptr};
};

// Builds the model of `config`, loads the checkpoint's trained weights (none when `folder` is empty: the
// untrained model, as training starts), switches to evaluation mode.
TrainedModel load_trained_model(const Config& config, const std::string& folder);

}  // namespace vtb
