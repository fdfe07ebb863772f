#include "train/checkpointer.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <memory>
#include <utility>

#include "ckpt/commit.h"
#include "model/torch_compat.h"
#include "train/stop_signal.h"

namespace vtb::train {

Checkpointer::Checkpointer(dist::Communicator& comm, const TrainSettings& settings, model::SpeechLM& lm,
                           optim::AdamW& optimizer, data::BatchLoader& loader, const Faults& faults)
    : comm_(comm),
      settings_(settings),
      lm_(lm),
      optimizer_(optimizer),
      loader_(loader),
      faults_(faults),
      llm_label_(settings.llm_dir.empty() ? "stand-in from train.seed " + std::to_string(settings.seed)
                                          : settings.llm_dir),
      llm_hash_(frozen_llm_hash(lm)) {}

Checkpointer::~Checkpointer() {
  if (writer_.joinable()) writer_.join();
}

RunState Checkpointer::resume() {
  const std::string latest = ckpt::latest_checkpoint(settings_.run_dir);
  if (latest.empty()) return {};
  RunState run = read_training_state(latest, comm_.rank(), comm_.size(), lm_, optimizer_);
  loader_.restore(run.sampler);
  spdlog::info("resumed from {} at step {}", latest, run.step);
  return run;
}

Checkpointer::Decision Checkpointer::after_step(const RunState& run) {
  const TrainSettings& s = settings_;
  const bool minutes_due =
      comm_.rank() == 0 && s.ckpt_every_minutes > 0 &&
      std::chrono::steady_clock::now() - last_save_ >= std::chrono::duration<double>(60 * s.ckpt_every_minutes);
  const std::vector<bool> any = dist::any_rank(comm_, {stop_requested(), minutes_due});
  Decision d;
  d.stopping = any[0];
  const bool last = run.step == s.max_steps;
  d.saved = d.stopping || last || (s.ckpt_every > 0 && run.step % s.ckpt_every == 0) || any[1];
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
      comm_.rank(), comm_.size(), lm_, optimizer_, saved, settings_.config_text, llm_label_, llm_hash_));
  // A pointer, not a reference: the writer thread outlives this frame.
  dist::Communicator* coordination = settings_.checkpoint_comm != nullptr ? settings_.checkpoint_comm : &comm_;
  auto commit = [this, snap, coordination] {
    const std::string dir =
        ckpt::commit_checkpoint(*coordination, settings_.run_dir, snap->run.step, static_cast<int>(settings_.keep_last),
                                [&](const std::string& folder) {
                                  write_training_state(folder, *snap);
                                  faults_.in_checkpoint(snap->run.step);
                                });
    spdlog::info("checkpoint {} committed", dir);
  };
  if (settings_.checkpoint_comm == nullptr || wait_for_commit) return commit();
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
