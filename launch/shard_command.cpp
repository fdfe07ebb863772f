// vtb data shard, vtb data epoch: writing a corpus as tar shards, and reading one epoch of a source the way
// training does (every rank its part, through the batch loader) to check it and to time it.
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "data/batch_loader.h"
#include "data/data_settings.h"
#include "data/shard_writer.h"
#include "data/tokenizer.h"
#include "dist/exit_codes.h"
#include "launch/command_line.h"
#include "launch/commands.h"
#include "launch/config.h"
#include "launch/session.h"
#include "launch/train_settings.h"

namespace vtb {
namespace po = boost::program_options;

int data_shard_command(int argc, char** argv) {
  po::options_description options("Options");
  options.add_options()("format", po::value<std::string>(), "nemo_tarred, lhotse_shar or webdataset")(
      "in", po::value<std::string>(), "speech manifest (JSONL: audio_filepath, duration, answer, ...)")(
      "out", po::value<std::string>(), "output folder")("shard-size", po::value<int64_t>()->default_value(1000),
                                                        "examples per shard (the last shard holds the remainder)");
  const ParsedCommand cmd = parse_command(argc, argv, options);
  if (cmd.help) {
    std::cout << command_help(
        "vtb data shard --format nemo_tarred|lhotse_shar|webdataset --in manifest.jsonl --out DIR [--shard-size N]",
        "Writes a speech manifest and its audio as tar shards in the layout NeMo, Lhotse or WebDataset readers "
        "expect (README \"Sharded data\"); train from them with data.source = NAME KIND WEIGHT FORMAT:DIR.",
        options);
    return kExitOk;
  }
  require_options(cmd, {"format", "in", "out"});
  const auto layout =
      parse_choice<data::ShardLayout>("--format", cmd.options["format"].as<std::string>(), data::kShardLayouts);
  const auto start = std::chrono::steady_clock::now();
  const data::ShardWriteReport r =
      data::write_shards(layout, cmd.options["in"].as<std::string>(), cmd.options["out"].as<std::string>(),
                         cmd.options["shard-size"].as<int64_t>());
  std::cout << cmd.options["out"].as<std::string>() << ": " << r.examples << " examples in " << r.shards << " shards, "
            << r.bytes / 1e6 << " MB of audio, "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() << " s\n";
  return kExitOk;
}

int data_epoch_command(int argc, char** argv) {
  po::options_description options("Options");
  options.add_options()("source", po::value<std::string>(), "the data.source to read (default: the first)")(
      "out", po::value<std::string>(), "folder for rank_<r>.txt: each example read, in order (origin per line)")(
      "start-batch", po::value<int64_t>()->default_value(0),
      "begin as a run resumed after this many batches would (the data before it is not read)")(
      "max-batches", po::value<int64_t>()->default_value(0), "stop after this many batches (0 = the whole epoch)")(
      "resume-from", po::value<std::string>(),
      "R:K — begin as a run resumed on this job's ranks from a checkpoint that R ranks wrote after K batches "
      "would: read what those ranks left of the epoch (Note [Finishing an epoch on another number of ranks])");
  const ParsedCommand cmd = parse_command(argc, argv, options);
  if (cmd.help) {
    std::cout << command_help(
        "mpirun -np N vtb data epoch --config C [--source NAME] [--out DIR]",
        "Reads one epoch of a data source as training does — this rank's part, through the batch loader "
        "(audio decoded, features computed) — and reports examples/s and audio seconds/s; with --out, the "
        "examples each rank read. Checks a corpus before a long job, and times the data path.",
        options);
    return kExitOk;
  }
  Session s = start_session(&argc, &argv, cmd.options["config"].as<std::string>(), cmd.overrides);
  train::TrainSettings settings = read_train_settings(s.config);
  data::DataSettings& d = settings.data;
  if (d.sources.empty()) throw ConfigError("no data.source in the config: nothing to read");
  const std::string wanted =
      cmd.options.count("source") ? cmd.options["source"].as<std::string>() : d.sources.front().name;
  std::erase_if(d.sources, [&](const data::SourceSettings& src) { return src.name != wanted; });
  if (d.sources.empty()) throw ConfigError("--source: no data.source named '" + wanted + "'");
  const data::Tokenizer tok = data::Tokenizer::load(d.tokenizer, d.audio_piece);
  const int rank = s.comm->rank(), world = s.comm->size();
  std::vector<data::LoaderSource> sources = data::read_sources(d);
  std::vector<std::string> origins;  // for --out
  for (const auto& c : sources.at(0).examples) origins.push_back(c.origin);
  data::BatchLoader loader(std::move(sources), tok, d.limits, d.mix, d.loader, rank, world);
  const int64_t start_batch = cmd.options["start-batch"].as<int64_t>();
  const int64_t max_batches = cmd.options["max-batches"].as<int64_t>();
  if (start_batch > 0) loader.restore(loader.state_after(start_batch, rank, world));
  if (cmd.options.count("resume-from")) {
    const std::string spec = cmd.options["resume-from"].as<std::string>();
    const size_t colon = spec.find(':');
    int old_world = 0;
    int64_t steps = -1;
    try {
      old_world = std::stoi(spec.substr(0, colon));
      steps = colon == std::string::npos ? -1 : std::stoll(spec.substr(colon + 1));
    } catch (const std::exception&) {
    }
    if (old_world < 1 || steps < 0) throw ConfigError("--resume-from '" + spec + "': expected R:K, e.g. 2:10");
    if (start_batch > 0) throw ConfigError("--resume-from and --start-batch: give one (both say where to begin)");
    std::vector<data::SamplerState> old;
    for (int r = 0; r < old_world; ++r) old.push_back(loader.state_after(steps, r, old_world));
    bool traced = true;
    loader.restore(old_world == world ? old.at(static_cast<size_t>(rank)) : data::rescale_sampler_state(old, traced));
  }
  std::ofstream out;
  if (cmd.options.count("out")) {
    std::filesystem::create_directories(cmd.options["out"].as<std::string>());
    out.open(cmd.options["out"].as<std::string>() + "/rank_" + std::to_string(rank) + ".txt");
  }
  const int64_t epoch = loader.state().sources.at(0).epoch;
  const auto begin = std::chrono::steady_clock::now();
  double first_batch_s = 0, audio = 0;
  int64_t read = 0, batches = 0, skipped = 0;
  while (loader.state().sources.at(0).epoch == epoch && (max_batches == 0 || batches < max_batches)) {
    const data::Batch b = loader.next();
    if (batches++ == 0) first_batch_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    read += static_cast<int64_t>(b.examples.size());
    skipped += b.skipped;
    audio += b.audio_seconds;
    if (out.is_open())
      for (size_t e : b.examples) out << origins[e] << '\n';
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  std::cout << fmt::format(
      "rank {} of {}: source '{}', epoch {}: {} examples ({} skipped) in {} batches, {:.1f} s of audio, {:.2f} s: "
      "{:.1f} examples/s, {:.1f} audio s/s; first batch after {:.3f} s (start batch {})\n",
      rank, world, wanted, epoch, read, skipped, batches, audio, seconds, read / seconds, audio / seconds,
      first_batch_s, start_batch);
  return kExitOk;
}

}  // namespace vtb
