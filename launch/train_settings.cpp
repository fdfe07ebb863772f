#include "launch/train_settings.h"

#include "launch/data_settings.h"
#include "launch/model_settings.h"

namespace vtb {

train::TrainSettings read_train_settings(const Config& c) {
  train::TrainSettings s;
  s.run_dir = c.str("run.dir");
  s.seed = c.integer("train.seed");
  train::ScheduleSettings& t = s.schedule;
  t.max_steps = c.integer("train.max_steps");
  t.micro_batches = c.integer("train.micro_batches");
  t.warmup_steps = c.integer("train.warmup_steps");
  t.max_bad_steps = c.integer("train.max_bad_steps");
  t.lr = c.real("train.lr");
  t.lr_min = c.real("train.lr_min");
  t.clip = c.real("train.clip");
  t.adamw = optim::AdamWOptions{c.real("train.beta1"), c.real("train.beta2"), 1e-8, c.real("train.weight_decay"),
                                c.choice<optim::AdamWOptions::Fused>("train.fused_adamw", optim::kFusedAdamW)};
  s.precision = parse_choice<train::Precision>("run.precision", c.str("run.precision"), train::kPrecisions);
  s.fixed_batch = c.str("train.fixed_batch");
  s.model = read_speech_lm_settings(c);
  s.data = read_data_settings(c, s.model.config);
  s.parallel.buckets = dist::BucketOptions{static_cast<size_t>(c.real("dist.first_bucket_mib") * (1 << 20)),
                                           static_cast<size_t>(c.real("dist.bucket_mib") * (1 << 20))};
  s.parallel.zero = static_cast<int>(c.integer("dist.zero"));
  s.ckpt.every_steps = c.integer("ckpt.every_steps");
  s.ckpt.every_minutes = c.real("ckpt.every_minutes");
  s.ckpt.keep_last = c.integer("ckpt.keep_last");
  s.metrics.log_every = c.integer("train.log_every");
  s.metrics.peak_tflops = c.real("run.peak_tflops");
  return s;
}

}  // namespace vtb
