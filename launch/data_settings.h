// Data settings from the configuration ([data], [features] and train.seed, which seeds the loader).
#pragma once

#include "data/data_settings.h"
#include "data/features.h"
#include "launch/config.h"
#include "model/speech_lm.h"

namespace vtb {

data::FeatureConfig read_feature_settings(const Config& config);

// For the model `model` (features.n_mels must equal its encoder.n_mels; its subsampling sets the
// sequence cost of audio).
data::DataSettings read_data_settings(const Config& config, const model::SpeechLMConfig& model);

}  // namespace vtb
