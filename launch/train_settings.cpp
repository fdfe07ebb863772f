#include "launch/train_settings.h"

#include <sstream>

#include "data/manifest.h"
#include "launch/model_settings.h"

namespace vtb {

namespace {

std::vector<train::SourceSettings> read_sources(const Config& c) {
  std::vector<train::SourceSettings> out;
  for (const std::string& line : c.list("data.source")) {
    std::istringstream in(line);
    train::SourceSettings s;
    std::string kind, weight;
    if (!(in >> s.name >> kind >> weight >> s.manifest))
      throw ConfigError("data.source '" + line + "': expected NAME KIND WEIGHT MANIFEST [DEFAULT PROMPT...]");
    s.task = parse_choice<data::Task>("data.source '" + line + "': KIND", kind, data::kTasks);
    size_t used = 0;
    try {
      s.weight = std::stod(weight, &used);
    } catch (const std::exception&) {
    }
    // Weights are relative (0 turns a source off); one of inf or 1e308 would starve every other source.
    if (used != weight.size() || !(s.weight >= 0 && s.weight <= 1e6))
      throw ConfigError("data.source '" + line + "': weight '" + weight + "' must be a number in [0, 1e6]");
    std::getline(in >> std::ws, s.prompt);
    out.push_back(s);
  }
  return out;
}

}  // namespace

data::FeatureConfig read_feature_settings(const Config& c) {
  data::FeatureConfig f;
  f.n_mels = static_cast<int>(c.integer("features.n_mels"));
  f.pad_mode = c.choice<data::PadMode>("features.pad_mode", data::kPadModes);
  f.frame_rule = c.choice<data::FrameRule>("features.frame_rule", data::kFrameRules);
  f.dither = c.real("features.dither");
  try {
    f.validate();
  } catch (const std::invalid_argument& e) {
    throw ConfigError(e.what());
  }
  return f;
}

train::TrainSettings read_train_settings(const Config& c) {
  train::TrainSettings s;
  s.run_dir = c.str("run.dir");
  s.config_text = c.resolved_ini();
  s.seed = c.integer("train.seed");
  s.max_steps = c.integer("train.max_steps");
  s.micro_batches = c.integer("train.micro_batches");
  s.warmup_steps = c.integer("train.warmup_steps");
  s.log_every = c.integer("train.log_every");
  s.ckpt_every = c.integer("ckpt.every_steps");
  s.ckpt_every_minutes = c.real("ckpt.every_minutes");
  s.peak_tflops = c.real("run.peak_tflops");
  s.precision = parse_choice<train::Precision>("run.precision", c.str("run.precision"), train::kPrecisions);
  s.keep_last = c.integer("ckpt.keep_last");
  s.max_bad_steps = c.integer("train.max_bad_steps");
  s.fixed_batch = c.str("train.fixed_batch");
  s.lr = c.real("train.lr");
  s.lr_min = c.real("train.lr_min");
  s.clip = c.real("train.clip");
  s.adamw = optim::AdamWOptions{c.real("train.beta1"), c.real("train.beta2"), 1e-8, c.real("train.weight_decay")};
  s.model = read_model_settings(c);
  s.llm_dir = c.str("model.llm");
  s.encoder_init = c.str("model.encoder");
  s.tokenizer = c.str("data.tokenizer");
  s.audio_piece = c.str("data.audio_piece");
  s.sources = read_sources(c);
  s.mix = c.choice<data::MixMode>("data.mix", data::kMixModes);
  s.limits = data::BatchLimits{c.real("data.max_seconds"), c.integer("data.max_tokens"), c.integer("data.max_examples"),
                               c.integer("data.bucket_window")};
  s.loader.features = read_feature_settings(c);
  if (s.loader.features.n_mels != s.model.encoder.n_mels)
    throw ConfigError("features.n_mels (" + std::to_string(s.loader.features.n_mels) + ") must equal encoder.n_mels (" +
                      std::to_string(s.model.encoder.n_mels) + ")");
  s.loader.spec_augment = data::SpecAugmentConfig{
      static_cast<int>(c.integer("features.freq_masks")), static_cast<int>(c.integer("features.freq_width")),
      static_cast<int>(c.integer("features.time_masks")), c.real("features.time_width")};
  s.loader.workers = static_cast<int>(c.integer("data.workers"));
  s.loader.queue_depth = 2 * std::max(1, s.loader.workers);
  s.loader.seed = static_cast<uint64_t>(s.seed);
  s.loader.training = true;
  s.loader.subsampling_factor = s.model.encoder.subsampling_factor;
  s.skip_bad_lines = s.loader.skip_bad_audio = c.choice<bool>("data.on_error", data::kOnErrorSkips);
  s.min_duration = c.real("data.min_duration");
  s.max_duration = c.real("data.max_duration");
  s.buckets = dist::BucketOptions{static_cast<size_t>(c.real("dist.first_bucket_mib") * (1 << 20)),
                                  static_cast<size_t>(c.real("dist.bucket_mib") * (1 << 20))};
  s.zero = static_cast<int>(c.integer("dist.zero"));
  return s;
}

}  // namespace vtb
