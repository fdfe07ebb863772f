// vtb lm logits: float32 [T, V] logits of a Hugging Face-layout model, for checking the loader and the
// decoder math against other implementations.
#include <torch/torch.h>

#include <iostream>
#include <sstream>

#include "dist/exit_codes.h"
#include "launch/command_line.h"
#include "launch/commands.h"
#include "launch/config.h"
#include "launch/npy.h"
#include "model/decoder_lm.h"

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

}  // namespace

int lm_logits_command(int argc, char** argv) {
  namespace po = boost::program_options;
  po::options_description options("Options");
  options.add_options()("model", po::value<std::string>(), "Hugging Face model folder (config.json + *.safetensors)")(
      "ids", po::value<std::string>(), "comma-separated token ids")("out", po::value<std::string>(), "output .npy")(
      "dtype", po::value<std::string>()->default_value("float32"), "compute dtype: float32 or bfloat16");
  const ParsedCommand cmd = parse_command(argc, argv, options);
  if (cmd.help) {
    std::cout << command_help("vtb lm logits --model HF_DIR --ids 2,5,7 --out x.npy",
                              "Runs the decoder LLM on one sequence and writes its logits, float32 [T, vocab], as .npy.",
                              options);
    return kExitOk;
  }
  for (const char* required : {"model", "ids", "out"})
    if (!cmd.options.count(required)) throw ConfigError(std::string("--") + required + " is required");
  const std::string dtype_name = cmd.options["dtype"].as<std::string>();
  if (dtype_name != "float32" && dtype_name != "bfloat16") throw ConfigError("--dtype must be float32 or bfloat16");
  const at::ScalarType dtype = dtype_name == "float32" ? at::kFloat : at::kBFloat16;

  const std::vector<int64_t> ids = parse_ids(cmd.options["ids"].as<std::string>());
  model::DecoderLM lm = model::load_hf_decoder(cmd.options["model"].as<std::string>(), {}, dtype);
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
