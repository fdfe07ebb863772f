// The files of one checkpoint folder (a run's step_<8 digits>/, named by checkpoint_name in commit.h):
//   state.h5       written by rank 0: the model's trainable tensors, the optimizer, the config, the step;
//   rank_<r>.h5    written by each rank r: its data loader's position and its random generators.
// state.h5's root attribute format_version says which layout a folder has; readers refuse others.
#pragma once

#include <cstdint>
#include <string>

namespace vtb::ckpt {

inline constexpr int64_t kFormatVersion = 1;

inline std::string state_file(const std::string& folder) { return folder + "/state.h5"; }
inline std::string rank_file(const std::string& folder, int rank) {
  return folder + "/rank_" + std::to_string(rank) + ".h5";
}

}  // namespace vtb::ckpt
