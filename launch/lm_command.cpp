// vtb lm logits: float32 [T, V] logits of a Hugging Face-layout model, for checking the loader and the
// decoder math against other implementations.
#include <torch/torch.h>

#include <iostream>
#include <optional>
#include <sstream>

#include "dist/exit_codes.h"
#include "launch/command_line.h"
#include "launch/commands.h"
#include "launch/config.h"
#include "launch/logging.h"
#include "launch/npy.h"
#include "launch/session.h"
#include "launch/train_settings.h"
#include "launch/trained_model.h"
#include "model/decoder_lm.h"
#include "train/pretrain_encoder.h"
#include "train/pretrain_lm.h"

namespace vtb {
namespace {

std::vector<int64_t> parse_ids(const std::string& text) {
  std::vector<int64_t> ids;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      size_t used = 0;
      ids.push_back(std::stoll(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw ConfigError("--ids: '" + item + "' is not an integer (expected e.g. --ids 2,5,7)");
    }
  }
  if (ids.empty()) throw ConfigError("--ids: give at least one token id");
  return ids;
}

// --steps and --lr of the pretraining commands: warmup over a tenth of the steps (at most 50), cosine down
// to lr / floor_divisor, clipping as train.clip.
train::PretrainSchedule pretrain_schedule(const ParsedCommand& cmd, const train::TrainSettings& t,
                                          double floor_divisor) {
  train::PretrainSchedule s;
  s.steps = cmd.options["steps"].as<int64_t>();
  if (s.steps < 1) throw ConfigError("--steps must be at least 1");
  s.lr = cmd.options["lr"].as<double>();
  s.lr_min = s.lr / floor_divisor;
  s.warmup_steps = std::min<int64_t>(50, s.steps / 10);
  s.log_every = std::max<int64_t>(1, std::min<int64_t>(50, s.steps / 10));
  s.clip = t.schedule.clip;
  return s;
}

}  // namespace

int lm_logits_command(int argc, char** argv) {
  namespace po = boost::program_options;
  po::options_description options("Options");
  options.add_options()("model", po::value<std::string>(), "Hugging Face model folder (config.json + *.safetensors)")(
      "ckpt", po::value<std::string>(), "or a vtb checkpoint (or run folder): its LLM with the trained LoRA")(
      "ids", po::value<std::string>(), "comma-separated token ids")("out", po::value<std::string>(), "output .npy")(
      "dtype", po::value<std::string>()->default_value("float32"), "compute dtype: float32 or bfloat16");
  const ParsedCommand cmd = parse_command(argc, argv, options);
  if (cmd.help) {
    std::cout << command_help(
        "vtb lm logits --model HF_DIR | --ckpt D --ids 2,5,7 --out x.npy",
        "Runs the decoder LLM on one sequence and writes its logits, float32 [T, vocab], as .npy: a Hugging Face "
        "folder as it is, or a checkpoint's LLM with its LoRA applied (not merged).",
        options);
    return kExitOk;
  }
  require_options(cmd, {"ids", "out"});
  if (cmd.options.count("model") == cmd.options.count("ckpt"))
    throw ConfigError("give exactly one of --model HF_DIR and --ckpt CHECKPOINT");
  const std::string dtype_name = cmd.options["dtype"].as<std::string>();
  if (dtype_name != "float32" && dtype_name != "bfloat16") throw ConfigError("--dtype must be float32 or bfloat16");
  const at::ScalarType dtype = dtype_name == "float32" ? at::kFloat : at::kBFloat16;

  const std::vector<int64_t> ids = parse_ids(cmd.options["ids"].as<std::string>());
  model::DecoderLM lm{nullptr};
  std::optional<TrainedModel> trained;  // owns the SpeechLM whose LLM `lm` is
  if (cmd.options.count("model")) {
    lm = model::load_hf_decoder(cmd.options["model"].as<std::string>(), {}, dtype);
  } else {
    setup_logging(0, "warn", false);
    const std::string folder = resolve_checkpoint(cmd.options["ckpt"].as<std::string>());
    trained.emplace(load_trained_model(checkpoint_config(folder, cmd.overrides), folder));
    lm = trained->lm->llm;
    lm->to(dtype);
  }
  lm->eval();
  for (int64_t id : ids)
    if (id < 0 || id >= lm->config().vocab)
      throw ConfigError("--ids: " + std::to_string(id) + " is outside the vocabulary [0, " +
                        std::to_string(lm->config().vocab) + ")");
  torch::NoGradGuard no_grad;
  at::Tensor logits = lm->forward(torch::tensor(ids, torch::kLong).unsqueeze(0))[0].to(torch::kFloat);
  write_npy(cmd.options["out"].as<std::string>(), logits);
  return kExitOk;
}

}  // namespace vtb

