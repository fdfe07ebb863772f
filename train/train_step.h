// One optimizer step's forward and backward over this rank's micro-batches, the statistics it logs, and the
// optimizer's half of the step.
//
// Note [Loss normalisation]: the loss of a step is the mean cross-entropy over *all* its answer tokens,
// on every rank and in every micro-batch: L = Σ CE / N. So that the averaged gradient is exactly ∇L, whatever
// the split of tokens over ranks and micro-batches (torchtitan does the same):
//   1. every rank counts the answer tokens of its micro-batches before any forward, and one allreduce gives N;
//   2. each micro-batch backpropagates (its Σ CE) × world / N;
//   3. the bucketer averages over ranks (÷ world), so the gradient is Σ_ranks Σ_micro ∇ΣCE / N = ∇L;
//   4. the logged loss is Σ CE (allreduced) / N: the same L.
// Averaging per-micro-batch means instead would weigh a token of a short batch more than one of a long batch.
#pragma once

#include <functional>
#include <vector>

#include "data/batch_loader.h"
#include "dist/communicator.h"
#include "dist/gradient_bucketer.h"
#include "model/speech_lm.h"
#include "optim/adamw.h"

namespace vtb::train {

struct StepStatistics {
  double loss_sum = 0;                                 // Σ cross-entropy over answer tokens
  double tokens = 0;                                   // answer tokens
  double audio_seconds = 0;                            // audio in the batches
  double positions = 0;                                // LLM sequence positions (text tokens + audio frames)
  double frames = 0;                                   // speech-encoder output frames
  double skipped = 0;                                  // examples dropped for unusable audio (data.on_error = skip)
  std::vector<double> source_loss_sum, source_tokens;  // per source, credited per example
  // As forward_backward leaves this rank's statistics, the losses are still on the training device: float64
  // [1 + sources], Σ cross-entropy then the per-source sums (Note [One read per step]); read_step sums and
  // reads them into loss_sum and source_loss_sum.
  at::Tensor device_loss_sums;

  double loss() const { return tokens > 0 ? loss_sum / tokens : 0.0; }
  double source_loss(size_t k) const { return source_tokens[k] > 0 ? source_loss_sum[k] / source_tokens[k] : 0.0; }
  // Sums every field over the ranks, in place: read_step without flags or gradient. A new field is added to
  // the list in train_step.cpp, which packs and unpacks, and to MetricsLog::record, which logs it.
  void allreduce(dist::Communicator& comm);
};

// What the step's one read of the device brings back (Note [One read per step]).
struct StepReading {
  StepStatistics stats;     // summed over the ranks
  double grad_norm = 0;     // of the averaged gradient, before clipping
  std::vector<bool> flags;  // for each flag, whether any rank set it
};

// Collective: sums this rank's statistics `mine` and `flags` over the ranks in one allreduce, then calls
// `gradient_square_sum` (may be null; it may issue collectives of its own) for Σg² of the averaged gradient,
// and reads both to the host in one copy.
StepReading read_step(const StepStatistics& mine, const std::vector<bool>& flags, dist::Communicator& comm,
                      const std::function<at::Tensor()>& gradient_square_sum);

struct StepOptions {
  size_t sources = 1;  // how many sources the batches' `sources` indices refer to
  bool bf16 = false;   // run.precision: bf16 autocast of forward and backward (train/precision.h)
  // Fault injection: applied to each micro-batch's loss sum before backward (tests: NaN steps).
  std::function<at::Tensor(const at::Tensor&)> corrupt_loss;
};

// Zeroes the gradients, runs forward and backward over `micro_batches` (this rank's, at least one) with the
// gradient synchronised by `bucketer` on the last, normalised as Note [Loss normalisation] says. Collective
// (the token count). Returns this rank's statistics (before StepStatistics::allreduce).
StepStatistics forward_backward(model::SpeechLM& lm, const std::vector<data::Batch>& micro_batches,
                                dist::GradientBucketer& bucketer, dist::Communicator& comm, const StepOptions& options);

// The optimizer's half of a step.
struct Update {
  double grad_norm = 0;  // of the averaged gradient, before clipping
  bool applied = false;  // false: the loss or the norm was not finite and the step was skipped
};

// → clip → step, from the averaged gradient's norm and the loss as the step's read gave them: clips the
// optimizer's parameters' gradients to global norm `clip` (≤ 0: no clipping) and, when `grad_norm` and `loss`
// are finite, takes one AdamW step at `lr`. Gradients are averaged, so every rank sees the same norm and
// decides alike.
Update clip_and_step(optim::AdamW& optimizer, double clip, double lr, double grad_norm, double loss);
// The same, reading the norm itself (pretraining, and tests that take a single step).
Update clip_and_step(optim::AdamW& optimizer, double clip, double lr, double loss);

// dist.zero = 2: the same from this rank's averaged gradient pieces (Note [Scattered buckets]): the global
// norm is the square root of every rank's Σg² over its pieces (piece_square_sum: one float64 allreduce), the
// pieces are clipped in place and AdamW updates the owned elements from them.
at::Tensor piece_square_sum(const dist::GradientBucketer& bucketer, dist::Communicator& comm);
Update clip_and_step(optim::AdamW& optimizer, const dist::GradientBucketer& bucketer, double clip, double lr,
                     double grad_norm, double loss);

// dist.zero = 1 or 2, after an applied step: each rank updated only its pieces; every bucket's pieces are
// all-gathered back into the full parameters (Note [Optimizer shards]). Collective.
void gather_parameters(const optim::ShardLayout& layout, const optim::AdamW& optimizer, dist::Communicator& comm);

}  // namespace vtb::train
