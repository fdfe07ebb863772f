#include "train/checkpointer.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <memory>
#include <utility>

#include "ckpt/commit.h"
#include "compat/aten_threads.h"
#include "train/stop_signal.h"

namespace vtb::train {

Checkpointer::Checkpointer(dist::Communicator& comm, dist::Communicator* background_comm, Run run,
                           const CheckpointSettings& settings, model::SpeechLM& lm, optim::AdamW& optimizer,
                           data::BatchLoader& loader, const Faults& faults)
    : comm_(comm),
      background_comm_(background_comm),
      run_(std::move(run)),
      settings_(settings),
      lm_(lm),
      optimizer_(optimizer),
      loader_(loader),
      faults_(faults),
      llm_hash_(frozen_llm_hash(lm)) {}

Checkpointer::~Checkpointer() {
  if (writer_.joinable()) writer_.join();
}

RunState Checkpointer::resume(const std::string& folder) {
  if (folder.empty()) return {};
  RunState run = read_training_state(folder, comm_.rank(), comm_.size(), lm_, optimizer_);
  loader_.restore(run.sampler);
  spdlog::info("resumed from {} at step {}", folder, run.step);
  return run;
}

Checkpointer::Decision Checkpointer::after_step(const RunState& run) {
  const CheckpointSettings& s = settings_;
  const bool minutes_due =
      comm_.rank() == 0 && s.every_minutes > 0 &&
      std::chrono::steady_clock::now() - last_save_ >= std::chrono::duration<double>(60 * s.every_minutes);
  const std::vector<bool> any = dist::any_rank(comm_, {stop_requested(), minutes_due});
  Decision d;
  d.stopping = any[0];
  const bool last = run.step == run_.last_step;
  d.saved = d.stopping || last || (s.every_steps > 0 && run.step % s.every_steps == 0) || any[1];
  if (d.saved) {
    save(run, /*wait_for_commit=*/d.stopping || last);
    last_save_ = std::chrono::steady_clock::now();
  }
  return d;
}

void Checkpointer::wait() {
  if (writer_.joinable()) writer_.join();
  if (writer_error_) std::rethrow_exception(std::exchange(writer_error_, nullptr));
}

void Checkpointer::save(const RunState& run, bool wait_for_commit) {
  wait();  // one save in flight
  RunState saved = run;
  saved.sampler = loader_.state();
  auto snap = std::make_shared<TrainingSnapshot>(snapshot_training_state(
      comm_.rank(), comm_.size(), lm_, optimizer_, saved, run_.config_text, run_.llm_label, llm_hash_));
  // A pointer, not a reference: the writer thread outlives this frame.
  dist::Communicator* coordination = background_comm_ != nullptr ? background_comm_ : &comm_;
  auto commit = [this, snap, coordination] {
    const std::string dir = ckpt::commit_checkpoint(
        *coordination, run_.dir, snap->run.step, static_cast<int>(settings_.keep_last), [&](const std::string& folder) {
          write_training_state(folder, *snap);
          faults_.in_checkpoint(snap->run.step);
        });
    spdlog::info("checkpoint {} committed", dir);
  };
  if (background_comm_ == nullptr || wait_for_commit) return commit();
  writer_ = std::thread([this, commit] {
    compat::run_aten_serially_on_this_thread();  // Note [One OpenMP team]
    try {
      commit();
    } catch (...) {
      writer_error_ = std::current_exception();
    }
  });
}

}  // namespace vtb::train
