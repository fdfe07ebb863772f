// Fault injection for the crash, resume and bad-step tests (tests/e2e/resume_exact.sh, bad_steps.sh), read
// once from the environment; every hook is off (-1) unless its variable is set:
//   VTB_FAULT_KILL_AFTER_STEP=N      every rank SIGKILLs itself after step N (a crash between checkpoints)
//   VTB_FAULT_KILL_IN_CHECKPOINT=N   every rank SIGKILLs itself while writing checkpoint N (before commit)
//   VTB_FAULT_TERM_AT_STEP=N         the last rank receives SIGTERM during step N (as from Slurm)
//   VTB_FAULT_NAN_FROM_STEP=N        rank 0's loss is NaN from step N on (steps skipped, then the run stops)
#pragma once

#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdlib>

#include "train/train_step.h"

namespace vtb::train {

struct Faults {
  int64_t kill_after = -1, kill_in_checkpoint = -1, term_at = -1, nan_from = -1;

  static Faults from_environment() {
    auto read = [](const char* name) -> int64_t {
      const char* v = std::getenv(name);
      return v != nullptr ? std::atoll(v) : -1;
    };
    return {read("VTB_FAULT_KILL_AFTER_STEP"), read("VTB_FAULT_KILL_IN_CHECKPOINT"), read("VTB_FAULT_TERM_AT_STEP"),
            read("VTB_FAULT_NAN_FROM_STEP")};
  }

  // At the start of step `step` on rank `rank` of `world`.
  void before_step(int64_t step, int rank, int world) const {
    if (step == term_at && rank == world - 1) std::raise(SIGTERM);
  }
  // forward_backward's options for step `step` on `rank`: the NaN loss from nan_from on rank 0.
  StepOptions step_options(int64_t step, int rank, size_t sources) const {
    StepOptions options{sources, {}};
    if (nan_from > 0 && step >= nan_from && rank == 0)
      options.corrupt_loss = [](const at::Tensor& loss) { return loss * std::nan(""); };
    return options;
  }
  void in_checkpoint(int64_t step) const {
    if (step == kill_in_checkpoint) std::raise(SIGKILL);
  }
};

}  // namespace vtb::train
