// The training run's checkpoints: resuming from the last committed one, deciding at each step boundary
// whether to save (on schedule, at the end, or because some rank was asked to stop), and writing in the
// background while training goes on.
//
// Note [Background checkpoints]: the snapshot (CPU copies of everything saved) is taken synchronously at the
// step boundary; with a checkpoint communicator (TrainSettings::checkpoint_comm), writing and committing then
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
#include "train/trainer.h"
#include "train/training_state.h"

namespace vtb::train {

class Checkpointer {
 public:
  // Hashes the frozen LLM weights once (they never change). Collective only through its calls.
  Checkpointer(dist::Communicator& comm, const TrainSettings& settings, model::SpeechLM& lm, optim::AdamW& optimizer,
               data::BatchLoader& loader, const Faults& faults);
  ~Checkpointer();  // joins a save in flight (an error leaving the loop must not destroy a running thread)
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Restores model, optimizer, RNG and sampler from the run folder's `latest`; step 0 when there is none.
  RunState resume();

  struct Decision {
    bool saved = false;     // a checkpoint of this step was committed or is being written
    bool stopping = false;  // some rank was asked to stop: the checkpoint is committed, exit for requeue
  };
  // Collective, after every step: one small allreduce agrees on any rank's stop signal and on rank 0's clock
  // for ckpt.every_minutes (clocks differ across nodes, so one rank decides); saves when due.
  Decision after_step(const RunState& run);

  // Waits for the save in flight; rethrows its error.
  void wait();

 private:
  void save(const RunState& run, bool wait_for_commit);

  dist::Communicator& comm_;
  const TrainSettings& settings_;
  model::SpeechLM& lm_;
  optim::AdamW& optimizer_;
  data::BatchLoader& loader_;
  const Faults& faults_;
  std::string llm_label_, llm_hash_;
  std::chrono::steady_clock::time_point last_save_ = std::chrono::steady_clock::now();
  std::thread writer_;
  std::exception_ptr writer_error_;
};

}  // namespace vtb::train
