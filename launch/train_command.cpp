// vtb train: single-stage joint SFT under mpirun/srun; resumes from the run folder's `latest`.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <stdexcept>

#include "ckpt/commit.h"
#include "ckpt/run_lock.h"
#include "dist/exit_codes.h"
#include "launch/command_line.h"
#include "launch/commands.h"
#include "launch/session.h"
#include "launch/train_settings.h"
#include "launch/trained_model.h"
#include "train/trainer.h"

namespace vtb {
namespace {

// Every rank checks at start that it can write into the run folder: found at the first checkpoint, a
// read-only or missing mount would cost every step before it.
void check_writable(const std::string& run_dir, int rank) {
  namespace fs = std::filesystem;
  std::error_code error;
  fs::create_directories(run_dir, error);
  const fs::path probe = fs::path(run_dir) / (".write_probe_rank_" + std::to_string(rank));
  std::ofstream(probe) << "vtb\n";
  if (error || !fs::exists(probe))
    throw std::runtime_error("run.dir " + run_dir + " is not writable from rank " + std::to_string(rank) + " (" +
                             dist::world().host + ")" + (error ? ": " + error.message() : std::string()));
  fs::remove(probe, error);
}

}  // namespace

int train_command(int argc, char** argv) {
  boost::program_options::options_description options("Options");
  ParsedCommand cmd = parse_command(argc, argv, options);
  if (cmd.help) {
    std::cout << command_help("mpirun -np N vtb train --config F [--run.dir D] [--section.key=value ...]",
                              "Joint speech-text SFT in one stage: frozen LLM + LoRA, trained encoder and adapter, "
                              "batches drawn from the weighted data.source mix. Resumes from D/latest when it exists. "
                              "Exit code 75 after SIGTERM/SIGUSR1 means: checkpoint committed, requeue me.",
                              options);
    return kExitOk;
  }
  Session s = start_session(&argc, &argv, cmd.options["config"].as<std::string>(), cmd.overrides);
  const train::TrainSettings settings = read_train_settings(s.config);
  check_writable(settings.run_dir, s.world->rank);
  // One job per run folder (Note [One job per run folder]): rank 0 holds the lock until this job ends; every
  // rank learns of a refusal, so none waits in a collective for a rank 0 that has gone.
  std::optional<ckpt::RunFolderLock> lock;
  std::string refusal;
  if (s.world->rank == 0) try {
      lock.emplace(ckpt::RunFolderLock::acquire(settings.run_dir, dist::world().host));
    } catch (const ckpt::RunFolderBusy& e) {
      refusal = e.what();
    }
  if (dist::any_rank(*s.comm, !refusal.empty()))
    throw std::runtime_error(
        s.world->rank == 0 ? refusal : "run.dir " + settings.run_dir + " is in use by another job (rank 0 names it)");
  train::RunContext context;
  context.config_text = s.config.resolved_ini();
  // The run folder's `latest`, resolved once. A resume continues the model it saved: refused here, naming
  // each key, if the config now builds another.
  context.resume_from = ckpt::latest_checkpoint(settings.run_dir);
  if (!context.resume_from.empty())
    check_against_checkpoint(context.resume_from, checkpoint_config(context.resume_from, {}), s.config);
  std::unique_ptr<dist::Communicator> checkpoint_comm;
  if (s.config.flag("ckpt.async"))  // collective: every rank creates it
    checkpoint_comm = dist::make_communicator(s.config.str("run.device"), {s.config.real("dist.timeout_s")});
  context.checkpoint_comm = checkpoint_comm.get();
  return train::run_training(*s.comm, settings, context);
}

}  // namespace vtb
