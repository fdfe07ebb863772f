// A trained checkpoint rebuilt for use (export, eval, generate): the model comes from the config stored in
// the checkpoint, with keys given on the command line overriding it (e.g. model.llm when the base moved).
#pragma once

#include <string>
#include <vector>

#include "data/data_settings.h"
#include "data/tokenizer.h"
#include "launch/config.h"
#include "model/speech_lm.h"
#include "model/speech_lm_settings.h"

namespace vtb {

// A checkpoint folder as given, or a run folder's latest.
std::string resolve_checkpoint(const std::string& path);

// The config stored in `folder`'s checkpoint with `overrides` applied; ConfigError when an override
// changes a model-defining key (check_against_checkpoint).
Config checkpoint_config(const std::string& folder, const std::vector<std::string>& overrides);

// Refuses `current` for the checkpoint in `folder` (trained with `stored`) when a model-defining key
// differs (model_defining in config.h): ConfigError listing "key: old → new" for each. The llm.* keys are
// not compared when both name a pretrained LLM (model.llm): its shape is its config.json's, and the
// checkpoint's frozen-LLM hash is checked on load. Changed run-defining keys are logged once, on rank 0.
void check_against_checkpoint(const std::string& folder, const Config& stored, const Config& current);

struct TrainedModel {
  model::SpeechLMSettings model;
  data::DataSettings data;  // the tokenizer, the features and data.on_error the model is used with
  data::Tokenizer tokenizer;
  model::SpeechLM lm{nullptr};
};

// Builds the model of `config`, loads the checkpoint's trained weights (none when `folder` is empty: the
// untrained model, as training starts), switches to evaluation mode.
TrainedModel load_trained_model(const Config& config, const std::string& folder);

}  // namespace vtb
