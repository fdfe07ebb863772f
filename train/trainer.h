// `vtb train`: single-stage joint speech–text SFT (docs/design.md §5–§6). The loop reads like the method: draw a
// batch from the mix → forward → loss on answers → backward with overlapped allreduce → clip → AdamW
// step → maybe checkpoint. Each component's settings live beside it; TrainSettings gathers them, and
// launch/ (train_settings.cpp) fills them from the config.
#pragma once

#include <cstdint>
#include <string>

#include "data/data_settings.h"
#include "dist/communicator.h"
#include "dist/gradient_bucketer.h"
#include "model/speech_lm_settings.h"
#include "optim/adamw.h"
#include "train/checkpointer.h"
#include "train/metrics_log.h"
#include "train/precision.h"

namespace vtb::train {

// train.*: how long and how fast. Every default here is also the config key's default.
struct ScheduleSettings {
  int64_t max_steps = 100000;
  int64_t micro_batches = 1;
  int64_t warmup_steps = 2500;
  int64_t max_bad_steps = 10;  // non-finite steps in a row before the run stops
  double lr = 1e-4, lr_min = 1e-6, clip = 1.0;
  optim::AdamWOptions adamw;
};

// A training run's settings, one struct per component (launch/config_keys.cpp reads every default from them).
struct TrainSettings {
  std::string run_dir = "runs/default";
  int64_t seed = 1234;  // train.seed: the initial weights, the stand-in LLM, the data order
  ScheduleSettings schedule;
  Precision precision = Precision::Fp32;  // run.precision (train/precision.h; Note [Choosing the precision])
  // train.fixed_batch: a safetensors batch trained on at every step instead of the data mix
  // (train/fixed_batch.h, Note [Fixed batch]).
  std::string fixed_batch;
  model::SpeechLMSettings model;
  data::DataSettings data;
  dist::DataParallelSettings parallel;
  CheckpointSettings ckpt;
  MetricsSettings metrics;
};

// What a run is handed besides its settings: live objects and what the caller already resolved.
struct RunContext {
  std::string config_text;  // the resolved config, stored in every checkpoint
  std::string resume_from;  // the committed checkpoint to resume (the run folder's `latest`), "" = none
  // A second communicator: checkpoints are then written in the background through it (Note [Background
  // checkpoints]); null = synchronously.
  dist::Communicator* checkpoint_comm = nullptr;
};

// Trains until max_steps (then commits a final checkpoint and returns kExitOk) or until SIGTERM/SIGUSR1
// (every rank agrees at the next step boundary, a checkpoint is committed, returns kExitRequeue).
int run_training(dist::Communicator& comm, const TrainSettings& settings, const RunContext& context);

}  // namespace vtb::train
