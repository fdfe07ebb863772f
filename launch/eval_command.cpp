// vtb eval: decode a manifest with a trained checkpoint, sharded over the job's ranks, and score it.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "data/manifest.h"
#include "dist/exit_codes.h"
#include "eval/evaluation.h"
#include "launch/command_line.h"
#include "launch/commands.h"
#include "launch/session.h"
#include "launch/trained_model.h"

namespace vtb {

int eval_command(int argc, char** argv) {
  namespace po = boost::program_options;
  namespace fs = std::filesystem;
  po::options_description options("Options");
  options.add_options()("ckpt", po::value<std::string>(), "checkpoint folder, or a run folder (its latest)")(
      "manifest", po::value<std::string>(), "manifest to decode")(
      "kind", po::value<std::string>(), "asr (WER), ast (BLEU), sqa or text (exact match), mixed (exact match)")(
      "out", po::value<std::string>(), "folder for predictions.jsonl and metrics.json (default: <ckpt>/eval_<manifest>)")(
      "batch-size", po::value<int64_t>()->default_value(8), "prompts decoded together per rank")(
      "max-new-tokens", po::value<int64_t>()->default_value(64), "generation limit per prompt");
  ParsedCommand cmd = parse_command(argc, argv, options);
  if (cmd.help) {
    std::cout << command_help("mpirun -np N vtb eval --ckpt D --manifest M --kind asr|ast|sqa|text [--out DIR]",
                              "Greedy decoding (KV cache) of every example's last assistant turn from the turns before "
                              "it, sharded over ranks; prints and writes the task's metric and the predictions.",
                              options);
    return kExitOk;
  }
  for (const char* required : {"ckpt", "manifest", "kind"})
    if (!cmd.options.count(required)) throw ConfigError(std::string("--") + required + " is required");
  const std::string folder = resolve_checkpoint(cmd.options["ckpt"].as<std::string>());
  Session s = start_session(&argc, &argv, checkpoint_config(folder, cmd.overrides), folder);
  TrainedModel t = load_trained_model(s.config, folder);
  const data::Tokenizer& tok = t.tokenizer;
  t.lm->to(s.comm->device());

  const std::string kind = cmd.options["kind"].as<std::string>();
  data::ManifestOptions mo;
  mo.kind = data::parse_source_kind(kind);
  mo.min_duration = 0;
  mo.max_duration = 1e9;  // evaluate everything the manifest holds
  const data::Manifest manifest = data::read_manifest(cmd.options["manifest"].as<std::string>(), mo);

  eval::EvalOptions eo;
  eo.kind = kind;
  eo.batch_size = cmd.options["batch-size"].as<int64_t>();
  eo.decode.max_new_tokens = cmd.options["max-new-tokens"].as<int64_t>();
  eo.decode.stop_ids = {tok.special().end_of_turn, tok.special().eos};
  eo.decode.vocab_limit = tok.vocab_size();
  eo.features = t.settings.loader.features;
  const eval::EvalResult r = eval::evaluate(*s.comm, t.lm, tok, manifest.examples, eo);

  if (s.world->rank == 0) {
    const fs::path out = cmd.options.count("out") ? fs::path(cmd.options["out"].as<std::string>())
                                                  : fs::path(folder) / ("eval_" + fs::path(cmd.options["manifest"].as<std::string>()).stem().string());
    fs::create_directories(out);
    std::ofstream predictions(out / "predictions.jsonl");
    for (const auto& p : r.predictions)
      predictions << nlohmann::json{{"origin", p.origin}, {"reference", p.reference}, {"hypothesis", p.hypothesis}}.dump() << "\n";
    nlohmann::json metrics{{"checkpoint", folder}, {"manifest", cmd.options["manifest"].as<std::string>()}, {"kind", kind},
                           {"examples", r.predictions.size()}, {r.metric, r.value}, {"ranks", s.world->size}};
    if (!r.detail.empty()) metrics["signature"] = r.detail;
    std::ofstream(out / "metrics.json") << metrics.dump(2) << "\n";
    spdlog::info("{} on {} examples: {} = {:.4f} {} (written to {})", kind, r.predictions.size(), r.metric, r.value,
                 r.detail, out.string());
  }
  return kExitOk;
}

}  // namespace vtb
