// What `vtb ckpt inspect|verify|diff` do with a checkpoint folder (state.h5 + rank_<r>.h5).
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace vtb::ckpt {

// The files, datasets (shape, dtype) and attributes of a checkpoint, as text.
void inspect_checkpoint(const std::string& folder, std::ostream& out);

// Reads every dataset of every file (fletcher32 is checked on read), refuses NaN and infinite values in any
// floating-point tensor, and checks the structure (format version, one rank file per rank). Returns the
// problems found; empty means the checkpoint is sound.
std::vector<std::string> verify_checkpoint(const std::string& folder);

// Note [Checkpoint identity]: a checkpoint is several files, and a file of another checkpoint (another step,
// another run, another world size or dist.zero, another rank's) put among them loads silently and trains on
// wrong state. Since format 4 every file carries the checkpoint's identity — the run id made at the run's
// first start and kept across resumes, the step, the world size, dist.zero, and in a rank file its rank — and
// every reader (resume, eval, generate, chat, export, verify) compares them before it uses a tensor.
// Returns one line per mismatch, file by file ("rank_1.h5: step 15, state.h5 says 20"); empty when they agree
// or when the checkpoint predates format 4 (then unverifiable, which `verify` says). A missing rank file is
// not listed here (verify and resume name it).
std::vector<std::string> identity_problems(const std::string& folder);

// identity_problems, thrown as one error naming the folder and what to do.
void check_identity(const std::string& folder);

struct TensorDiff {
  std::string name;
  double max_abs = 0;  // -1: shapes differ
};

// Per-tensor max |a − b| over the datasets of state.h5 both hold; names only in one go to only_a/only_b.
std::vector<TensorDiff> diff_checkpoints(const std::string& a, const std::string& b, std::vector<std::string>& only_a,
                                         std::vector<std::string>& only_b);

}  // namespace vtb::ckpt
