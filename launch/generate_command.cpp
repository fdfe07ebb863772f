// vtb generate: one mixed-modal prompt, answered by a trained checkpoint.
//   vtb generate --ckpt runs/t --prompt "Transcribe the audio. <audio:clip.wav>"
// vtb chat: a multi-turn conversation in the terminal, each line a user turn of text and <audio:PATH>.
#include <unistd.h>

#include <iostream>
#include <regex>

#include "data/audio.h"
#include "dist/exit_codes.h"
#include "eval/evaluation.h"
#include "launch/command_line.h"
#include "launch/commands.h"
#include "launch/decode_options.h"
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

TrainedModel load_for_generation(const ParsedCommand& cmd) {
  require_options(cmd, {"ckpt"});
  setup_logging(0, "warn", false);
  const std::string folder = resolve_checkpoint(cmd.options["ckpt"].as<std::string>());
  return load_trained_model(checkpoint_config(folder, cmd.overrides), folder);
}

// The most audio a prompt of --max-length can hold; a longer recording is refused before it is decoded.
double max_audio_seconds(TrainedModel& t, const eval::DecodeOptions& o) {
  return eval::audio_seconds_within(o.max_length, t.lm->config().encoder.subsampling_factor);
}

// The model's next assistant turn after `c` (which ends with a user turn).
std::string answer(TrainedModel& t, const data::Conversation& c, const eval::DecodeOptions& o) {
  const model::SpeechBatch b =
      eval::prompt_batch({c}, t.tokenizer, data::LogMelExtractor(t.data.loader.features), max_audio_seconds(t, o));
  const auto out = eval::decode(t.lm, b, o);
  return t.tokenizer.decode(std::vector<int>(out[0].begin(), out[0].end()));
}

// The ids a chat turn adds to the conversation so far: the template's "<end_of_turn>\n" closing the last
// reply (the first turn: <bos>), the user turn, the generation prompt; with its recordings' features.
model::SpeechBatch chat_turn(TrainedModel& t, const data::Turn& turn, bool first, const eval::DecodeOptions& o) {
  data::Conversation one;
  one.turns.push_back(turn);
  model::SpeechBatch b =
      eval::prompt_batch({one}, t.tokenizer, data::LogMelExtractor(t.data.loader.features), max_audio_seconds(t, o));
  if (first) return b;
  std::vector<int64_t> head = {t.tokenizer.special().end_of_turn};
  for (int id : t.tokenizer.encode("\n")) head.push_back(id);
  b.ids = torch::cat({torch::tensor(head, torch::kLong).unsqueeze(0), b.ids.narrow(1, 1, b.ids.size(1) - 1)}, 1);
  b.lengths = b.lengths + static_cast<int64_t>(head.size()) - 1;
  b.loss_mask = torch::zeros_like(b.ids, torch::kBool);
  return b;
}

}  // namespace

int generate_command(int argc, char** argv) {
  namespace po = boost::program_options;
  po::options_description options("Options");
  options.add_options()("ckpt", po::value<std::string>(), "checkpoint folder, or a run folder (its latest)")(
      "prompt", po::value<std::string>(), "the user's message; <audio:PATH> places an audio file");
  add_decode_options(options, 128, /*sampling=*/true);
  const ParsedCommand cmd = parse_command(argc, argv, options);
  if (cmd.help) {
    std::cout << command_help("vtb generate --ckpt D --prompt \"Transcribe the audio. <audio:a.wav>\"",
                              "Answers one mixed-modal prompt with a trained checkpoint: text and any number of "
                              "<audio:PATH> segments, anywhere in the message.",
                              options);
    return kExitOk;
  }
  require_options(cmd, {"prompt"});
  TrainedModel t = load_for_generation(cmd);
  data::Conversation c;
  c.turns.push_back(parse_prompt(cmd.options["prompt"].as<std::string>()));
  std::cout << answer(t, c, read_decode_options(cmd, t.tokenizer, t.lm->llm->config().max_positions)) << "\n";
  return kExitOk;
}

int chat_command(int argc, char** argv) {
  namespace po = boost::program_options;
  po::options_description options("Options");
  options.add_options()("ckpt", po::value<std::string>(), "checkpoint folder, or a run folder (its latest)");
  add_decode_options(options, 128, /*sampling=*/true);
  const ParsedCommand cmd = parse_command(argc, argv, options);
  if (cmd.help) {
    std::cout << command_help(
        "vtb chat --ckpt D",
        "A conversation with a trained checkpoint: each line you type is a user turn (text and "
        "<audio:PATH> segments); the model answers with the whole conversation as context, kept in a KV "
        "cache so each turn costs only its own tokens (beam search re-reads it). "
        "/reset starts over, /quit (or end of input) leaves.",
        options);
    return kExitOk;
  }
  TrainedModel t = load_for_generation(cmd);
  const eval::DecodeOptions o = read_decode_options(cmd, t.tokenizer, t.lm->llm->config().max_positions);
  const bool terminal = isatty(STDIN_FILENO) != 0;
  if (terminal) std::cerr << "vtb chat: type a message (<audio:PATH> inserts a recording), /reset, /quit\n";
  // Greedy and sampled replies keep one KV cache across turns; beam search re-reads the conversation.
  eval::ConversationDecoder cached(t.lm, o);
  data::Conversation c;
  std::string line;
  while ((terminal && std::cerr << "you> " << std::flush), std::getline(std::cin, line)) {
    if (line == "/quit") break;
    if (line == "/reset") {
      c.turns.clear();
      cached.reset();
      std::cerr << "(conversation cleared)\n";
      continue;
    }
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    // A message that cannot be used (an unreadable recording, a stray placeholder, a conversation grown
    // past --max-length) is said and left out; the conversation goes on.
    try {
      const data::Turn turn = parse_prompt(line);
      std::string reply;
      if (o.beams > 1) {
        c.turns.push_back(turn);
        try {
          reply = answer(t, c, o);
        } catch (...) {
          c.turns.pop_back();
          throw;
        }
      } else {
        const std::vector<int64_t> ids = cached.reply(chat_turn(t, turn, c.turns.empty(), o));
        c.turns.push_back(turn);
        reply = t.tokenizer.decode(std::vector<int>(ids.begin(), ids.end()));
      }
      c.turns.push_back({data::Role::Assistant, {{false, reply, {}}}});
      std::cout << "model> " << reply << std::endl;  // the prefix marks where each answer starts
    } catch (const eval::PromptTooLong& e) {
      std::cerr << "vtb chat: " << e.what() << "; /reset starts a new conversation\n";
    } catch (const std::exception& e) {
      std::cerr << "vtb chat: " << e.what() << "\n";
    }
  }
  return kExitOk;
}

}  // namespace vtb
