// vtb generate: one mixed-modal prompt, answered by a trained checkpoint.
//   vtb generate --ckpt runs/t --prompt "Transcribe the audio. <audio:clip.wav>"
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>

#include "ckpt/commit.h"
#include "data/audio.h"
#include "data/prompt.h"
#include "dist/exit_codes.h"
#include "eval/greedy_decoder.h"
#include "launch/command_line.h"
#include "launch/commands.h"
#include "launch/logging.h"
#include "launch/train_settings.h"
#include "train/training_state.h"

namespace vtb {
namespace {

// "text <audio:path> more text" → a user turn of text and audio segments (offset 0, the whole file).
data::Turn parse_prompt(const std::string& prompt) {
  data::Turn turn{data::Role::User, {}};
  static const std::regex marker(R"(<audio:([^>]+)>)");
  size_t start = 0;
  for (std::sregex_iterator it(prompt.begin(), prompt.end(), marker), end; it != end; ++it) {
    if (static_cast<size_t>(it->position()) > start)
      turn.segments.push_back({false, prompt.substr(start, static_cast<size_t>(it->position()) - start), {}});
    const std::string path = (*it)[1];
    turn.segments.push_back({true, {}, {path, 0, data::audio_duration(path)}});
    start = static_cast<size_t>(it->position() + it->length());
  }
  if (start < prompt.size() || turn.segments.empty()) turn.segments.push_back({false, prompt.substr(start), {}});
  return turn;
}

}  // namespace

int generate_command(int argc, char** argv) {
  namespace po = boost::program_options;
  namespace fs = std::filesystem;
  po::options_description options("Options");
  options.add_options()("ckpt", po::value<std::string>(), "checkpoint folder, or a run folder (its latest)")(
      "prompt", po::value<std::string>(), "the user's message; <audio:PATH> places an audio file")(
      "max-new-tokens", po::value<int64_t>()->default_value(128), "generation limit")(
      "temperature", po::value<double>()->default_value(0), "0 = greedy")(
      "top-p", po::value<double>()->default_value(1), "nucleus sampling threshold")(
      "seed", po::value<uint64_t>()->default_value(0), "sampling seed");
  const ParsedCommand cmd = parse_command(argc, argv, options);
  if (cmd.help) {
    std::cout << command_help("vtb generate --ckpt D --prompt \"Transcribe the audio. <audio:a.wav>\"",
                              "Answers one mixed-modal prompt with a trained checkpoint: text and any number of "
                              "<audio:PATH> segments, anywhere in the message.",
                              options);
    return kExitOk;
  }
  for (const char* required : {"ckpt", "prompt"})
    if (!cmd.options.count(required)) throw ConfigError(std::string("--") + required + " is required");
  std::string folder = cmd.options["ckpt"].as<std::string>();
  if (const std::string latest = ckpt::latest_checkpoint(folder); !latest.empty()) folder = latest;
  const std::string stored = (fs::temp_directory_path() / ("vtb_generate_" + std::to_string(getpid()) + ".ini")).string();
  std::ofstream(stored) << train::checkpoint_config(folder);
  const Config config = Config::load(stored, cmd.overrides);
  fs::remove(stored);
  setup_logging(0, "warn", false);
  const train::TrainSettings settings = read_train_settings(config);
  const data::Tokenizer tok = data::Tokenizer::load(settings.tokenizer, settings.audio_piece);
  model::SpeechLM lm = train::build_speech_lm(settings, tok);
  train::load_model_weights(folder, lm);
  lm->eval();

  data::Conversation c;
  c.turns.push_back(parse_prompt(cmd.options["prompt"].as<std::string>()));
  const data::FormattedExample f = data::format_conversation(c, tok, /*generation_prompt=*/true);
  const data::LogMelExtractor extractor(settings.loader.features);
  model::SpeechBatch b;
  b.ids = at::tensor(std::vector<int64_t>(f.ids.begin(), f.ids.end()), at::kLong).unsqueeze(0);
  b.lengths = at::tensor({static_cast<int64_t>(f.ids.size())}, at::kLong);
  b.loss_mask = at::zeros_like(b.ids, at::kBool);
  std::vector<at::Tensor> feats;
  for (const auto& a : f.audio) feats.push_back(extractor.compute(data::load_audio(a.path, a.offset, a.duration)));
  if (!feats.empty()) {
    int64_t F = 0;
    for (const auto& x : feats) F = std::max(F, x.size(1));
    b.features = at::zeros({static_cast<int64_t>(feats.size()), feats[0].size(0), F});
    b.feature_lengths = at::empty({static_cast<int64_t>(feats.size())}, at::kLong);
    for (size_t k = 0; k < feats.size(); ++k) {
      b.features[static_cast<int64_t>(k)].narrow(1, 0, feats[k].size(1)).copy_(feats[k]);
      b.feature_lengths[static_cast<int64_t>(k)] = feats[k].size(1);
    }
  }
  eval::DecodeOptions o;
  o.max_new_tokens = cmd.options["max-new-tokens"].as<int64_t>();
  o.temperature = cmd.options["temperature"].as<double>();
  o.top_p = cmd.options["top-p"].as<double>();
  o.seed = cmd.options["seed"].as<uint64_t>();
  o.stop_ids = {tok.special().end_of_turn, tok.special().eos};
  o.vocab_limit = tok.vocab_size();
  const auto out = eval::greedy_decode(lm, b, o);
  std::cout << tok.decode(std::vector<int>(out[0].begin(), out[0].end())) << "\n";
  return kExitOk;
}

}  // namespace vtb
