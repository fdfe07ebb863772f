// vtb eval: decode a manifest with a trained checkpoint, sharded over the job's ranks, and score it.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <utility>

#include "data/manifest.h"
#include "dist/exit_codes.h"
#include "eval/evaluation.h"
#include "launch/command_line.h"
#include "launch/commands.h"
#include "launch/decode_options.h"
#include "launch/session.h"
#include "launch/trained_model.h"

namespace vtb {

namespace {}  // namespace

int eval_command(int argc, char** argv) {
  namespace po = boost::program_options;
  namespace fs = std::filesystem;
  po::options_description options("Options");
  options.add_options()("ckpt", po::value<std::string>(),
                        "checkpoint folder, or a run folder (its latest); without it, --config's untrained model "
                        "(the base LLM of model.llm with fresh LoRA, i.e. the base itself on text)")(
      "manifest", po::value<std::string>(), "manifest to decode")(
      "kind", po::value<std::string>(),
      "asr (WER), ast (BLEU), sqa (ROUGE-L, exact match), text or mixed (exact match)")(
      "out", po::value<std::string>(),
      "folder for predictions.jsonl and metrics.json (default: <ckpt>/eval_<manifest>)")(
      "batch-size", po::value<int64_t>()->default_value(8), "prompts decoded together per rank");
  add_decode_options(options, 64, /*sampling=*/false);
  ParsedCommand cmd = parse_command(argc, argv, options);
  if (cmd.help) {
    std::cout << command_help(
        "mpirun -np N vtb eval --ckpt D|--config F --manifest M --kind asr|ast|sqa|text [--out DIR]",
        "Greedy decoding or beam search (KV cache) of every example's last assistant turn from the turns before "
        "it, sharded over ranks; prints and writes the task's metric and the predictions.",
        options);
    return kExitOk;
  }
  require_options(cmd, {"manifest", "kind"});
  const std::string config_file = cmd.options["config"].as<std::string>();
  const bool has_ckpt = cmd.options.count("ckpt") > 0, has_config = !config_file.empty();
  if (has_ckpt == has_config)
    throw ConfigError(
        "give exactly one of --ckpt (a trained checkpoint; its stored config is used) and --config (the "
        "untrained model the config describes)");
  // Untrained: the model the config describes, as training starts from it.
  const std::string folder = cmd.options.count("ckpt") ? resolve_checkpoint(cmd.options["ckpt"].as<std::string>()) : "";
  Session s = folder.empty() ? start_session(&argc, &argv, config_file, cmd.overrides)
                             : start_session(&argc, &argv, checkpoint_config(folder, cmd.overrides), folder);
  TrainedModel t = load_trained_model(s.config, folder);
  const data::Tokenizer& tok = t.tokenizer;
  t.lm->to(s.comm->device());

  const std::string kind = cmd.options["kind"].as<std::string>();
  const data::Task task = parse_choice<data::Task>("--kind", kind, data::kTasks);
  data::ManifestOptions mo;
  mo.kind = data::source_kind(task);
  mo.min_duration = 0;
  mo.max_duration = 1e9;                      // evaluate everything the manifest holds
  mo.skip_bad_lines = t.data.skip_bad_lines;  // data.on_error
  const data::Manifest manifest = data::read_manifest(cmd.options["manifest"].as<std::string>(), mo);

  eval::EvalOptions eo;
  eo.task = task;
  eo.batch_size = cmd.options["batch-size"].as<int64_t>();
  eo.decode = read_decode_options(cmd, tok, t.lm->llm->config().max_positions);
  eo.features = t.data.loader.features;
  eo.skip_bad_audio = t.data.loader.skip_bad_audio;
  const eval::EvalResult r = eval::evaluate(*s.comm, t.lm, tok, manifest.examples, eo);

  if (s.world->rank == 0) {
    const std::string manifest_path = cmd.options["manifest"].as<std::string>();
    const std::string stem = "eval_" + fs::path(manifest_path).stem().string();
    const fs::path out = cmd.options.count("out") ? fs::path(cmd.options["out"].as<std::string>())
                         : folder.empty()         ? fs::path(s.config.str("run.dir")) / ("untrained_" + stem)
                                                  : fs::path(folder) / stem;
    const std::string model = folder.empty() ? "untrained (" + config_file + ")" : folder;
    eval::write_results(out.string(), r,
                        {{"checkpoint", model}, {"manifest", manifest_path}, {"kind", kind}, {"ranks", s.world->size}});
  }
  return kExitOk;
}

}  // namespace vtb
