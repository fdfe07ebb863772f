// SIGTERM and SIGUSR1 (Slurm's warning before a time limit, `scancel`) ask the run to stop at the next step
// boundary: the handler only sets a flag; the training loop agrees on it across ranks (an allreduce sum of
// the flags, so any rank asking stops every rank: train/checkpointer.h), commits a checkpoint and exits
// with kExitRequeue.
#pragma once

namespace vtb::train {

void install_stop_handlers();
bool stop_requested();

}  // namespace vtb::train