namespace vtb {

int lm_pretrain_command(int argc, char** argv) {
  namespace po = boost::program_options;
  po::options_description options("Options");
  options.add_options()(
      "corpus", po::value<std::vector<std::string>>()->composing(),
      "JSONL of {\"text\"} or {\"conversations\"} documents (repeatable; default data/synth/lm_train.jsonl)")(
      "out", po::value<std::string>(), "Hugging Face folder to write (config.json + model.safetensors)")(
      "steps", po::value<int64_t>()->default_value(600), "optimizer steps")(
      "batch", po::value<int64_t>()->default_value(32), "documents per rank per step")(
      "lr", po::value<double>()->default_value(3e-3), "peak learning rate (warmup, then cosine to lr/30)");
  ParsedCommand cmd = parse_command(argc, argv, options);
  if (cmd.help) {
    std::cout << command_help("mpirun -np N vtb lm pretrain --config F --out DIR [--corpus FILE ...]",
                              "Trains every weight of the LLM that llm.* describes on text documents and saves it in "
                              "Hugging Face layout: the stand-in for a downloaded LLM, loaded back with model.llm=DIR.",
                              options);
    return kExitOk;
  }
  require_options(cmd, {"out"});
  Session s = start_session(&argc, &argv, cmd.options["config"].as<std::string>(), cmd.overrides);
  const train::TrainSettings t = read_train_settings(s.config);
  if (!t.model.llm_dir.empty())
    throw ConfigError("lm pretrain builds a new LLM from llm.*, but model.llm names one (" + t.model.llm_dir +
                      "); pass --model.llm= to pretrain");
  train::PretrainSettings p;
  p.llm = t.model.config.llm;
  p.tokenizer = t.data.tokenizer;
  p.audio_piece = t.data.audio_piece;
  p.corpora = cmd.options.count("corpus") ? cmd.options["corpus"].as<std::vector<std::string>>()
                                          : std::vector<std::string>{"data/synth/lm_train.jsonl"};
  p.out_dir = cmd.options["out"].as<std::string>();
  p.seed = t.seed;
  p.batch = cmd.options["batch"].as<int64_t>();
  p.schedule = pretrain_schedule(cmd, t, 30);
  p.adamw = t.schedule.adamw;
  p.buckets = t.parallel.buckets;
  if (p.batch < 1) throw ConfigError("--batch must be at least 1");
  train::pretrain_lm(*s.comm, p);
  return kExitOk;
}

}  // namespace vtb

namespace vtb {

int encoder_pretrain_command(int argc, char** argv) {
  namespace po = boost::program_options;
  po::options_description options("Options");
  options.add_options()("out", po::value<std::string>(), "safetensors file to write (encoder.* tensors)")(
      "steps", po::value<int64_t>()->default_value(600), "optimizer steps")(
      "lr", po::value<double>()->default_value(2e-3), "peak learning rate (warmup, then cosine to lr/20)");
  ParsedCommand cmd = parse_command(argc, argv, options);
  if (cmd.help) {
    std::cout << command_help("mpirun -np N vtb encoder pretrain --config F --out encoder.safetensors",
                              "Trains the speech encoder that encoder.* describes with a CTC head on the config's asr "
                              "sources (batches, features and SpecAugment as in training) and saves it: the stand-in "
                              "for a pretrained ASR encoder, loaded by joint SFT with model.encoder=FILE.",
                              options);
    return kExitOk;
  }
  require_options(cmd, {"out"});
  Session s = start_session(&argc, &argv, cmd.options["config"].as<std::string>(), cmd.overrides);
  const train::TrainSettings t = read_train_settings(s.config);
  train::EncoderPretrainSettings e;
  e.encoder = t.model.config.encoder;
  e.data = t.data;
  e.buckets = t.parallel.buckets;
  e.adamw = t.schedule.adamw;
  e.seed = t.seed;
  e.out_file = cmd.options["out"].as<std::string>();
  e.schedule = pretrain_schedule(cmd, t, 20);
  train::pretrain_encoder_ctc(*s.comm, e);
  return kExitOk;
}

}  // namespace vtb
