// vtb data ...: tools between audio/text files and training data.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "data/audio.h"
#include "data/features.h"
#include "data/manifest.h"
#include "data/mixed_modal.h"
#include "data/speech_synthesizer.h"
#include "data/synthetic_corpus.h"
#include "data/tokenizer.h"
#include "dist/exit_codes.h"
#include "eval/vocabulary.h"
#include "launch/command_line.h"
#include "launch/commands.h"
#include "launch/config.h"
#include "launch/data_settings.h"
#include "launch/npy.h"

namespace vtb {
namespace po = boost::program_options;

int data_features_command(int argc, char** argv) {
  po::options_description options("Options");
  options.add_options()("audio", po::value<std::string>(), "audio file (wav, flac, ogg, ...; any rate, any channels)")(
      "out", po::value<std::string>(), "output .npy, float32 [n_mels, frames]")(
      "offset", po::value<double>()->default_value(0), "start, seconds")(
      "duration", po::value<double>()->default_value(0), "length, seconds (0 = to the end)")(
      "max-seconds", po::value<double>()->default_value(3600),
      "refuse a longer slice before decoding it (a 1-hour slice is 230 MB of samples; 0 = no bound)")(
      "filterbank-out", po::value<std::string>(), "also write the mel filterbank, float32 [n_fft/2+1, n_mels]");
  const ParsedCommand cmd = parse_command(argc, argv, options);
  if (cmd.help) {
    std::cout << command_help("vtb data features --audio a.wav --out f.npy [--features.pad_mode=constant ...]",
                              "Computes log-mel features exactly as training does, without dither or SpecAugment.",
                              options);
    return kExitOk;
  }
  require_options(cmd, {"audio", "out"});
  const Config config = Config::load(cmd.options["config"].as<std::string>(), cmd.overrides);
  const data::LogMelExtractor extractor(read_feature_settings(config));
  const double max_seconds = cmd.options["max-seconds"].as<double>();
  if (!(max_seconds >= 0)) throw ConfigError("--max-seconds must be ≥ 0");
  const auto samples = data::load_audio(cmd.options["audio"].as<std::string>(), cmd.options["offset"].as<double>(),
                                        cmd.options["duration"].as<double>(), data::kSampleRate, max_seconds);
  write_npy(cmd.options["out"].as<std::string>(), extractor.compute(samples));
  if (cmd.options.count("filterbank-out")) {
    const auto& f = extractor.config();
    write_npy(cmd.options["filterbank-out"].as<std::string>(),
              data::slaney_mel_filterbank(f.n_fft / 2 + 1, f.fmin, f.fmax, f.n_mels, f.sample_rate));
  }
  return kExitOk;
}

// --engines as a list of synthesis engines; a bad one is a ConfigError naming the flag.
std::vector<std::string> engines_option(const ParsedCommand& cmd) {
  try {
    return data::parse_engines(cmd.options["engines"].as<std::string>(), "--engines");
  } catch (const std::invalid_argument& e) {
    throw ConfigError(e.what());
  }
}

// <dir>/oov.json and a line per test split: the share of its reference words that no training text of the
// corpus (its *_train.jsonl and lm_train.jsonl) contains.
void report_oov(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<std::string> train, test;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.ends_with("_train.jsonl")) train.push_back(entry.path().string());
    if (name.ends_with("_test.jsonl")) test.push_back(entry.path().string());
  }
  std::sort(test.begin(), test.end());
  const std::set<std::string> vocabulary = eval::manifest_words(train);
  nlohmann::json out = nlohmann::json::object();
  std::cout << "out of vocabulary (reference words no training text has, of " << vocabulary.size()
            << " words trained on):\n";
  for (const auto& path : test) {
    const eval::OovRate r = eval::out_of_vocabulary(vocabulary, path);
    const std::string name = fs::path(path).filename().string();
    std::vector<std::string> examples(r.types.begin(), r.types.end());
    if (examples.size() > 12) examples.resize(12);
    out[name] = {{"words", r.words}, {"unseen", r.unseen}, {"rate", r.rate()}, {"unseen_words", examples}};
    std::ostringstream line;
    line.precision(1);
    line << std::fixed << "  " << name << ": " << 100 * r.rate() << " % (" << r.unseen << " of " << r.words << ")";
    for (const auto& w : examples) line << " " << w;
    std::cout << line.str() << "\n";
  }
  std::ofstream(fs::path(dir) / "oov.json") << out.dump(1) << "\n";
}

