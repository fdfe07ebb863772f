// vtb train: single-stage joint SFT under mpirun/srun; resumes from the run folder's `latest`.
#include <spdlog/spdlog.h>

#include <iostream>

#include "dist/exit_codes.h"
#include "launch/command_line.h"
#include "launch/commands.h"
#include "launch/session.h"
#include "launch/train_settings.h"
#include "train/trainer.h"

namespace vtb {

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
  train::TrainSettings settings = read_train_settings(s.config);
  std::unique_ptr<dist::Communicator> checkpoint_comm;
  if (s.config.flag("ckpt.async")) {  // collective: every rank creates it
    checkpoint_comm = dist::make_communicator(s.config.str("run.device"), {s.config.real("dist.timeout_s")});
    settings.checkpoint_comm = checkpoint_comm.get();
  }
  return train::run_training(*s.comm, settings);
}

}  // namespace vtb
