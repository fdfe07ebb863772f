// vtb ckpt inspect|verify|diff: read, checksum and compare checkpoints.
#include <spdlog/fmt/fmt.h>

#include <filesystem>
#include <iostream>

#include "ckpt/checkpoint_tools.h"
#include "ckpt/commit.h"
#include "dist/exit_codes.h"
#include "launch/command_line.h"
#include "launch/commands.h"
#include "launch/config.h"
#include "launch/trained_model.h"
#include "train/export.h"

namespace vtb {
namespace po = boost::program_options;
namespace {

ParsedCommand parse_folders(int argc, char** argv, int count, const char* usage, const char* what) {
  po::options_description options("Options");
  options.add_options()("help,h", "show this help")("folder", po::value<std::vector<std::string>>(),
                                                    "checkpoint folder(s) or run folder(s)");
  po::positional_options_description positional;
  positional.add("folder", count);
  ParsedCommand cmd;
  try {
    po::store(po::command_line_parser(argc, argv).options(options).positional(positional).run(), cmd.options);
  } catch (const po::error& e) {
    throw ConfigError(std::string("command line: ") + e.what());
  }
  cmd.help = cmd.options.count("help") > 0;
  if (cmd.help)
    std::cout << command_help(usage, what, options);
  else if (!cmd.options.count("folder") ||
           cmd.options["folder"].as<std::vector<std::string>>().size() != static_cast<size_t>(count))
    throw ConfigError(std::string("usage: ") + usage);
  return cmd;
}

}  // namespace

int ckpt_inspect_command(int argc, char** argv) {
  const ParsedCommand cmd =
      parse_folders(argc, argv, 1, "vtb ckpt inspect FOLDER",
                    "Prints every file, dataset (dtype, shape) and training attribute of a checkpoint.");
  if (cmd.help) return kExitOk;
  ckpt::inspect_checkpoint(resolve_checkpoint(cmd.options["folder"].as<std::vector<std::string>>()[0]), std::cout);
  return kExitOk;
}

int ckpt_verify_command(int argc, char** argv) {
  const ParsedCommand cmd = parse_folders(argc, argv, 1, "vtb ckpt verify FOLDER",
                                          "Reads every dataset (fletcher32 checksums) and checks the structure.");
  if (cmd.help) return kExitOk;
  const std::string folder = resolve_checkpoint(cmd.options["folder"].as<std::vector<std::string>>()[0]);
  const auto problems = ckpt::verify_checkpoint(folder);
  for (const auto& p : problems) std::cout << "FAIL " << p << "\n";
  std::cout << folder << ": " << (problems.empty() ? "ok" : std::to_string(problems.size()) + " problem(s)") << "\n";
  return problems.empty() ? kExitOk : kExitError;
}

int ckpt_diff_command(int argc, char** argv) {
  const ParsedCommand cmd =
      parse_folders(argc, argv, 2, "vtb ckpt diff A B",
                    "Per-tensor max |A - B| over the model and optimizer tensors of two checkpoints.");
  if (cmd.help) return kExitOk;
  const auto folders = cmd.options["folder"].as<std::vector<std::string>>();
  std::vector<std::string> only_a, only_b;
  const auto diffs =
      ckpt::diff_checkpoints(resolve_checkpoint(folders[0]), resolve_checkpoint(folders[1]), only_a, only_b);
  size_t differing = 0;
  for (const auto& d : diffs) {
    if (d.max_abs == 0) continue;
    ++differing;
    std::cout << fmt::format("{:<70} {}\n", d.name,
                             d.max_abs < 0 ? std::string("shapes differ") : fmt::format("{:.3e}", d.max_abs));
  }
  for (const auto& n : only_a) std::cout << "only in A: " << n << "\n";
  for (const auto& n : only_b) std::cout << "only in B: " << n << "\n";
  std::cout << diffs.size() << " tensors compared, " << differing << " differ, " << only_a.size() + only_b.size()
            << " in one only\n";
  return differing == 0 && only_a.empty() && only_b.empty() ? kExitOk : kExitError;
}

int ckpt_export_command(int argc, char** argv) {
  po::options_description options("Options");
  options.add_options()("out", po::value<std::string>(), "output folder")(
      "merged", "also write the LLM with LoRA merged, in Hugging Face layout")(
      "force", "export into a folder that is not empty, first removing what an export writes there");
  ParsedCommand cmd = parse_command(argc, argv, options);
  if (cmd.help) {
    std::cout << command_help("vtb ckpt export CHECKPOINT --out DIR [--merged] [--force] [--section.key=value ...]",
                              "Writes the LoRA as a Hugging Face PEFT adapter (adapter/), the speech modules as "
                              "speech.safetensors, and with --merged the LoRA-merged LLM (merged/). The model is "
                              "rebuilt from the config stored in the checkpoint; keys given here override it (e.g. "
                              "--model.llm when the base moved).",
                              options);
    return kExitOk;
  }
  // The checkpoint folder is the one argument that is neither an option nor a config key.
  std::string folder;
  for (int i = 1; i < argc; ++i)
    if (argv[i][0] != '-' && (i == 1 || std::string(argv[i - 1]) != "--out")) folder = argv[i];
  if (folder.empty() || !cmd.options.count("out")) throw ConfigError("usage: vtb ckpt export CHECKPOINT --out DIR");
  const std::string out = cmd.options["out"].as<std::string>();
  // Into a used folder an export would mix with what is there (a stale merged/ beside a new adapter/).
  namespace fs = std::filesystem;
  if (fs::exists(out) && !fs::is_empty(out)) {
    if (!cmd.options.count("force"))
      throw ConfigError("--out " + out + " is not empty: choose a new folder, or add --force to replace " +
                        "what an export writes there (adapter/, speech.safetensors, merged/)");
    for (const char* part : {"adapter", "speech.safetensors", "merged"}) fs::remove_all(fs::path(out) / part);
  }
  folder = resolve_checkpoint(folder);
  TrainedModel t = load_trained_model(checkpoint_config(folder, cmd.overrides), folder);
  train::export_checkpoint(t.lm, out, t.model.llm_dir, cmd.options.count("merged") > 0);
  std::cout << "exported " << folder << " to " << out << "\n";
  return kExitOk;
}

}  // namespace vtb
