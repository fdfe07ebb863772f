// The files of one checkpoint folder (a run's step_<8 digits>/, named by checkpoint_name in commit.h):
//   state.h5       written by rank 0: the model's trainable tensors, the optimizer, the config, the step;
//   rank_<r>.h5    written by each rank r: its data loader's position and its random generators (and, with
//                  dist.zero = 1, its shard of the optimizer).
// state.h5's root attribute format_version says which layout a folder has; readers refuse others.
//   1  the first layout;
//   2  every attribute also in a checksummed dataset (hdf5_io.h), optimizer steps as 1-element datasets
//      (a scalar dataset cannot be chunked, so fletcher32 never covered it). Format 1 still loads, with a
//      warning that its metadata is unverified.
//   3  /train@zero: 0, the AdamW moments in state.h5 as before; 1, each rank's pieces of them (Note
//      [Optimizer shards]) in its rank_<r>.h5 as /optim/<name>/{exp_avg, exp_avg_sq, step, offset}, 1-D.
//      Formats 1 and 2 read as zero = 0.
#pragma once

#include <cstdint>
#include <string>

namespace vtb::ckpt {

inline constexpr int64_t kFormatVersion = 3;
inline constexpr int64_t kOldestReadableFormat = 1;

inline std::string state_file(const std::string& folder) { return folder + "/state.h5"; }
inline std::string rank_file(const std::string& folder, int rank) {
  return folder + "/rank_" + std::to_string(rank) + ".h5";
}

}  // namespace vtb::ckpt
