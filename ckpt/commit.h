// Checkpoint folders and their commit protocol (docs/design.md §6).
//
// Note [Checkpoint commit]: a checkpoint is either committed whole or not at all.
//  1. Rank 0 clears any stale step_N.tmp/ left by a killed job and creates it; barrier.
//  2. Every rank writes its files into step_N.tmp/. Failures are agreed on (allreduce): if any rank
//     failed, every rank throws and nothing is committed.
//  3. Rank 0 fsyncs the files and the folder, renames step_N.tmp → step_N (atomic on one file system),
//     then writes latest.tmp naming it and renames that to latest (so `latest` always names a complete
//     checkpoint), fsyncs the run folder, and removes committed checkpoints beyond keep_last.
//  4. Barrier: no rank goes on (or exits) before the checkpoint is committed.
// A job killed at any point leaves the previous `latest` intact; resume ignores *.tmp folders.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "dist/communicator.h"

namespace vtb::ckpt {

// Runs the protocol; `write(folder)` writes this rank's files into `folder`. Returns the committed folder.
std::string commit_checkpoint(dist::Communicator& comm, const std::string& run_dir, int64_t step, int keep_last,
                              const std::function<void(const std::string& folder)>& write);

// The folder `latest` names, or "" when there is no committed checkpoint. Throws when `latest` names a
// folder that does not exist (a run folder tampered with by hand).
std::string latest_checkpoint(const std::string& run_dir);

// "step_00000042" for 42: names sort in step order.
std::string checkpoint_name(int64_t step);

}  // namespace vtb::ckpt
