// What a training run reports each step: one JSON line per step in <run.dir>/metrics.jsonl (rank 0), and a
// progress line (rewritten in place on a terminal, every train.log_every steps otherwise). README.md
// ("Training") lists the fields.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "model/speech_lm.h"
#include "train/train_step.h"

namespace vtb::train {

// What the log reports besides each step. Every default here is also the config key's default.
struct MetricsSettings {
  int64_t log_every = 10;  // train.log_every: a progress line every so many steps (when not on a terminal)
  double peak_tflops = 0;  // run.peak_tflops: per rank, for MFU in metrics.jsonl; 0 = the rate run.precision =
                           // auto measured (run_training fills it in)
};

// Model FLOPs of one step (the MFU numerator), the usual 2·N per position forward and 4·N backward:
// trainable LLM-side weights (LoRA) 6·N, frozen LLM weights 4·N (forward, and backward for activations
// only), encoder/adapter/projection 6·N per encoder frame. Attention's T² terms are left out.
struct FlopModel {
  double frozen = 0, lora = 0, speech = 0;
  explicit FlopModel(model::SpeechLM& lm);
  double step(double positions, double frames) const {
    return (4 * frozen + 6 * lora) * positions + 6 * speech * frames;
  }
};

struct StepRecord {
  int64_t step = 0;
  double lr = 0;
  Update update;
  double seconds = 0;  // wall time of the step
};

class MetricsLog {
 public:
  // On rank 0, opens <run_dir>/metrics.jsonl for appending after dropping lines of steps past `resumed_step` (a
  // killed run may have logged steps it did not commit). Other ranks log nothing. `max_steps` is the run's
  // last step, for the progress line.
  MetricsLog(dist::Communicator& comm, const std::string& run_dir, const MetricsSettings& settings, int64_t max_steps,
             model::SpeechLM& lm, std::vector<std::string> source_names, int64_t resumed_step);

  // `stats` already summed over ranks.
  void record(const StepRecord& record, const StepStatistics& stats);

 private:
  const MetricsSettings settings_;
  const int64_t max_steps_;
  bool root_, tty_;
  int world_;
  c10::Device device_;
  FlopModel flops_;
  std::vector<std::string> source_names_;
  std::string path_;  // metrics.jsonl (rank 0)
  std::ofstream file_;
  double step_time_ema_ = 0;
};

}  // namespace vtb::train
