#include "train/train_step.h"

#include <torch/torch.h>

#include <cmath>
#include <stdexcept>

#include "compat/bf16_autocast.h"

namespace vtb::train {
namespace {

model::SpeechBatch to_model_batch(const data::Batch& b, const c10::Device& device) {
  auto to = [&](const at::Tensor& t) { return t.defined() ? t.to(device, /*non_blocking=*/true) : t; };
  return model::SpeechBatch{to(b.ids), to(b.lengths), to(b.loss_mask), to(b.features), to(b.feature_lengths)};
}

}  // namespace

void StepStatistics::allreduce(dist::Communicator& comm) {
  std::vector<double*> fields{&loss_sum, &tokens, &audio_seconds, &positions, &frames, &skipped};
  for (double& x : source_loss_sum) fields.push_back(&x);
  for (double& x : source_tokens) fields.push_back(&x);
  std::vector<double> packed;
  for (const double* f : fields) packed.push_back(*f);
  at::Tensor t = torch::tensor(packed, torch::kDouble).to(comm.device());
  comm.allreduce(t, dist::ReduceOp::Sum);
  t = t.cpu();
  const double* summed = t.data_ptr<double>();
  for (size_t i = 0; i < fields.size(); ++i) *fields[i] = summed[i];  // the same list packs and unpacks
}

StepStatistics forward_backward(model::SpeechLM& lm, const std::vector<data::Batch>& micro_batches,
                                dist::GradientBucketer& bucketer, dist::Communicator& comm,
                                const StepOptions& options) {
  if (micro_batches.empty()) throw std::invalid_argument("forward_backward: no micro-batch");
  const c10::Device device = comm.device();
  // 1. The step's answer tokens over every rank and micro-batch, before any backward.
  std::vector<int64_t> answer_tokens;
  int64_t mine = 0;
  for (const auto& b : micro_batches) mine += answer_tokens.emplace_back(b.loss_mask.sum().item<int64_t>());
  at::Tensor count = torch::full({1}, mine, torch::kLong).to(device);
  comm.allreduce(count, dist::ReduceOp::Sum);
  const int64_t global_tokens = count.cpu().item<int64_t>();
  const double scale = global_tokens > 0 ? static_cast<double>(comm.size()) / static_cast<double>(global_tokens) : 0.0;

  StepStatistics stats;
  stats.source_loss_sum.assign(options.sources, 0.0);
  stats.source_tokens.assign(options.sources, 0.0);
  bucketer.zero_grad();
  for (size_t m = 0; m < micro_batches.size(); ++m) {
    const data::Batch& batch = micro_batches[m];
    bucketer.prepare(/*sync=*/m + 1 == micro_batches.size());
    model::LossOutput out;
    {
      compat::Bf16Autocast autocast(device.type(), options.bf16);
      out = lm->loss(to_model_batch(batch, device));
    }
    if (out.tokens != answer_tokens[m])
      throw std::logic_error("forward_backward: the model scored " + std::to_string(out.tokens) +
                             " answer tokens where the batch marks " + std::to_string(answer_tokens[m]));
    at::Tensor loss_sum = options.corrupt_loss ? options.corrupt_loss(out.loss_sum) : out.loss_sum;
    // 2. ΣCE × world / N: the bucketer's average over ranks then yields ∇(ΣCE / N).
    (loss_sum * scale).backward();
    stats.loss_sum += loss_sum.item<double>();
    stats.tokens += static_cast<double>(out.tokens);
    stats.audio_seconds += batch.audio_seconds;
    stats.skipped += static_cast<double>(batch.skipped);
    stats.positions += static_cast<double>(out.positions);
    stats.frames += static_cast<double>(out.frames);
    const at::Tensor example_loss = out.example_loss_sum.cpu(), example_tokens = out.example_tokens.cpu();
    for (size_t e = 0; e < batch.sources.size(); ++e) {
      const size_t k = batch.sources[e];
      if (k >= options.sources) throw std::out_of_range("forward_backward: example of an unknown source");
      stats.source_loss_sum[k] += example_loss[static_cast<int64_t>(e)].item<double>();
      stats.source_tokens[k] += static_cast<double>(example_tokens[static_cast<int64_t>(e)].item<int64_t>());
    }
  }
  bucketer.finish();
  return stats;
}

Update clip_and_step(optim::AdamW& optimizer, double clip, double lr, double loss) {
  std::vector<at::Tensor> params;
  for (const auto& named : optimizer.params()) params.push_back(named.second);
  Update u;
  u.grad_norm = optim::clip_grad_norm(params, clip);
  u.applied = std::isfinite(u.grad_norm) && std::isfinite(loss);
  if (u.applied) optimizer.step(lr);
  return u;
}

Update clip_and_step(optim::AdamW& optimizer, const dist::GradientBucketer& bucketer, dist::Communicator& comm,
                     double clip, double lr, double loss) {
  c10::AutoGradMode no_grad(false);
  std::vector<at::Tensor> pieces;
  at::Tensor sum_sq = at::zeros({1}, at::TensorOptions().dtype(at::kDouble).device(comm.device()));
  for (size_t b = 0; b < bucketer.bucket_count(); ++b) {
    pieces.push_back(bucketer.gradient_piece(b));
    sum_sq += pieces.back().to(at::kDouble).pow(2).sum();  // the padding past a bucket's end is zero
  }
  comm.allreduce(sum_sq, dist::ReduceOp::Sum);
  Update u;
  u.grad_norm = std::sqrt(sum_sq.cpu().item<double>());
  u.applied = std::isfinite(u.grad_norm) && std::isfinite(loss);
  if (!u.applied) return u;
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
