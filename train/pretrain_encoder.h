// `vtb encoder pretrain`: trains the FastConformer speech encoder alone with a CTC head on the ASR sources
// and saves its weights (NeMo names, "encoder.*") as safetensors. It makes the stand-in for the pretrained
// ASR encoder the paper starts from (Canary-1B's); joint SFT loads it with model.encoder=FILE and then
// trains it fully, as the paper does.
#pragma once

#include <string>

#include "data/data_settings.h"
#include "dist/gradient_bucketer.h"
#include "model/speech_config.h"
#include "optim/adamw.h"
#include "train/pretrain_lm.h"

namespace vtb::train {

struct EncoderPretrainSettings {
  model::EncoderConfig encoder;
  data::DataSettings data;  // tokenizer, sources (only those of kind asr are used), batches, features
  dist::BucketOptions buckets;
  optim::AdamWOptions adamw;
  int64_t seed = 1234;
  std::string out_file;
  PretrainSchedule schedule;  // its clip is train.clip's
};

// Collective. CTC over the tokenizer's pieces of each transcript (blank = one extra class).
PretrainReport pretrain_encoder_ctc(dist::Communicator& comm, const EncoderPretrainSettings& settings);

}  // namespace vtb::train
