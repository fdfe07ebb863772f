#include "launch/trained_model.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "ckpt/commit.h"
#include "launch/train_settings.h"
#include "train/training_state.h"

namespace vtb {

std::string resolve_checkpoint(const std::string& path) {
  const std::string latest = ckpt::latest_checkpoint(path);
  return latest.empty() ? path : latest;
}

Config checkpoint_config(const std::string& folder, const std::vector<std::string>& overrides) {
  namespace fs = std::filesystem;
  // Config::load reads files; the stored text goes through a private temporary one.
  const fs::path stored = fs::temp_directory_path() / ("vtb_checkpoint_config_" + std::to_string(getpid()) + ".ini");
  std::ofstream(stored) << train::checkpoint_config(folder);
  try {
    Config config = Config::load(stored.string(), overrides);
    fs::remove(stored);
    return config;
  } catch (...) {
    fs::remove(stored);
    throw;
  }
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
