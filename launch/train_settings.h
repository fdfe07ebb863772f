// Training settings from the configuration: each component's struct filled from its keys ([train], [run],
// [ckpt], [dist], the model's and the data's).
#pragma once

#include "launch/config.h"
#include "train/trainer.h"

namespace vtb {

train::TrainSettings read_train_settings(const Config& config);

}  // namespace vtb
