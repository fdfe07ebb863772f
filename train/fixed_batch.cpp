#include "train/fixed_batch.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <filesystem>
#include <stdexcept>
#include <utility>
#include <vector>

#include "model/safetensors.h"

namespace vtb::train {
namespace {

// Note [Fixed batch]: with train.fixed_batch every step trains on one batch read from a file, so another
// implementation fed the same file does the same work per step (bench/bench_vs_pytorch.sh). The file holds
// the job's whole batch — ids [B, T] int64, lengths [B], loss_mask [B, T] (0/1), features [N, n_mels, F],
// feature_lengths [N], the audio segments in placeholder order — and rank r of W takes rows
// [r·B/W, (r+1)·B/W) with their segments. No loader, no SpecAugment; everything else (the step, the
// bucketer, the optimizer, checkpoints, metrics) is the normal run's. Rank 0 writes every parameter before
// the first step to RUN_DIR/initial_parameters.safetensors, so the other implementation can start from the
// same weights and check its loss against step 1's.
data::Batch read_fixed_batch(const std::string& path, int64_t audio_token_id, int rank, int ranks) {
  const auto file = model::SafetensorsFile::open(path);
  auto need = [&](const char* name) {
    if (file->find(name) == nullptr)
      throw std::runtime_error(path + ": train.fixed_batch has no tensor '" + name + "'");
    return file->tensor(name);
  };
  const at::Tensor ids = need("ids").to(torch::kLong), lengths = need("lengths").to(torch::kLong);
  const at::Tensor mask = need("loss_mask").to(torch::kLong);
  const int64_t B = ids.size(0);
  if (ids.dim() != 2 || mask.sizes() != ids.sizes() || lengths.sizes() != at::IntArrayRef{B} || B < ranks)
    throw std::runtime_error(path + ": train.fixed_batch needs ids and loss_mask [B, T], lengths [B], B >= " +
                             std::to_string(ranks) + " ranks");
  const int64_t begin = rank * B / ranks, end = (rank + 1) * B / ranks;
  // Segments before this rank's rows, and in them: the <audio> placeholders within each row's length.
  const at::Tensor placeholders =
      (ids.eq(audio_token_id) & (torch::arange(ids.size(1)).unsqueeze(0) < lengths.unsqueeze(1))).sum(1);
  const int64_t first = placeholders.narrow(0, 0, begin).sum().item<int64_t>();
  const int64_t count = placeholders.narrow(0, begin, end - begin).sum().item<int64_t>();
  data::Batch b;
  b.ids = ids.narrow(0, begin, end - begin).contiguous();
  b.lengths = lengths.narrow(0, begin, end - begin).contiguous();
  b.loss_mask = mask.narrow(0, begin, end - begin).to(torch::kBool).contiguous();
  b.sources.assign(static_cast<size_t>(end - begin), 0);
  b.answer_tokens = b.loss_mask.sum().item<int64_t>();
  if (count > 0) {
    const at::Tensor features = need("features").to(torch::kFloat);
    const at::Tensor frames = need("feature_lengths").to(torch::kLong);
    if (features.dim() != 3 || frames.sizes() != at::IntArrayRef{features.size(0)} ||
        placeholders.sum().item<int64_t>() != features.size(0))
      throw std::runtime_error(path +
                               ": train.fixed_batch needs features [N, n_mels, F] and feature_lengths [N], "
                               "one segment per <audio> placeholder (" +
                               std::to_string(placeholders.sum().item<int64_t>()) + ")");
    b.features = features.narrow(0, first, count).contiguous();
    b.feature_lengths = frames.narrow(0, first, count).contiguous();
    b.audio_seconds = static_cast<double>(b.feature_lengths.sum().item<int64_t>()) / 100.0;  // 10 ms hop
  }
  return b;
}

}  // namespace

std::optional<data::Batch> fixed_batch(const std::string& path, model::SpeechLM& lm, dist::Communicator& comm) {
  if (path.empty()) return std::nullopt;
  data::Batch b = read_fixed_batch(path, lm->config().audio_token_id, comm.rank(), comm.size());
  spdlog::info("train.fixed_batch: every step trains on {} rows of {} on this rank (Note [Fixed batch])", b.ids.size(0),
               path);
  return b;
}

void write_initial_parameters(model::SpeechLM& lm, const std::string& run_dir) {
  std::filesystem::create_directories(run_dir);
  model::write_safetensors(run_dir + "/initial_parameters.safetensors",
                           model::module_tensors(*lm, "", /*buffers=*/false));
}

}  // namespace vtb::train
