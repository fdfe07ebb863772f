// vtb metrics wer|bleu: corpus scores of hypothesis and reference files, one sentence per line.
#include <spdlog/fmt/fmt.h>

#include <fstream>
#include <iostream>

#include "dist/exit_codes.h"
#include "eval/metrics.h"
#include "launch/command_line.h"
#include "launch/commands.h"
#include "launch/config.h"

namespace vtb {
namespace po = boost::program_options;
namespace {

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError("cannot open " + path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

ParsedCommand parse_metric(int argc, char** argv, po::options_description& options, const char* usage,
                           const char* what) {
  options.add_options()("hyp", po::value<std::string>(), "hypotheses, one per line")(
      "ref", po::value<std::vector<std::string>>(), "references, one per line (repeat for several reference streams)");
  ParsedCommand cmd = parse_command(argc, argv, options);
  if (cmd.help)
    std::cout << command_help(usage, what, options);
  else if (!cmd.options.count("hyp") || !cmd.options.count("ref"))
    throw ConfigError(std::string("usage: ") + usage);
  return cmd;
}

}  // namespace

int metrics_wer_command(int argc, char** argv) {
  po::options_description options("Options");
  options.add_options()("no-normalize", "score the raw text (default: the English normaliser on both sides)");
  const ParsedCommand cmd = parse_metric(argc, argv, options, "vtb metrics wer --hyp H --ref R [--no-normalize]",
                                         "Corpus WER: total word edits / total reference words.");
  if (cmd.help) return kExitOk;
  eval::WordErrors e;
  const double wer =
      eval::corpus_wer(read_lines(cmd.options["ref"].as<std::vector<std::string>>().front()),
                       read_lines(cmd.options["hyp"].as<std::string>()), !cmd.options.count("no-normalize"), &e);
  std::cout << fmt::format("WER {:.2f} %  ({} substitutions, {} deletions, {} insertions / {} reference words)\n",
                           100 * wer, e.substitutions, e.deletions, e.insertions, e.reference_words());
  return kExitOk;
}

int metrics_bleu_command(int argc, char** argv) {
  po::options_description options("Options");
  const ParsedCommand cmd = parse_metric(argc, argv, options, "vtb metrics bleu --hyp H --ref R [--ref R2 ...]",
                                         "Corpus BLEU as sacreBLEU computes it by default (13a, exp smoothing).");
  if (cmd.help) return kExitOk;
  std::vector<std::vector<std::string>> refs;
  for (const auto& r : cmd.options["ref"].as<std::vector<std::string>>()) refs.push_back(read_lines(r));
  const eval::BleuScore b = eval::corpus_bleu(read_lines(cmd.options["hyp"].as<std::string>()), refs);
  std::cout << fmt::format(
      "BLEU = {:.2f} {:.1f}/{:.1f}/{:.1f}/{:.1f} (BP = {:.3f} ratio = {:.3f} hyp_len = {} ref_len = {})  {}\n", b.score,
      100.0 * b.matches[0] / std::max(1L, b.totals[0]), 100.0 * b.matches[1] / std::max(1L, b.totals[1]),
      100.0 * b.matches[2] / std::max(1L, b.totals[2]), 100.0 * b.matches[3] / std::max(1L, b.totals[3]),
      b.brevity_penalty, b.ref_len ? static_cast<double>(b.sys_len) / b.ref_len : 0.0, b.sys_len, b.ref_len,
      b.signature);
  return kExitOk;
}

}  // namespace vtb
