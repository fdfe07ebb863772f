// What `vtb ckpt inspect|verify|diff` do with a checkpoint folder (state.h5 + rank_<r>.h5).
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace vtb::ckpt {

// The files, datasets (shape, dtype) and attributes of a checkpoint, as text.
void inspect_checkpoint(const std::string& folder, std::ostream& out);

// Reads every dataset of every file (fletcher32 is checked on read) and checks the structure (format
// version, one rank file per rank). Returns the problems found; empty means the checkpoint is sound.
std::vector<std::string> verify_checkpoint(const std::string& folder);

struct TensorDiff {
  std::string name;
  double max_abs = 0;  // -1: shapes differ
};

// Per-tensor max |a − b| over the datasets of state.h5 both hold; names only in one go to only_a/only_b.
std::vector<TensorDiff> diff_checkpoints(const std::string& a, const std::string& b, std::vector<std::string>& only_a,
                                         std::vector<std::string>& only_b);

}  // namespace vtb::ckpt
