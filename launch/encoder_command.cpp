// vtb encoder import: a NeMo .nemo's FastConformer encoder as the safetensors model.encoder loads, its
// model_config.yaml checked against this config; vtb encoder forward: the encoder on given features (and
// the gradient with respect to them), for checking it against NeMo's.
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <cmath>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "dist/exit_codes.h"
#include "launch/command_line.h"
#include "launch/commands.h"
#include "launch/config.h"
#include "launch/logging.h"
#include "launch/npy.h"
#include "launch/train_settings.h"
#include "model/nemo_archive.h"
#include "model/safetensors.h"
#include "model/speech_lm.h"
#include "model/torch_state_dict.h"

namespace vtb {
namespace {

namespace po = boost::program_options;

std::optional<double> number(const std::string& text) {
  try {
    size_t used = 0;
    const double v = std::stod(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

bool is_null(const std::string& v) { return v == "null" || v == "~" || v == "None" || v.empty(); }

// Compares model_config.yaml's `prefix` section (NeMo's names and defaults) with this config, one line per
// disagreement: "encoder.d_model = 512 in the .nemo, encoder.d_model = 1024 here".
class YamlCheck {
 public:
  YamlCheck(const std::map<std::string, std::string>& yaml, std::string prefix)
      : yaml_(yaml), prefix_(std::move(prefix)) {}

  // The value of NeMo key `key`, or `fallback` (NeMo's default) when the file does not set it.
  std::string value(const std::string& key, const std::string& fallback) const {
    const auto it = yaml_.find(prefix_ + key);
    return it == yaml_.end() ? fallback : it->second;
  }
  // A number that must equal vtb's `ours` (named `our_key`), within a relative 1e-6.
  void same_number(const std::string& key, const std::string& fallback, double ours, const std::string& our_key,
                   double scale = 1) {
    const std::string text = value(key, fallback);
    const auto v = number(text);
    if (v && std::abs(*v * scale - ours) <= 1e-6 * std::max(1.0, std::abs(ours))) return;
    std::string theirs = prefix_ + key + " = " + text;
    if (v && scale != 1) theirs += " (" + fmt(*v * scale) + ")";
    mismatches_.push_back(theirs + " in the .nemo, " + our_key + " = " + fmt(ours) + " here");
  }
  // A setting vtb supports one way only.
  void must_be(const std::string& key, const std::string& fallback, const std::vector<std::string>& accepted,
               const std::string& why) {
    std::string text = value(key, fallback);
    for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const auto& a : accepted)
      if (text == a || (is_null(a) && is_null(text))) return;
    mismatches_.push_back(prefix_ + key + " = " + value(key, fallback) + " in the .nemo: " + why);
  }
  const std::vector<std::string>& mismatches() const { return mismatches_; }

 private:
  static std::string fmt(double v) {
    std::ostringstream s;
    s << v;
    return s.str();
  }
  const std::map<std::string, std::string>& yaml_;
  std::string prefix_;
  std::vector<std::string> mismatches_;
};

std::vector<std::string> check_encoder(const std::map<std::string, std::string>& yaml, const std::string& prefix,
                                       const model::EncoderConfig& e) {
  YamlCheck c(yaml, prefix);
  const auto& k = e.conformer;
  const std::string target = c.value("_target_", "");
  if (target.size() < 16 || target.compare(target.size() - 16, 16, "ConformerEncoder") != 0)
    return {prefix + "_target_ = " + target + ": vtb imports a ConformerEncoder (FastConformer) only"};
  c.same_number("feat_in", "null", static_cast<double>(e.n_mels), "encoder.n_mels");
  c.same_number("n_layers", "null", static_cast<double>(k.layers), "encoder.layers");
  c.same_number("d_model", "null", static_cast<double>(k.d_model), "encoder.d_model");
  c.same_number("n_heads", "4", static_cast<double>(k.heads), "encoder.heads");
  c.same_number("ff_expansion_factor", "4", static_cast<double>(k.ff_dim), "encoder.ff_dim",
                static_cast<double>(k.d_model));
  c.same_number("conv_kernel_size", "31", static_cast<double>(k.conv_kernel), "encoder.conv_kernel");
  c.same_number("subsampling_factor", "4", static_cast<double>(e.subsampling_factor), "encoder.subsampling_factor");
  const std::string channels = c.value("subsampling_conv_channels", "-1");
  c.same_number("subsampling_conv_channels", channels == "-1" ? std::to_string(k.d_model) : channels,
                static_cast<double>(e.subsampling_channels), "encoder.subsampling_channels");
  c.must_be("xscaling", "true", {k.xscaling ? "true" : "false"},
            std::string("encoder.xscaling = ") + (k.xscaling ? "true" : "false") + " here");
  c.must_be("subsampling", "striding", {"dw_striding"}, "vtb's subsampling is dw_striding");
  c.must_be("self_attention_model", "rel_pos", {"rel_pos"}, "vtb's attention is rel_pos (Transformer-XL)");
  c.must_be("untie_biases", "true", {"true"}, "vtb keeps one pos_bias_u/v per layer (untie_biases: true)");
  c.must_be("conv_norm_type", "batch_norm", {"batch_norm"}, "vtb's conv module uses BatchNorm");
  c.must_be("att_context_size", "[-1, -1]", {"[-1, -1]", "null"}, "vtb attends over the whole utterance");
  c.must_be("causal_downsampling", "false", {"false"}, "vtb's subsampling is not causal");
  c.must_be("conv_context_size", "null", {"null"}, "vtb's convolutions are centred");
  c.must_be("use_bias", "true", {"true"}, "vtb's layers have biases");
  c.must_be("reduction", "null", {"null"}, "vtb has no reduction layer");
  c.must_be("stochastic_depth_drop_prob", "0.0", {"0.0", "0"}, "vtb has no stochastic depth");
  return c.mismatches();  // pos_emb_max_len is a bound on the table, not a weight: any value loads
}

std::vector<std::string> check_preprocessor(const std::map<std::string, std::string>& yaml, const std::string& prefix,
                                            const data::FeatureConfig& f) {
  YamlCheck c(yaml, prefix);
  const std::string target = c.value("_target_", "");
  if (target.find("AudioToMelSpectrogramPreprocessor") == std::string::npos)
    return {prefix + "_target_ = " + target + ": vtb's features are AudioToMelSpectrogramPreprocessor's"};
  c.same_number("sample_rate", "16000", f.sample_rate, "the sample rate (fixed)");
  const double rate = number(c.value("sample_rate", "16000")).value_or(f.sample_rate);
  c.same_number("window_size", "0.02", f.win_length, "the window (fixed, samples)", rate);
  c.same_number("window_stride", "0.01", f.hop, "the hop (fixed, samples)", rate);
  const double window = number(c.value("window_size", "0.02")).value_or(0) * rate;
  const double n_fft = std::exp2(std::ceil(std::log2(std::max(window, 1.0))));
  c.same_number("n_fft", std::to_string(static_cast<int64_t>(n_fft)), f.n_fft, "n_fft (fixed)");
  c.same_number("features", "64", f.n_mels, "features.n_mels");
  c.same_number("dither", "1e-05", f.dither, "features.dither");
  c.same_number("preemph", "0.97", f.preemph, "the pre-emphasis (fixed)");
  c.same_number("lowfreq", "0", f.fmin, "the lowest mel frequency (fixed)");
  c.same_number("highfreq", std::to_string(rate / 2), f.fmax, "the highest mel frequency (fixed)");
  c.same_number("log_zero_guard_value", std::to_string(std::exp2(-24)), f.log_guard, "the log guard (fixed)");
  c.same_number("mag_power", "2.0", 2.0, "the power spectrum (fixed)");
  c.same_number("frame_splicing", "1", 1, "frame splicing (none)");
  c.must_be("window", "hann", {"hann"}, "vtb's window is a symmetric Hann");
  c.must_be("normalize", "per_feature", {"per_feature"}, "vtb normalises per utterance and mel bin");
  c.must_be("log", "true", {"true"}, "vtb's features are log-mel");
  c.must_be("log_zero_guard_type", "add", {"add"}, "vtb adds the guard before the log");
  c.must_be("mel_norm", "slaney", {"slaney"}, "vtb's filterbank is Slaney-normalised");
  c.must_be("exact_pad", "false", {"false"}, "vtb centres the STFT (exact_pad: false)");
  return c.mismatches();
}

// "encoder." for an ASR model (EncDecCTCModel, Canary's EncDecMultiTaskModel), "perception.encoder." for a
// NeMo speech LLM.
std::string encoder_prefix(const std::map<std::string, std::string>& yaml, const std::string& source) {
  for (const std::string p : {"encoder.", "perception.encoder."})
    if (yaml.count(p + "_target_")) return p;
  throw ConfigError(source + ": model_config.yaml has no encoder (encoder._target_ or perception.encoder._target_)");
}

}  // namespace

int encoder_import_command(int argc, char** argv) {
  po::options_description options("Options");
  options.add_options()("nemo", po::value<std::string>(), "the .nemo file (e.g. a Canary or FastConformer ASR model)")(
      "out", po::value<std::string>(), "safetensors file to write (encoder.* tensors, for model.encoder)");
  const ParsedCommand cmd = parse_command(argc, argv, options);
  if (cmd.help) {
    std::cout << command_help(
        "vtb encoder import --config F --nemo model.nemo --out encoder.safetensors",
        "Reads a NeMo model archive in memory (nothing is extracted), checks its encoder and preprocessor settings "
        "against this config's encoder.* and features.* (every difference named, both sides), and writes the "
        "encoder's weights as model.encoder loads them. NeMo's decoder and tokenizer are not used.",
        options);
    return kExitOk;
  }
  require_options(cmd, {"nemo", "out"});
  setup_logging(0, "info", false);
  const Config config = Config::load(cmd.options["config"].as<std::string>(), cmd.overrides);
  const train::TrainSettings t = read_train_settings(config);
  const std::string file = cmd.options["nemo"].as<std::string>();
  const std::string out = cmd.options["out"].as<std::string>();

  model::NemoArchive archive = model::read_nemo_archive(file);
  const auto yaml = model::flatten_yaml(archive.config_yaml, file + ": model_config.yaml");
  const std::string prefix = encoder_prefix(yaml, file);
  const std::string pre_prefix = prefix.substr(0, prefix.size() - std::string("encoder.").size()) + "preprocessor.";
  std::vector<std::string> problems = check_encoder(yaml, prefix, t.model.config.encoder);
  for (const auto& p : check_preprocessor(yaml, pre_prefix, t.data.loader.features)) problems.push_back(p);
  if (!problems.empty()) {
    std::string message = file + ": model_config.yaml does not match this config (" + std::to_string(problems.size()) +
                          "); set the keys here to the file's values:";
    for (const auto& p : problems) message += "\n  " + p;
    throw ConfigError(message);
  }
  for (const std::string key : {"dropout", "dropout_pre_encoder", "dropout_emb", "dropout_att"})
    if (const auto v = number(YamlCheck(yaml, prefix).value(key, "0.1"));
        v && *v != t.model.config.encoder.conformer.dropout)
      spdlog::warn("{}{} = {} in the .nemo; vtb trains with encoder.dropout = {} for every dropout", prefix, key, *v,
                   t.model.config.encoder.conformer.dropout);

  std::vector<std::pair<std::string, at::Tensor>> encoder_tensors;
  {
    const auto all = model::read_torch_state_dict(archive.weights, file + ": model_weights.ckpt");
    archive.weights = {};
    for (const auto& [name, tensor] : all)
      if (name.rfind(prefix, 0) == 0) encoder_tensors.emplace_back("encoder." + name.substr(prefix.size()), tensor);
  }
  const model::SpeechLMConfig& m = t.model.config;
  model::SpeechEncoder encoder(m.encoder);
  model::load_encoder_tensors(encoder, m, encoder_tensors,
                              file + ": model_weights.ckpt does not fit this config's encoder (encoder.*):");
  const auto written = model::module_tensors(*encoder, "encoder.", /*buffers=*/true);
  int64_t parameters = 0;
  for (const auto& p : encoder->parameters()) parameters += p.numel();
  model::write_safetensors(out, written, {{"source", file}, {"format", "pt"}});
  spdlog::info("{}: {} encoder tensors ({} parameters) → {}", file, written.size(), parameters, out);
  spdlog::info(
      "features: a .nemo does not record the STFT padding; this config uses features.pad_mode = {} and "
      "features.frame_rule = {} (NeMo from July 2025 on: constant and floor; models trained before: reflect and "
      "plus_one)",
      choice_name(t.data.loader.features.pad_mode, data::kPadModes),
      choice_name(t.data.loader.features.frame_rule, data::kFrameRules));
  return kExitOk;
}

int encoder_forward_command(int argc, char** argv) {
  po::options_description options("Options");
  options.add_options()("encoder", po::value<std::string>(), "safetensors of the encoder (encoder.* tensors)")(
      "features", po::value<std::string>(), ".npy float32 [n_mels, frames] (vtb data features writes them)")(
      "out", po::value<std::string>(), "output .npy, float32 [frames', d_model]")(
      "cotangent", po::value<std::string>(), ".npy [frames', d_model]: also write d(sum(out * cotangent))/d(features)")(
      "grad-out", po::value<std::string>(), "where that gradient goes, .npy [n_mels, frames]");
  const ParsedCommand cmd = parse_command(argc, argv, options);
  if (cmd.help) {
    std::cout << command_help("vtb encoder forward --config F --encoder E.safetensors --features f.npy --out o.npy",
                              "Runs the speech encoder in evaluation mode (no dropout, BatchNorm's running statistics) "
                              "on one utterance's features, and optionally back-propagates a given cotangent.",
                              options);
    return kExitOk;
  }
  require_options(cmd, {"encoder", "features", "out"});
  if (cmd.options.count("cotangent") != cmd.options.count("grad-out"))
    throw ConfigError("--cotangent and --grad-out go together");
  setup_logging(0, "warn", false);
  const Config config = Config::load(cmd.options["config"].as<std::string>(), cmd.overrides);
  const train::TrainSettings t = read_train_settings(config);
  const model::SpeechLMConfig& m = t.model.config;
  model::SpeechEncoder encoder(m.encoder);
  const std::string file = cmd.options["encoder"].as<std::string>();
  const auto f = model::SafetensorsFile::open(file);
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& entry : f->header().tensors) tensors.emplace_back(entry.name, f->tensor(entry.name));
  model::load_encoder_tensors(encoder, m, tensors, file + " does not fit this config's encoder (encoder.*):");
  encoder->eval();

  at::Tensor features = read_npy(cmd.options["features"].as<std::string>());
  if (features.dim() != 2 || features.size(0) != m.encoder.n_mels)
    throw ConfigError("--features: expected [n_mels = " + std::to_string(m.encoder.n_mels) + ", frames], got " +
                      c10::str(features.sizes()));
  features = features.unsqueeze(0).requires_grad_(cmd.options.count("cotangent") > 0);
  const auto [frames, lengths] = encoder->forward(features, torch::tensor({features.size(2)}, torch::kLong));
  write_npy(cmd.options["out"].as<std::string>(), frames[0].detach().contiguous());
  if (cmd.options.count("cotangent")) {
    const at::Tensor cotangent = read_npy(cmd.options["cotangent"].as<std::string>());
    if (!cotangent.sizes().equals(frames[0].sizes()))
      throw ConfigError("--cotangent: expected " + c10::str(frames[0].sizes()) + ", got " +
                        c10::str(cotangent.sizes()));
    (frames[0] * cotangent).sum().backward();
    write_npy(cmd.options["grad-out"].as<std::string>(), features.grad()[0].contiguous());
  }
  return kExitOk;
}

}  // namespace vtb
