#include "train/train_step.h"

#include <torch/torch.h>

#include <cmath>
#include <stdexcept>

#include "compat/bf16_autocast.h"
#include "train/host_reads.h"

namespace vtb::train {
namespace {

// The model's view of a loader batch: the token tensors and lengths stay on the host, where the model reads
// the sequence layout; only the features travel to the device now (Note [One read per step]).
model::SpeechBatch to_model_batch(const data::Batch& b, const c10::Device& device) {
  const at::Tensor features = b.features.defined() ? b.features.to(device, /*non_blocking=*/true) : b.features;
  return model::SpeechBatch{b.ids, b.lengths, b.loss_mask, features, b.feature_lengths};
}

// The fields read_step sums, in the one order it packs and unpacks them.
std::vector<double*> fields(StepStatistics& s) {
  std::vector<double*> out{&s.loss_sum, &s.tokens, &s.audio_seconds, &s.positions, &s.frames, &s.skipped};
  for (double& x : s.source_loss_sum) out.push_back(&x);
  for (double& x : s.source_tokens) out.push_back(&x);
  return out;
}

}  // namespace

StepReading read_step(const StepStatistics& mine, const std::vector<bool>& flags, dist::Communicator& comm,
                      const std::function<at::Tensor()>& gradient_square_sum) {
  StepReading out;
  out.stats = mine;
  out.stats.device_loss_sums = at::Tensor();
  const std::vector<double*> summed = fields(out.stats);
  std::vector<double> packed;
  for (const double* f : summed) packed.push_back(*f);
  for (bool f : flags) packed.push_back(f ? 1 : 0);
  at::Tensor t = torch::tensor(packed, torch::kDouble).to(comm.device(), /*non_blocking=*/true);
  if (mine.device_loss_sums.defined()) {  // Σ CE first; the per-source sums where fields() puts them
    const int64_t sources = static_cast<int64_t>(mine.source_loss_sum.size());
    const int64_t first_source = static_cast<int64_t>(summed.size()) - 2 * sources;
    t.narrow(0, 0, 1).copy_(mine.device_loss_sums.narrow(0, 0, 1));
    t.narrow(0, first_source, sources).copy_(mine.device_loss_sums.narrow(0, 1, sources));
  }
  comm.allreduce(t, dist::ReduceOp::Sum);
  if (gradient_square_sum) t = torch::cat({t, gradient_square_sum().to(torch::kDouble).reshape({1})});
  const at::Tensor host = read_to_host(t);
  const double* values = host.data_ptr<double>();
  for (size_t i = 0; i < summed.size(); ++i) *summed[i] = values[i];  // the same list packs and unpacks
  for (size_t i = 0; i < flags.size(); ++i) out.flags.push_back(values[summed.size() + i] > 0);
  if (gradient_square_sum) out.grad_norm = std::sqrt(values[summed.size() + flags.size()]);
  return out;
}

void StepStatistics::allreduce(dist::Communicator& comm) { *this = read_step(*this, {}, comm, nullptr).stats; }

StepStatistics forward_backward(model::SpeechLM& lm, const std::vector<data::Batch>& micro_batches,
                                dist::GradientBucketer& bucketer, dist::Communicator& comm,
                                const StepOptions& options) {
  if (micro_batches.empty()) throw std::invalid_argument("forward_backward: no micro-batch");
  const c10::Device device = comm.device();
  // 1. The step's answer tokens over every rank and micro-batch, before any backward: as the loader counted
  // them on the host, summed and turned into the scale world / N on the device (Note [One read per step]).
  int64_t mine = 0;
  for (const auto& b : micro_batches) mine += b.answer_tokens;
  at::Tensor count = torch::full({}, mine, torch::kLong).to(device, /*non_blocking=*/true);
  comm.allreduce(count, dist::ReduceOp::Sum);
  const at::Tensor total = count.to(torch::kDouble);
  // As a float: the factor the float32 loss is multiplied by (what a double scalar would be rounded to).
  const at::Tensor scale =
      at::where(count.gt(0), at::full_like(total, comm.size()).div(total), at::zeros_like(total)).to(torch::kFloat);

  StepStatistics stats;
  stats.source_loss_sum.assign(options.sources, 0.0);
  stats.source_tokens.assign(options.sources, 0.0);
  const int64_t sources = static_cast<int64_t>(options.sources);
  stats.device_loss_sums = torch::zeros({1 + sources}, torch::TensorOptions(torch::kDouble).device(device));
  at::Tensor loss_total = stats.device_loss_sums.narrow(0, 0, 1);
  at::Tensor source_totals = stats.device_loss_sums.narrow(0, 1, sources);
  bucketer.zero_grad();
  for (size_t m = 0; m < micro_batches.size(); ++m) {
    const data::Batch& batch = micro_batches[m];
    bucketer.prepare(/*sync=*/m + 1 == micro_batches.size());
    model::LossOutput out;
    {
      compat::Bf16Autocast autocast(device.type(), options.bf16);
      out = lm->loss(to_model_batch(batch, device));
    }
    if (out.tokens != batch.answer_tokens)
      throw std::logic_error("forward_backward: the model scored " + std::to_string(out.tokens) +
                             " answer tokens where the batch marks " + std::to_string(batch.answer_tokens));
    at::Tensor loss_sum = options.corrupt_loss ? options.corrupt_loss(out.loss_sum) : out.loss_sum;
    // 2. ΣCE × world / N: the bucketer's average over ranks then yields ∇(ΣCE / N).
    (loss_sum * scale).backward();
    loss_total.add_(loss_sum.detach().to(torch::kDouble));
    stats.tokens += static_cast<double>(out.tokens);
    stats.audio_seconds += batch.audio_seconds;
    stats.skipped += static_cast<double>(batch.skipped);
    stats.positions += static_cast<double>(out.positions);
    stats.frames += static_cast<double>(out.frames);
    std::vector<int64_t> source_of;  // per example
    const auto example_tokens = out.example_tokens.accessor<int64_t, 1>();
    for (size_t e = 0; e < batch.sources.size(); ++e) {
      const size_t k = batch.sources[e];
      if (k >= options.sources) throw std::out_of_range("forward_backward: example of an unknown source");
      source_of.push_back(static_cast<int64_t>(k));
      stats.source_tokens[k] += static_cast<double>(example_tokens[static_cast<int64_t>(e)]);
    }
    // In example order, as index_add_ adds on CPU.
    source_totals.index_add_(0, torch::tensor(source_of).to(device, /*non_blocking=*/true),
                             out.example_loss_sum.to(torch::kDouble));
  }
  bucketer.finish();
  return stats;
}

Update clip_and_step(optim::AdamW& optimizer, double clip, double lr, double grad_norm, double loss) {
  std::vector<at::Tensor> params;
  for (const auto& named : optimizer.params()) params.push_back(named.second);
  Update u;
  u.grad_norm = grad_norm;
  u.applied = std::isfinite(u.grad_norm) && std::isfinite(loss);
  if (!u.applied) return u;
  optim::scale_gradients(params, optim::clip_coefficient(u.grad_norm, clip));
  optimizer.step(lr);
  return u;
}

Update clip_and_step(optim::AdamW& optimizer, double clip, double lr, double loss) {
  std::vector<at::Tensor> params;
  for (const auto& named : optimizer.params()) params.push_back(named.second);
  const double sum_sq = *read_to_host(optim::gradient_square_sum(params).reshape({1})).data_ptr<double>();
  return clip_and_step(optimizer, clip, lr, std::sqrt(sum_sq), loss);
}

at::Tensor piece_square_sum(const dist::GradientBucketer& bucketer, dist::Communicator& comm) {
  c10::AutoGradMode no_grad(false);
  at::Tensor sum_sq = at::zeros({1}, at::TensorOptions().dtype(at::kDouble).device(comm.device()));
  for (size_t b = 0; b < bucketer.bucket_count(); ++b)
    sum_sq += bucketer.gradient_piece(b).to(at::kDouble).pow(2).sum();  // the padding past a bucket's end is zero
  comm.allreduce(sum_sq, dist::ReduceOp::Sum);
  return sum_sq;
}

Update clip_and_step(optim::AdamW& optimizer, const dist::GradientBucketer& bucketer, double clip, double lr,
                     double grad_norm, double loss) {
  c10::AutoGradMode no_grad(false);
  Update u;
  u.grad_norm = grad_norm;
  u.applied = std::isfinite(u.grad_norm) && std::isfinite(loss);
  if (!u.applied) return u;
  std::vector<at::Tensor> pieces;
  for (size_t b = 0; b < bucketer.bucket_count(); ++b) pieces.push_back(bucketer.gradient_piece(b));
  const double scale = optim::clip_coefficient(u.grad_norm, clip);
  if (scale != 1)
    for (auto& piece : pieces) piece.mul_(scale);
  optimizer.step(lr, pieces);
  return u;
}

void gather_parameters(const optim::ShardLayout& layout, const optim::AdamW& optimizer, dist::Communicator& comm) {
  c10::AutoGradMode no_grad(false);
  const auto& params = optimizer.params();
  for (size_t b = 0; b < layout.buckets.size(); ++b) {
    const at::Tensor& first = params[layout.buckets[b].front()].second;
    at::Tensor mine = at::zeros({layout.piece_numel[b]}, first.options().requires_grad(false));
    for (const optim::ShardPiece& piece : layout.mine)
      if (piece.bucket == b)
        mine.narrow(0, piece.at, piece.length)
            .copy_(params[piece.param].second.view({-1}).narrow(0, piece.offset, piece.length));
    const at::Tensor all = comm.allgather(mine).view({-1});  // rank order: the bucket's elements, padded
    int64_t start = 0;
    for (size_t i : layout.buckets[b]) {
      const at::Tensor& p = params[i].second;
      p.view({-1}).copy_(all.narrow(0, start, p.numel()));
      start += p.numel();
    }
  }
}

}  // namespace vtb::train
