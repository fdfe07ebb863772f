// The training run's checkpoints: resuming from the last committed one, deciding at each step boundary
// whether to save (on schedule, at the end, or because some rank was asked to stop), and writing in the
// background while training goes on.
//
// Note [Background checkpoints]: the snapshot (CPU copies of everything saved) is taken synchronously at the
// step boundary; with a checkpoint communicator (run_training's checkpoint_comm), writing and committing then
// run in a thread while training goes on, their collectives on that communicator so they never interleave
// with training's. One save is in flight at a time; a failure surfaces at the next checkpoint or at finish().
// The last save of a run, and the save before a requeue, are waited for.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <string>
#include <thread>

#include "data/batch_loader.h"
#include "dist/communicator.h"
#include "model/speech_lm.h"
#include "optim/adamw.h"
#include "train/faults.h"
#include "train/training_state.h"

namespace vtb::train {

// ckpt.*: when a run saves and what it keeps. Every default here is also the config key's default.
struct CheckpointSettings {
  int64_t every_steps = 1000;  // ckpt.every_steps; 0 = off
  double every_minutes = 0;    // ckpt.every_minutes; 0 = off
  int64_t keep_last = 3;       // ckpt.keep_last: committed checkpoints kept
};

class Checkpointer {
 public:
  // Where the run's checkpoints go and what each records besides the training state.
  struct Run {
    std::string dir;          // run.dir
    std::string config_text;  // the resolved config
    std::string llm_label;    // the frozen LLM's origin (model::llm_label)
    std::string llm_hash;     // frozen_llm_hash of the LLM as loaded, before model.frozen_dtype
    int64_t last_step = 0;    // train.max_steps: the save there is waited for
  };
  // Collective only through its calls. With a
  // `background_comm`, saves are written in a thread through it (Note [Background checkpoints]).
  Checkpointer(dist::Communicator& comm, dist::Communicator* background_comm, Run run,
               const CheckpointSettings& settings, model::SpeechLM& lm, optim::AdamW& optimizer,
               data::BatchLoader& loader, const Faults& faults);
  ~Checkpointer();  // joins a save in flight (an error leaving the loop must not destroy a running thread)
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Restores model, optimizer, RNG and sampler from the committed checkpoint `folder` (the run folder's
  // `latest`); step 0 when `folder` is "".
  RunState resume(const std::string& folder);

  struct Decision {
    bool saved = false;     // a checkpoint of this step was committed or is being written
    bool stopping = false;  // some rank was asked to stop: the checkpoint is committed, exit for requeue
  };
  // This rank's flags for the step's allreduce (read_step): {asked to stop, ckpt.every_minutes due}; only
  // rank 0's clock counts (clocks differ across nodes, so one rank decides).
  std::vector<bool> flags() const;
  // After every step, with `any` = for each of flags(), whether any rank set it (read_step's allreduce: the
  // ranks agree without a collective of their own): saves when due. Collective when it saves.
  Decision after_step(const RunState& run, const std::vector<bool>& any);

  // Waits for the save in flight; rethrows its error.
  void wait();

 private:
  void save(const RunState& run, bool wait_for_commit);

  dist::Communicator& comm_;
  dist::Communicator* background_comm_;
  const Run run_;
  const CheckpointSettings settings_;
  model::SpeechLM& lm_;
  optim::AdamW& optimizer_;
  data::BatchLoader& loader_;
  const Faults& faults_;
  std::chrono::steady_clock::time_point last_save_ = std::chrono::steady_clock::now();
  std::thread writer_;
  std::exception_ptr writer_error_;
};

}  // namespace vtb::train
