#include "train/checkpointer.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <cstdio>
#include <memory>
#include <random>
#include <utility>

#include "ckpt/commit.h"
#include "compat/aten_threads.h"
#include "train/stop_signal.h"

namespace vtb::train {
namespace {

// Note [Checkpoint identity]: 64 random bits drawn on rank 0 (not from ATen's generator, which the run's
// numbers depend on) and broadcast, as 16 hex digits.
std::string new_run_id(dist::Communicator& comm) {
  at::Tensor id = at::zeros({1}, at::kLong);
  if (comm.rank() == 0) {
    std::random_device entropy;
    id.fill_(static_cast<int64_t>((static_cast<uint64_t>(entropy()) << 32) | entropy()));
  }
  id = id.to(comm.device());
  comm.broadcast(id, 0);
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(id.cpu().item<int64_t>()));
  return text;
}

}  // namespace

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
      faults_(faults) {}

Checkpointer::~Checkpointer() {
  if (writer_.joinable()) writer_.join();
}

RunState Checkpointer::resume(const std::string& folder) {
  RunState run;
  if (!folder.empty()) {
    run = read_training_state(folder, comm_.rank(), comm_.size(), lm_, optimizer_, run_.llm_hash);
    loader_.restore(run.sampler);
    spdlog::info("resumed from {} at step {}", folder, run.step);
  }
  if (run.run_id.empty()) run.run_id = new_run_id(comm_);  // a new run, or one saved before format 4
  return run;
}

std::vector<bool> Checkpointer::flags() const {
  const CheckpointSettings& s = settings_;
  const bool minutes_due =
      comm_.rank() == 0 && s.every_minutes > 0 &&
      std::chrono::steady_clock::now() - last_save_ >= std::chrono::duration<double>(60 * s.every_minutes);
  return {stop_requested(), minutes_due};
}

Checkpointer::Decision Checkpointer::after_step(const RunState& run, const std::vector<bool>& any) {
  const CheckpointSettings& s = settings_;
  if (any.size() != 2) throw std::logic_error("Checkpointer::after_step: expected the two flags of flags()");
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
      comm_.rank(), comm_.size(), lm_, optimizer_, saved, run_.config_text, run_.llm_label, run_.llm_hash));
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
