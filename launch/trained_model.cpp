#include "launch/trained_model.h"

#include <spdlog/spdlog.h>

#include <map>

#include "ckpt/checkpoint_tools.h"
#include "ckpt/commit.h"
#include "ckpt/layout.h"
#include "ckpt/model_weights.h"
#include "launch/data_settings.h"
#include "launch/model_settings.h"

namespace vtb {

std::string resolve_checkpoint(const std::string& path) {
  const std::string latest = ckpt::latest_checkpoint(path);
  return latest.empty() ? path : latest;
}

Config checkpoint_config(const std::string& folder, const std::vector<std::string>& overrides) {
  const std::string text = ckpt::stored_config(folder), source = ckpt::state_file(folder) + " (its stored config)";
  Config config = Config::parse(text, source, overrides);
  check_against_checkpoint(folder, Config::parse(text, source, {}), config);
  return config;
}

void check_against_checkpoint(const std::string& folder, const Config& stored, const Config& current) {
  std::map<std::string, std::string> before, after;
  for (const auto& [key, value] : stored.values()) before[key] = value;
  for (const auto& [key, value] : current.values()) after[key] = value;
  const bool pretrained = !stored.str("model.llm").empty() && !current.str("model.llm").empty();
  std::string refused, changed;
  for (const auto& key : known_keys()) {
    const std::string old_value = before.count(key) ? before[key] : "(unset)";
    const std::string new_value = after.count(key) ? after[key] : "(unset)";
    if (old_value == new_value) continue;
    const std::string line = fmt::format("\n  {}: {} → {}", key, old_value, new_value);
    if (model_defining(key) && !(pretrained && key.rfind("llm.", 0) == 0)) {
      refused += line;
    } else {
      changed += line;
    }
  }
  if (!refused.empty())
    throw ConfigError(
        fmt::format("{}: these keys define the model and differ from the checkpoint's:{}\nA checkpoint "
                    "loads only into the model it was trained as: drop these overrides (or start a new "
                    "run folder)",
                    folder, refused));
  if (!changed.empty())
    spdlog::info("{}: continuing with run settings that differ from the checkpoint's:{}", folder, changed);
}

TrainedModel load_trained_model(const Config& config, const std::string& folder) {
  TrainedModel t;
  t.model = read_speech_lm_settings(config);
  t.data = read_data_settings(config, t.model.config);
  t.tokenizer = data::Tokenizer::load(t.data.tokenizer, t.data.audio_piece);
  t.lm = model::build_speech_lm(t.model, t.tokenizer.special().audio, t.tokenizer.vocab_size(),
                                config.integer("train.seed"));
  if (!folder.empty()) {
    ckpt::check_identity(folder);  // Note [Checkpoint identity]
    ckpt::load_model_weights(folder, t.lm);
  }
  t.lm->eval();
  return t;
}

}  // namespace vtb
