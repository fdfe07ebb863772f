// vtb data ...: tools between audio/text files and training data.
#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "data/audio.h"
#include "data/features.h"
#include "data/manifest.h"
#include "data/mixed_modal.h"
#include "data/synthetic_corpus.h"
#include "data/tokenizer.h"
#include "dist/exit_codes.h"
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

int data_synth_command(int argc, char** argv) {
  po::options_description options("Options");
  options.add_options()("out", po::value<std::string>()->default_value("data/synth"), "output folder")(
      "seed", po::value<uint64_t>()->default_value(1), "random seed (the corpus is deterministic for a seed)")(
      "scale", po::value<double>()->default_value(1.0), "multiply every split's size")(
      "vocab", po::value<int>()->default_value(512), "tokenizer vocabulary (upper bound)");
  const ParsedCommand cmd = parse_command(argc, argv, options);
  if (cmd.help) {
    std::cout << command_help(
        "vtb data synth [--out data/synth] [--seed 1] [--scale 1]",
        "Makes a speech corpus with espeak-ng: ASR (sentences, digit strings), AST (English speech "
        "to German text), SQA and text SFT, train and test splits (test: unseen sentences, half "
        "of it in an unseen voice), manifests, and a SentencePiece tokenizer trained on its text.",
        options);
    return kExitOk;
  }
  data::SynthOptions o;
  o.out_dir = cmd.options["out"].as<std::string>();
  o.seed = cmd.options["seed"].as<uint64_t>();
  o.tokenizer_vocab = cmd.options["vocab"].as<int>();
  const double k = cmd.options["scale"].as<double>();
  if (!(k > 0)) throw ConfigError("--scale must be positive");
  for (int* n :
       {&o.asr_train, &o.asr_test, &o.ast_train, &o.ast_test, &o.sqa_train, &o.sqa_test, &o.text_train, &o.text_test})
    *n = std::max(2, static_cast<int>(*n * k));
  const auto start = std::chrono::steady_clock::now();
  const data::SynthReport r = data::make_synthetic_corpus(o);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (const auto& [file, n] : r.examples) std::cout << o.out_dir << "/" << file << ": " << n << " examples\n";
  std::cout << o.out_dir << "/tokenizer.model\n"
            << "audio: " << r.audio_seconds / 60 << " min synthesised in " << seconds << " s\n";
  return kExitOk;
}

int data_mixgen_command(int argc, char** argv) {
  po::options_description options("Options");
  options.add_options()("input", po::value<std::string>(), "text-SFT manifest (JSONL with \"conversations\")")(
      "out", po::value<std::string>(), "output folder: mixed.jsonl and audio/mixed/")(
      "variants", po::value<int>()->default_value(2), "variants per conversation (K)")(
      "seed", po::value<uint64_t>()->default_value(1), "random seed");
  const ParsedCommand cmd = parse_command(argc, argv, options);
  if (cmd.help) {
    std::cout << command_help(
        "vtb data mixgen --input text.jsonl --out DIR [--variants K]",
        "Makes mixed-modal SFT the paper's way: per conversation up to K variants, each replacing "
        "a random contiguous span of one user turn's sentences with espeak-ng speech.",
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
