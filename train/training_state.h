// What a checkpoint holds and how it comes back (docs/design.md §6):
//   state.h5 (rank 0): /model/<name> trainable parameters and buffers (BatchNorm statistics);
//     /optim/<name>/{exp_avg, exp_avg_sq, step}; /train attributes: step, world_size, format_version,
//     config, llm (path or stand-in), llm_tensors (name, dtype, shape of each frozen weight) and llm_hash
//     (of their bytes): the frozen weights themselves are not saved.
//   rank_<r>.h5 (every rank): /train@sampler_state, /rng/cpu (the dropout generator on CPU) and, on GPU
//   runs, /rng/cuda (the rank's GPU generator: dropout there).
//   With dist.zero = 1 or 2 (/train@zero in state.h5; the layout is the same for both) the moments are not
//   in state.h5: each rank writes its pieces to its rank_<r>.h5 as /optim/<name>/{exp_avg, exp_avg_sq, step,
//   offset} (ckpt/layout.h, format 3), and a resume assembles whatever pieces the new layout needs from every
//   saved rank's file.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "data/mixing_sampler.h"
#include "dist/communicator.h"
#include "model/speech_lm.h"
#include "optim/adamw.h"

namespace vtb::train {

struct RunState {
  int64_t step = 0;
  data::SamplerState sampler;
  std::string run_id;  // Note [Checkpoint identity]: 16 hex digits, the same on every rank
};

// FNV-1a over the bytes of every frozen (requires_grad = false) LLM parameter, as 16 hex digits.
std::string frozen_llm_hash(model::SpeechLM& lm);

// Everything a checkpoint writes, copied to CPU memory: taking it is quick and synchronous, writing it
// can then happen in the background while training changes the live tensors.
struct TrainingSnapshot {
  int rank = 0, world = 1;
  RunState run;
  std::vector<std::pair<std::string, at::Tensor>> model;  // trainable parameters and buffers
  struct Moments {
    std::string name;
    at::Tensor exp_avg, exp_avg_sq;
    int64_t step = 0;
    int64_t offset = 0;  // sharded: the first element of the flattened parameter they cover
  };
  std::vector<Moments> optim;
  int zero = 0;         // dist.zero ≥ 1: `optim` is this rank's shard, written to its rank file
  at::Tensor rng;       // the CPU generator's state
  at::Tensor rng_cuda;  // the training GPU's generator (dropout on CUDA); undefined on CPU runs
  std::string config_text, llm_label, llm_hash, llm_tensors;
};

TrainingSnapshot snapshot_training_state(int rank, int world, model::SpeechLM& lm, optim::AdamW& optimizer,
                                         const RunState& run, const std::string& config_text,
                                         const std::string& llm_label, const std::string& llm_hash);

// Writes this rank's files of the checkpoint into `folder` (called inside commit_checkpoint).
void write_training_state(const std::string& folder, const TrainingSnapshot& snapshot);

// Restores only the optimizer's moments from a checkpoint, whatever layout it was saved in and whatever
// layout `optimizer` has now (Note [Re-sharding the optimizer]). Returns the saved dist.zero.
int64_t restore_optimizer_state(const std::string& folder, optim::AdamW& optimizer);

// Restores model, optimizer, RNG and this rank's sampler state from a committed checkpoint of the frozen LLM
// whose frozen_llm_hash (as loaded) is `llm_hash`: exactly when the
// world size is the same; with another world size the weights and optimizer are exact, every source starts
// its next epoch on the new shards, and a warning says so. Throws with a message when the frozen LLM or
// the parameter set differ.
RunState read_training_state(const std::string& folder, int rank, int world, model::SpeechLM& lm,
                             optim::AdamW& optimizer, const std::string& llm_hash);

}  // namespace vtb::train
