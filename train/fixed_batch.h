// train.fixed_batch, a benchmark feature: every step trains on one batch read from a file instead of the data
// mix, so another implementation fed the same file does the same work per step (bench/bench_vs_pytorch.sh).
#pragma once

#include <optional>
#include <string>

#include "data/batch_loader.h"
#include "dist/communicator.h"
#include "model/speech_lm.h"

namespace vtb::train {

// train.fixed_batch's batch for this rank, or none when `path` is empty (Note [Fixed batch]).
std::optional<data::Batch> fixed_batch(const std::string& path, model::SpeechLM& lm, dist::Communicator& comm);

// The weights step 1 starts from, for another implementation to start from too (Note [Fixed batch]):
// RUN_DIR/initial_parameters.safetensors.
void write_initial_parameters(model::SpeechLM& lm, const std::string& run_dir);

}  // namespace vtb::train
