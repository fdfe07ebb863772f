// `vtb train`: single-stage joint speech–text SFT (docs/design.md §5–§6). The loop reads like the method: draw a
// batch from the mix → forward → loss on answers → backward with overlapped allreduce → clip → AdamW
// step → maybe checkpoint. Settings come from launch/ (train_command.cpp) as plain structs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/batch_loader.h"
#include "data/manifest.h"
#include "dist/communicator.h"
#include "dist/gradient_bucketer.h"
#include "model/speech_lm.h"
#include "optim/adamw.h"
#include "train/precision.h"

namespace vtb::train {

struct SourceSettings {
  std::string name;
  data::Task task = data::Task::Asr;
  std::string manifest, prompt;
  double weight = 1;
};

// Every default here is also the config key's default (launch/config_keys.cpp reads them).
struct TrainSettings {
  std::string run_dir = "runs/default";
  std::string config_text;  // the resolved config, stored in checkpoints
  int64_t seed = 1234;
  int64_t max_steps = 100000;
  int64_t micro_batches = 1;
  int64_t warmup_steps = 2500;
  int64_t log_every = 10;
  int64_t ckpt_every = 1000;
  double ckpt_every_minutes = 0;  // 0 = off
  // Write checkpoints in a background thread (one in flight) through this second communicator, so
  // their collectives never interleave with training's; null = write synchronously.
  dist::Communicator* checkpoint_comm = nullptr;
  double peak_tflops = 0;  // per rank, for MFU in metrics.jsonl; 0 = the rate run.precision = auto measured
  Precision precision = Precision::Fp32;  // run.precision (train/precision.h; Note [Choosing the precision])
  int64_t keep_last = 3;
  int64_t max_bad_steps = 10;
  double lr = 1e-4, lr_min = 1e-6, clip = 1.0;
  optim::AdamWOptions adamw;
  model::SpeechLMConfig model = paper_model();
  std::string llm_dir;       // Hugging Face folder of the frozen LLM; "" = a stand-in from the seed
  std::string encoder_init;  // safetensors of a pretrained encoder to start from; "" = random
  std::string tokenizer = "data/synth/tokenizer.model";  // SentencePiece; the default is the quickstart's
  std::string audio_piece = "<audio>";
  std::vector<SourceSettings> sources;
  data::MixMode mix = data::MixMode::PerBatch;
  data::BatchLimits limits;
  data::LoaderOptions loader;
  double min_duration = 0.1, max_duration = 40;
  bool skip_bad_lines = false;
  // train.fixed_batch: a safetensors batch (ids, lengths, loss_mask, features, feature_lengths) trained on
  // at every step instead of the data mix, each rank taking its share of the rows (Note [Fixed batch]).
  std::string fixed_batch;
  dist::BucketOptions buckets;
  int zero = 0;  // dist.zero: 1 = AdamW state sharded over the ranks (Note [Optimizer shards]), 2 = and the
                 // averaged gradients (Note [Scattered buckets])

  // The paper's model: SpeechLMConfig's shapes (Canary-1B encoder, 2-layer adapter, Gemma-1 2B) with
  // LoRA rank 32 on every projection.
  static model::SpeechLMConfig paper_model() {
    model::SpeechLMConfig m;
    m.lora.rank = 32;
    return m;
  }
};

// The manifests of settings.sources, read with the data settings' policy; an empty source is an error.
std::vector<data::LoaderSource> read_sources(const TrainSettings& settings);

// The speech LM of `settings`: the same on every rank (seeded), LLM base frozen, in training mode.
model::SpeechLM build_speech_lm(const TrainSettings& settings, const data::Tokenizer& tokenizer);

// Trains until max_steps (then commits a final checkpoint and returns kExitOk) or until SIGTERM/SIGUSR1
// (every rank agrees at the next step boundary, a checkpoint is committed, returns kExitRequeue).
// Resumes from the run folder's `latest` when there is one.
int run_training(dist::Communicator& comm, const TrainSettings& settings);

}  // namespace vtb::train
