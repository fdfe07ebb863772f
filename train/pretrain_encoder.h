// `vtb encoder pretrain`: trains the FastConformer speech encoder alone with a CTC head on the ASR sources
// and saves its weights (NeMo names, "encoder.*") as safetensors. It makes the stand-in for the pretrained
// ASR encoder the paper starts from (Canary-1B's); joint SFT loads it with model.encoder=FILE and then
// trains it fully, as the paper does.
#pragma once

#include <string>

#include "train/pretrain_lm.h"
#include "train/trainer.h"

namespace vtb::train {

struct EncoderPretrainSettings {
  TrainSettings train;  // encoder shape, features, tokenizer, sources (only kind asr is used), batches, AdamW
  std::string out_file;
  PretrainSchedule schedule;  // its clip is train.clip's
};

// Collective. CTC over the tokenizer's pieces of each transcript (blank = one extra class).
PretrainReport pretrain_encoder_ctc(dist::Communicator& comm, const EncoderPretrainSettings& settings);

}  // namespace vtb::train
