#include "launch/data_settings.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/manifest.h"

namespace vtb {

namespace {

std::vector<data::SourceSettings> read_sources(const Config& c) {
  std::vector<data::SourceSettings> out;
  for (const std::string& line : c.list("data.source")) {
    std::istringstream in(line);
    data::SourceSettings s;
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

data::WaveAugmentConfig read_augment_settings(const Config& c) {
  data::WaveAugmentConfig a;
  a.speed_factors.clear();
  std::istringstream list(c.str("data.speed_factors"));
  for (std::string item; std::getline(list, item, ',');) {
    try {
      size_t used = 0;
      a.speed_factors.push_back(std::stod(item, &used));
      if (item.find_first_not_of(" ", used) != std::string::npos) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw ConfigError("data.speed_factors: '" + item + "' is not a number");
    }
  }
  a.noise_prob = c.real("data.noise_prob");
  a.noise_snr_min_db = c.real("data.noise_snr_min_db");
  a.noise_snr_max_db = c.real("data.noise_snr_max_db");
  a.reverb_prob = c.real("data.reverb_prob");
  a.reverb_rt60_min_s = c.real("data.reverb_rt60_min_s");
  a.reverb_rt60_max_s = c.real("data.reverb_rt60_max_s");
  try {
    a.validate();
  } catch (const std::invalid_argument& e) {
    throw ConfigError(e.what());
  }
  return a;
}

data::DataSettings read_data_settings(const Config& c, const model::SpeechLMConfig& model) {
  data::DataSettings s;
  s.tokenizer = c.str("data.tokenizer");
  s.audio_piece = c.str("data.audio_piece");
  s.sources = read_sources(c);
  s.mix = c.choice<data::MixMode>("data.mix", data::kMixModes);
  s.limits = data::BatchLimits{c.real("data.max_seconds"), c.integer("data.max_tokens"), c.integer("data.max_examples"),
                               c.integer("data.bucket_window")};
  s.loader.features = read_feature_settings(c);
  if (s.loader.features.n_mels != model.encoder.n_mels)
    throw ConfigError("features.n_mels (" + std::to_string(s.loader.features.n_mels) + ") must equal encoder.n_mels (" +
                      std::to_string(model.encoder.n_mels) + ")");
  s.loader.spec_augment = data::SpecAugmentConfig{
      static_cast<int>(c.integer("features.freq_masks")), static_cast<int>(c.integer("features.freq_width")),
      static_cast<int>(c.integer("features.time_masks")), c.real("features.time_width")};
  s.loader.augment = read_augment_settings(c);
  s.loader.workers = static_cast<int>(c.integer("data.workers"));
  s.loader.queue_depth = 2 * std::max(1, s.loader.workers);
  s.loader.seed = static_cast<uint64_t>(c.integer("train.seed"));
  s.loader.training = true;
  s.loader.subsampling_factor = model.encoder.subsampling_factor;
  s.skip_bad_lines = s.loader.skip_bad_audio = c.choice<bool>("data.on_error", data::kOnErrorSkips);
  s.min_duration = c.real("data.min_duration");
  s.max_duration = c.real("data.max_duration");
  return s;
}

}  // namespace vtb
