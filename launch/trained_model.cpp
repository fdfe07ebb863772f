#include "launch/trained_model.h"

#include "ckpt/commit.h"
#include "ckpt/layout.h"
#include "launch/train_settings.h"
#include "train/training_state.h"

namespace vtb {

std::string resolve_checkpoint(const std::string& path) {
  const std::string latest = ckpt::latest_checkpoint(path);
  return latest.empty() ? path : latest;
}

Config checkpoint_config(const std::string& folder, const std::vector<std::string>& overrides) {
  return Config::parse(train::checkpoint_config(folder), ckpt::state_file(folder) + " (its stored config)", overrides);
}

TrainedModel load_trained_model(const Config& config, const std::string& folder) {
  TrainedModel t;
  t.settings = read_train_settings(config);
  t.tokenizer = data::Tokenizer::load(t.settings.tokenizer, t.settings.audio_piece);
  t.lm = train::build_speech_lm(t.settings, t.tokenizer);
  if (!folder.empty()) train::load_model_weights(folder, t.lm);
  t.lm->eval();
  return t;
}

}  // namespace vtb
