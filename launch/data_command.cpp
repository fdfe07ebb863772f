// vtb data ...: tools between audio/text files and training data.
#include <torch/torch.h>

#include <iostream>

#include "data/audio.h"
#include "data/features.h"
#include "dist/exit_codes.h"
#include "launch/command_line.h"
#include "launch/commands.h"
#include "launch/config.h"
#include "launch/npy.h"

namespace vtb {
namespace po = boost::program_options;

data::FeatureConfig read_feature_settings(const Config& c) {
  data::FeatureConfig f;
  f.n_mels = static_cast<int>(c.integer("features.n_mels"));
  f.pad_mode = c.str("features.pad_mode");
  f.frame_rule = c.str("features.frame_rule");
  f.dither = c.real("features.dither");
  try {
    f.validate();
  } catch (const std::invalid_argument& e) {
    throw ConfigError(e.what());
  }
  return f;
}

int data_features_command(int argc, char** argv) {
  po::options_description options("Options");
  options.add_options()("audio", po::value<std::string>(), "audio file (wav, flac, ogg, ...; any rate, any channels)")(
      "out", po::value<std::string>(), "output .npy, float32 [n_mels, frames]")(
      "offset", po::value<double>()->default_value(0), "start, seconds")(
      "duration", po::value<double>()->default_value(0), "length, seconds (0 = to the end)")(
      "filterbank-out", po::value<std::string>(), "also write the mel filterbank, float32 [n_fft/2+1, n_mels]");
  const ParsedCommand cmd = parse_command(argc, argv, options);
  if (cmd.help) {
    std::cout << command_help("vtb data features --audio a.wav --out f.npy [--features.pad_mode=constant ...]",
                              "Computes log-mel features exactly as training does, without dither or SpecAugment.",
                              options);
    return kExitOk;
  }
  for (const char* required : {"audio", "out"})
    if (!cmd.options.count(required)) throw ConfigError(std::string("--") + required + " is required");
  const Config config = Config::load(cmd.options["config"].as<std::string>(), cmd.overrides);
  const data::LogMelExtractor extractor(read_feature_settings(config));
  const auto samples = data::load_audio(cmd.options["audio"].as<std::string>(), cmd.options["offset"].as<double>(),
                                        cmd.options["duration"].as<double>());
  write_npy(cmd.options["out"].as<std::string>(), extractor.compute(samples));
  if (cmd.options.count("filterbank-out")) {
    const auto& f = extractor.config();
    write_npy(cmd.options["filterbank-out"].as<std::string>(),
              data::slaney_mel_filterbank(f.n_fft / 2 + 1, f.fmin, f.fmax, f.n_mels, f.sample_rate));
  }
  return kExitOk;
}

}  // namespace vtb
