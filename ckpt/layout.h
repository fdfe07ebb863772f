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
//   4  every file carries the checkpoint's identity (Note [Checkpoint identity]): /train@run_id, step,
//      world_size and zero in state.h5 and in each rank_<r>.h5, which also holds its rank. Formats 1 to 3
//      have none and load unverified.
#pragma once

#include <cstdint>
#include <string>

namespace vtb::ckpt {

inline constexpr int64_t kFormatVersion = 4;
inline constexpr int64_t kFirstFormatWithIdentity = 4;
inline constexpr int64_t kOldestReadableFormat = 1;

inline std::string state_file(const std::string& folder) { return folder + "/state.h5"; }
inline std::string rank_file(const std::string& folder, int rank) {
  return folder + "/rank_" + std::to_string(rank) + ".h5";
}

// The names inside the files, spelled only here: written by train/training_state.cpp, read there, by
// model_weights.h and by `vtb ckpt inspect/verify`.
namespace schema {
inline constexpr const char* kRoot = "/";
inline constexpr const char* kFormatVersionKey = "format_version";  // kRoot@: state.h5's layout (above)
inline constexpr const char* kTrain = "/train";  // the run's attributes: in state.h5 all but kRank and
                                                 // kSamplerState; in rank_<r>.h5 the identity (kRunId, kStep,
                                                 // kWorldSize, kZero, kRank) and kSamplerState
inline constexpr const char* kStep = "step";
inline constexpr const char* kWorldSize = "world_size";
inline constexpr const char* kZero = "zero";      // dist.zero (format 3)
inline constexpr const char* kConfig = "config";  // the resolved config text
inline constexpr const char* kLlm = "llm";        // model.llm, or how the stand-in was made
inline constexpr const char* kLlmHash = "llm_hash";
inline constexpr const char* kLlmTensors = "llm_tensors";
inline constexpr const char* kLibtorch = "libtorch";
inline constexpr const char* kSamplerState = "sampler_state";
inline constexpr const char* kRunId = "run_id";       // format 4: made at a run's first start, kept across resumes
inline constexpr const char* kRank = "rank";          // format 4, rank_<r>.h5: r
inline constexpr const char* kRngCpu = "/rng/cpu";    // rank_<r>.h5: the CPU generator
inline constexpr const char* kRngCuda = "/rng/cuda";  // rank_<r>.h5: the rank's GPU generator (GPU runs)
// The optimizer's per-parameter datasets: /optim/<name>/<field>.
inline constexpr const char* kExpAvg = "exp_avg";
inline constexpr const char* kExpAvgSq = "exp_avg_sq";
inline constexpr const char* kOptimStep = "step";
inline constexpr const char* kOffset = "offset";  // sharded (dist.zero ≥ 1): the piece's first element

// state.h5: a trainable parameter or buffer by its module name.
inline std::string model_tensor(const std::string& name) { return "/model/" + name; }
// A parameter's AdamW state (state.h5, or with dist.zero ≥ 1 each rank file's pieces).
inline std::string optim_tensor(const std::string& name, const char* field) { return "/optim/" + name + "/" + field; }
}  // namespace schema

}  // namespace vtb::ckpt
