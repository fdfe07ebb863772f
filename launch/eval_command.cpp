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
#include "launch/session.h"
#include "launch/trained_model.h"

namespace vtb {

namespace {

// Writes predictions.jsonl and metrics.json (`about` and the result's metrics) into `out`, and logs the result.
void write_results(const std::filesystem::path& out, const eval::EvalResult& r, nlohmann::json about) {
  std::filesystem::create_directories(out);
  std::ofstream predictions(out / "predictions.jsonl");
  for (const auto& p : r.predictions)
    predictions << nlohmann::json{{"origin", p.origin}, {"reference", p.reference}, {"hypothesis", p.hypothesis}}.dump()
                << "\n";
  nlohmann::json metrics = std::move(about);
  metrics["examples"] = r.predictions.size();
  metrics[r.metric] = r.value;
  for (const auto& [name, value] : r.also) metrics[name] = value;
  if (!r.detail.empty()) metrics["signature"] = r.detail;
  std::ofstream(out / "metrics.json") << metrics.dump(2) << "\n";
  std::string also;
  for (const auto& [name, value] : r.also) also += fmt::format(", {} = {:.4f}", name, value);
  spdlog::info("{} on {} examples: {} = {:.4f}{} {} (written to {})", metrics.value("kind", ""), r.predictions.size(),
               r.metric, r.value, also, r.detail, out.string());
}

}  // namespace

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
      "batch-size", po::value<int64_t>()->default_value(8), "prompts decoded together per rank")(
      "max-new-tokens", po::value<int64_t>()->default_value(64), "generation limit per prompt")(
      "beams", po::value<int64_t>()->default_value(1), "beam search with this many beams (1 = greedy)")(
      "length-penalty", po::value<double>()->default_value(1), "beam search: rank by log p / length^this");
  ParsedCommand cmd = parse_command(argc, argv, options);
  if (cmd.help) {
    std::cout << command_help(
        "mpirun -np N vtb eval --ckpt D|--config F --manifest M --kind asr|ast|sqa|text [--out DIR]",
        "Greedy decoding or beam search (KV cache) of every example's last assistant turn from the turns before "
        "it, sharded over ranks; prints and writes the task's metric and the predictions.",
        options);
    return kExitOk;
  }
  for (const char* required : {"manifest", "kind"})
    if (!cmd.options.count(required)) throw ConfigError(std::string("--") + required + " is required");
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
  mo.max_duration = 1e9;  // evaluate everything the manifest holds
  const data::Manifest manifest = data::read_manifest(cmd.options["manifest"].as<std::string>(), mo);

  eval::EvalOptions eo;
  eo.task = task;
  eo.batch_size = cmd.options["batch-size"].as<int64_t>();
  eo.decode.max_new_tokens = cmd.options["max-new-tokens"].as<int64_t>();
  eo.decode.beams = cmd.options["beams"].as<int64_t>();
  eo.decode.length_penalty = cmd.options["length-penalty"].as<double>();
  if (eo.decode.beams < 1) throw ConfigError("--beams must be at least 1");
  eo.decode.stop_ids = {tok.special().end_of_turn, tok.special().eos};
  eo.decode.vocab_limit = tok.vocab_size();
  eo.features = t.settings.loader.features;
  const eval::EvalResult r = eval::evaluate(*s.comm, t.lm, tok, manifest.examples, eo);

  if (s.world->rank == 0) {
    const std::string manifest_path = cmd.options["manifest"].as<std::string>();
    const std::string stem = "eval_" + fs::path(manifest_path).stem().string();
    const fs::path out = cmd.options.count("out") ? fs::path(cmd.options["out"].as<std::string>())
                         : folder.empty()         ? fs::path(s.config.str("run.dir")) / ("untrained_" + stem)
                                                  : fs::path(folder) / stem;
    const std::string model = folder.empty() ? "untrained (" + config_file + ")" : folder;
    write_results(out, r,
                  {{"checkpoint", model}, {"manifest", manifest_path}, {"kind", kind}, {"ranks", s.world->size}});
  }
  return kExitOk;
}

}  // namespace vtb