int data_synth_command(int argc, char** argv) {
  po::options_description options("Options");
  options.add_options()("out", po::value<std::string>()->default_value("data/synth"), "output folder")(
      "seed", po::value<uint64_t>()->default_value(1), "random seed (the corpus is deterministic for a seed)")(
      "scale", po::value<double>()->default_value(1.0), "multiply every split's size")(
      "vocab", po::value<int>()->default_value(512), "tokenizer vocabulary (upper bound)")(
      "engines", po::value<std::string>()->default_value("espeak-ng"),
      "synthesizers whose voices speak the corpus, comma-separated: espeak-ng, flite, festival")(
      "prose", po::value<int>()->default_value(0),
      "real English: N sentences of Debian's fortunes for asr_prose_train.jsonl, N/6 for its test split");
  const ParsedCommand cmd = parse_command(argc, argv, options);
  if (cmd.help) {
    std::cout << command_help(
        "vtb data synth [--out data/synth] [--seed 1] [--scale 1] [--engines espeak-ng,flite,festival]",
        "Makes a speech corpus: ASR (sentences, digit strings), AST (English speech to German text), "
        "SQA and text SFT, train and test splits (test: unseen sentences, half of it in voices "
        "training never hears, one held out per engine), every engine's held-out voice on the ASR "
        "test sentences (asr_<engine>_test.jsonl), manifests, and a SentencePiece tokenizer "
        "trained on its text.",
        options);
    return kExitOk;
  }
  data::SynthOptions o;
  o.engines = engines_option(cmd);
  o.out_dir = cmd.options["out"].as<std::string>();
  o.seed = cmd.options["seed"].as<uint64_t>();
  o.tokenizer_vocab = cmd.options["vocab"].as<int>();
  const double k = cmd.options["scale"].as<double>();
  if (!(k > 0)) throw ConfigError("--scale must be positive");
  for (int* n :
       {&o.asr_train, &o.asr_test, &o.ast_train, &o.ast_test, &o.sqa_train, &o.sqa_test, &o.text_train, &o.text_test})
    *n = std::max(2, static_cast<int>(*n * k));
  if (const int prose = cmd.options["prose"].as<int>(); prose > 0) {
    o.prose_train = std::max(2, static_cast<int>(prose * k));
    o.prose_test = std::max(2, o.prose_train / 6);
  } else if (prose < 0) {
    throw ConfigError("--prose must be ≥ 0");
  }
  const auto start = std::chrono::steady_clock::now();
  const data::SynthReport r = data::make_synthetic_corpus(o);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (const auto& [file, n] : r.examples) std::cout << o.out_dir << "/" << file << ": " << n << " examples\n";
  for (const auto& engine : data::synthesis_engines()) {
    std::cout << "voices of " << engine << ":";
    for (const auto& [voice, n] : r.voices)
      if (data::engine_of(voice) == engine) std::cout << " " << voice << " (" << n << ")";
    std::cout << "; held out for testing: " << data::held_out_voice_name(engine) << "\n";
  }
  std::cout << o.out_dir << "/tokenizer.model\n"
            << "audio: " << r.audio_seconds / 60 << " min synthesised in " << seconds << " s\n";
  report_oov(o.out_dir);
  return kExitOk;
}

int data_mixgen_command(int argc, char** argv) {
  po::options_description options("Options");
  options.add_options()("input", po::value<std::string>(), "text-SFT manifest (JSONL with \"conversations\")")(
      "out", po::value<std::string>(), "output folder: mixed.jsonl and audio/mixed/")(
      "variants", po::value<int>()->default_value(2), "variants per conversation (K)")(
      "seed", po::value<uint64_t>()->default_value(1), "random seed")(
      "engines", po::value<std::string>()->default_value("espeak-ng"),
      "synthesizers whose training voices speak, comma-separated: espeak-ng, flite, festival");
  const ParsedCommand cmd = parse_command(argc, argv, options);
  if (cmd.help) {
    std::cout << command_help(
        "vtb data mixgen --input text.jsonl --out DIR [--variants K] [--engines espeak-ng]",
        "Makes mixed-modal SFT the paper's way: per conversation up to K variants, each replacing "
        "a random contiguous span of one user turn's sentences with synthesized speech.",
        options);
    return kExitOk;
  }
  require_options(cmd, {"input", "out"});
  const Config config = Config::load(cmd.options["config"].as<std::string>(), cmd.overrides);
  data::MixgenOptions o;
  o.input = cmd.options["input"].as<std::string>();
  o.out_dir = cmd.options["out"].as<std::string>();
  o.variants = cmd.options["variants"].as<int>();
  o.seed = cmd.options["seed"].as<uint64_t>();
  o.engines = engines_option(cmd);
  o.skip_bad_lines = config.choice<bool>("data.on_error", data::kOnErrorSkips);
  const data::MixgenReport r = data::make_mixed_modal(o);
  std::cout << o.out_dir << "/mixed.jsonl: " << r.examples << " examples from " << r.conversations << " conversations, "
            << r.audio_seconds / 60 << " min of speech\n";
  return kExitOk;
}

int data_tokenizer_command(int argc, char** argv) {
  po::options_description options("Options");
  options.add_options()("input", po::value<std::string>(), "text files, comma-separated (one sentence per line)")(
      "vocab", po::value<int>()->default_value(512), "vocabulary size (upper bound)")("out", po::value<std::string>(),
                                                                                      "output model path (.model)");
  const ParsedCommand cmd = parse_command(argc, argv, options);
  if (cmd.help) {
    std::cout << command_help("vtb data tokenizer --input a.txt[,b.txt] --vocab N --out m.model",
                              "Trains a SentencePiece unigram tokenizer with vtb's special pieces: <pad>=0, <eos>=1, "
                              "<bos>=2, <unk>=3, <start_of_turn>, <end_of_turn>, <audio>, newline.",
                              options);
    return kExitOk;
  }
  require_options(cmd, {"input", "out"});
  std::vector<std::string> inputs;
  std::stringstream list(cmd.options["input"].as<std::string>());
  for (std::string f; std::getline(list, f, ',');) {
    if (!std::filesystem::exists(f)) throw ConfigError("--input: no file " + f);
    inputs.push_back(f);
  }
  std::string out = cmd.options["out"].as<std::string>();
  if (out.size() > 6 && out.compare(out.size() - 6, 6, ".model") == 0) out.resize(out.size() - 6);
  data::train_tokenizer(inputs, cmd.options["vocab"].as<int>(), out);
  const data::Tokenizer t = data::Tokenizer::load(out + ".model");
  std::cout << out << ".model: " << t.vocab_size() << " pieces\n";
  return kExitOk;
}

}  // namespace vtb
