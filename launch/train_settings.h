// Training settings from the configuration ([train], [ckpt], [data], [features], [dist] and the model).
#pragma once

#include "data/features.h"
#include "launch/config.h"
#include "train/trainer.h"

namespace vtb {

train::TrainSettings read_train_settings(const Config& config);
data::FeatureConfig read_feature_settings(const Config& config);

}  // namespace vtb
