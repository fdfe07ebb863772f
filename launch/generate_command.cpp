// vtb generate: one mixed-modal prompt, answered by a trained checkpoint.
//   vtb generate --ckpt runs/t --prompt "Transcribe the audio. <audio:clip.wav>"
#include <iostream>
#include <regex>

#include "data/audio.h"
#include "dist/exit_codes.h"
#include "eval/evaluation.h"
#include "launch/command_line.h"
#include "launch/commands.h"
#include "launch/logging.h"
#include "launch/trained_model.h"

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
  setup_logging(0, "warn", false);
  const std::string folder = resolve_checkpoint(cmd.options["ckpt"].as<std::string>());
  TrainedModel t = load_trained_model(checkpoint_config(folder, cmd.overrides), folder);
  const data::Tokenizer& tok = t.tokenizer;
  data::Conversation c;
  c.turns.push_back(parse_prompt(cmd.options["prompt"].as<std::string>()));
  const model::SpeechBatch b = eval::prompt_batch({c}, tok, data::LogMelExtractor(t.settings.loader.features));
  eval::DecodeOptions o;
  o.max_new_tokens = cmd.options["max-new-tokens"].as<int64_t>();
  o.temperature = cmd.options["temperature"].as<double>();
  o.top_p = cmd.options["top-p"].as<double>();
  o.seed = cmd.options["seed"].as<uint64_t>();
  o.stop_ids = {tok.special().end_of_turn, tok.special().eos};
  o.vocab_limit = tok.vocab_size();
  const auto out = eval::greedy_decode(t.lm, b, o);
  std::cout << tok.decode(std::vector<int>(out[0].begin(), out[0].end())) << "\n";
  return kExitOk;
}

}  // namespace vtb
