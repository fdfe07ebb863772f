// Note [Loss normalisation], checked over real ranks: however unevenly the answer tokens fall on ranks and
// micro-batches, the averaged gradient of forward_backward equals the gradient of the mean cross-entropy of
// one process over the union of every example (the loss that is logged), and the logged loss is that mean.
//
// The model runs in eval mode: no dropout, and BatchNorm on its running statistics; batch statistics would
// couple the examples of a batch, so the union would be a different computation (as in any data-parallel
// trainer without synchronised BatchNorm).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "data/batch_loader.h"
#include "dist/gradient_bucketer.h"
#include "tests/mpi/mpi_main.h"
#include "tests/unit/tiny_speech_lm.h"
#include "train/train_step.h"

namespace vtb::train {
namespace {

using vtb::testing::comm;

// Example i: <bos> text <audio> text, then 1 + 2i answer tokens, and 24 + 5i frames of audio: every
// example has a different number of answer tokens.
struct Example {
  std::vector<int64_t> ids;
  std::vector<bool> answer;
  at::Tensor features;  // [20, frames]
};

Example example(int i) {
  Example e;
  e.ids = {2, 10 + i % 5, 7, 11};
  e.answer.assign(e.ids.size(), false);
  for (int j = 0; j < 1 + 2 * i; ++j) {
    e.ids.push_back(20 + (i * 7 + j) % 15);
    e.answer.push_back(true);
  }
  torch::manual_seed(100 + static_cast<uint64_t>(i));
  e.features = torch::randn({20, 24 + 5 * i});
  return e;
}

data::Batch batch_of(const std::vector<int>& indices) {
  std::vector<Example> ex;
  for (int i : indices) ex.push_back(example(i));
  size_t longest = 0;
  for (const auto& e : ex) longest = std::max(longest, e.ids.size());
  const auto B = static_cast<int64_t>(ex.size()), T = static_cast<int64_t>(longest);
  data::Batch b;
  b.ids = torch::zeros({B, T}, torch::kLong);
  b.loss_mask = torch::zeros({B, T}, torch::kBool);
  b.lengths = torch::zeros({B}, torch::kLong);
  std::vector<at::Tensor> features;
  for (int64_t r = 0; r < B; ++r) {
    const Example& e = ex[static_cast<size_t>(r)];
    for (size_t t = 0; t < e.ids.size(); ++t) {
      b.ids[r][static_cast<int64_t>(t)] = e.ids[t];
      b.loss_mask[r][static_cast<int64_t>(t)] = static_cast<bool>(e.answer[t]);
    }
    b.lengths[r] = static_cast<int64_t>(e.ids.size());
    features.push_back(e.features);
    b.sources.push_back(static_cast<size_t>(indices[static_cast<size_t>(r)] % 2));  // two sources, per example
  }
  std::tie(b.features, b.feature_lengths) = data::pad_features(features);
  b.answer_tokens = b.loss_mask.sum().item<int64_t>();
  return b;
}

model::SpeechLM tiny_model() {
  torch::manual_seed(5);
  model::SpeechLM lm(vtb::testing::tiny_speech_lm_config());
  lm->freeze_llm_base();
  lm->eval();
  // LoRA's B starts at zero, which would leave A without a gradient: give it values.
  torch::NoGradGuard no_grad;
  for (auto& p : lm->named_parameters())
    if (p.key().find(".B") != std::string::npos && p.value().requires_grad()) p.value().normal_(0, 0.1);
  return lm;
}

// Rank r holds examples [r(r+1)/2, (r+1)(r+2)/2): 1, 2, 3, ... examples of growing length.
std::vector<int> my_examples() {
  const int r = comm().rank();
  std::vector<int> out;
  for (int i = r * (r + 1) / 2; i < (r + 1) * (r + 2) / 2; ++i) out.push_back(i);
  return out;
}

std::vector<int> all_examples() {
  const int n = comm().size();
  std::vector<int> out;
  for (int i = 0; i < n * (n + 1) / 2; ++i) out.push_back(i);
  return out;
}

void expect_union_gradients(const std::vector<data::Batch>& micro_batches) {
  model::SpeechLM lm = tiny_model();
  dist::NamedTensors trainable;
  for (const auto& p : lm->named_parameters())
    if (p.value().requires_grad()) trainable.emplace_back(p.key(), p.value());
  dist::GradientBucketer bucketer(trainable, comm());
  StepStatistics stats = forward_backward(lm, micro_batches, bucketer, comm(), StepOptions{2, {}});
  stats.allreduce(comm());

  // The reference: one process, one batch holding every rank's examples, the plain mean loss.
  model::SpeechLM ref = tiny_model();
  const data::Batch everything = batch_of(all_examples());
  model::LossOutput out = ref->loss(
      {everything.ids, everything.lengths, everything.loss_mask, everything.features, everything.feature_lengths});
  out.loss.backward();
  EXPECT_EQ(stats.tokens, static_cast<double>(out.tokens));
  EXPECT_NEAR(stats.loss(), out.loss.item<double>(), 1e-6 * out.loss.item<double>());
  // Per source, credited per example: source k holds the examples i with i % 2 == k.
  for (int k = 0; k < 2; ++k) {
    double sum = 0, tokens = 0;
    for (int i : all_examples()) {
      if (i % 2 != k) continue;
      model::LossOutput one = ref->loss({batch_of({i}).ids, batch_of({i}).lengths, batch_of({i}).loss_mask,
                                         batch_of({i}).features, batch_of({i}).feature_lengths});
      sum += one.loss_sum.item<double>();
      tokens += static_cast<double>(one.tokens);
    }
    EXPECT_NEAR(stats.source_loss(k), sum / tokens, 1e-5 * sum / tokens) << "source " << k;
  }

  auto got = lm->named_parameters(), want = ref->named_parameters();
  size_t compared = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!got[i].value().requires_grad()) continue;
    const at::Tensor g = got[i].value().grad(), w = want[i].value().grad();
    ASSERT_TRUE(g.defined() && w.defined()) << got[i].key();
    const double scale = w.abs().max().item<double>();
    EXPECT_LE((g - w).abs().max().item<double>(), 1e-5 * scale + 1e-9) << got[i].key();
    ++compared;
  }
  EXPECT_GT(compared, 10u);
}

TEST(TrainStep, UnevenRanksGiveTheGradientOfTheUnionBatch) { expect_union_gradients({batch_of(my_examples())}); }

TEST(TrainStep, UnevenMicroBatchesGiveTheGradientOfOneBatchHoldingThem) {
  std::vector<data::Batch> micro;
  for (int i : my_examples()) micro.push_back(batch_of({i}));  // rank r: r + 1 micro-batches
  // Every rank runs train.micro_batches micro-batches a step: here as many as the busiest rank has
  // examples, the extra ones of the others holding no answer token (they add nothing to the loss).
  const int most = comm().size();
  while (static_cast<int>(micro.size()) < most) {
    data::Batch empty = batch_of({my_examples().front()});
    empty.loss_mask.zero_();
    empty.answer_tokens = 0;
    micro.push_back(empty);
  }
  expect_union_gradients(micro);
}

}  // namespace
}  // namespace vtb::train
