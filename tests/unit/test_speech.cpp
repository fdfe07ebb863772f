// Speech side: parameter counts against the paper, subsampling lengths, padding invariance of encoder
// and adapter, the relative-position shift against a direct computation, and SpeechLM splicing,
// targets and gradients.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "model/conformer.h"
#include "model/speech_lm.h"
#include "tests/unit/tiny_speech_lm.h"

namespace vtb::model {
namespace {

EncoderConfig tiny_encoder() { return vtb::testing::tiny_encoder_config(); }

int64_t count(torch::nn::Module& m) {
  int64_t n = 0;
  for (auto& p : m.parameters()) n += p.numel();
  return n;
}

double max_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

TEST(SpeechCounts, FormulasMatchModulesAndThePaper) {
  EncoderConfig enc = tiny_encoder();
  SpeechEncoder encoder(enc);
  EXPECT_EQ(enc.parameter_count(), count(*encoder));
  AdapterConfig adp{32, 48, ConformerShape{24, 2, 4, 48, 5, 0.1, true}};
  ModalityAdapter adapter(adp);
  EXPECT_EQ(adp.parameter_count(), count(*adapter));

  // The paper's configuration (docs/sources.md §7): 609 M encoder with 128 mels, 52 M adapter.
  EncoderConfig canary;
  EXPECT_EQ(canary.conformer.layer_parameter_count(), 25207808);
  EXPECT_EQ(canary.parameter_count(), 609321984);
  AdapterConfig paper_adapter;
  EXPECT_EQ(paper_adapter.parameter_count(), 51465216);
  EXPECT_EQ(paper_adapter.projection_parameter_count(), 2099200);
}

TEST(Subsampling, LengthsFollowNemosRuleThreeTimes) {
  torch::manual_seed(0);
  SpeechEncoder encoder(tiny_encoder());
  encoder->eval();
  torch::NoGradGuard no_grad;
  at::Tensor lengths = torch::tensor({100, 37, 8, 1}, torch::kLong);
  auto [frames, out_lengths] = encoder(torch::randn({4, 20, 100}), lengths);
  for (int64_t i = 0; i < 4; ++i) {
    int64_t L = lengths[i].item<int64_t>();
    for (int s = 0; s < 3; ++s) L = (L + 2 - 3) / 2 + 1;  // floor((L + 2p - k) / s) + 1, all non-negative
    EXPECT_EQ(out_lengths[i].item<int64_t>(), L);
  }
  EXPECT_EQ(frames.size(1), 13);  // 100 → 50 → 25 → 13
  EXPECT_EQ(frames.size(2), 32);
}

TEST(SpeechEncoder, PaddedFramesNeverChangeValidOutputs) {
  torch::manual_seed(1);
  SpeechEncoder encoder(tiny_encoder());
  AdapterConfig adp{32, 48, ConformerShape{32, 2, 4, 64, 5, 0.1, true}};
  ModalityAdapter adapter(adp);
  encoder->eval();
  adapter->eval();
  // Give BatchNorm non-trivial running statistics.
  for (auto& b : encoder->named_buffers())
    if (b.key().find("running_mean") != std::string::npos) b.value().normal_(0, 0.5);
  torch::NoGradGuard no_grad;
  const std::vector<int64_t> lengths{61, 23, 40};
  at::Tensor batch = torch::zeros({3, 20, 61});
  std::vector<at::Tensor> alone;
  for (int64_t i = 0; i < 3; ++i) {
    at::Tensor x = torch::randn({1, 20, lengths[i]});
    batch[i].narrow(1, 0, lengths[i]).copy_(x[0]);
    batch[i].narrow(1, lengths[i], 61 - lengths[i]).normal_(0, 5);  // garbage in the padding on purpose
    auto [f, l] = encoder(x, torch::tensor({lengths[i]}));
    alone.push_back(adapter(f, l)[0]);
  }
  auto [frames, out_lengths] = encoder(batch, torch::tensor(lengths));
  at::Tensor adapted = adapter(frames, out_lengths);
  for (int64_t i = 0; i < 3; ++i) {
    const int64_t n = out_lengths[i].item<int64_t>();
    ASSERT_EQ(n, alone[i].size(0));
    EXPECT_LE(max_diff(adapted[i].narrow(0, 0, n), alone[i]), 1e-5) << "example " << i;
  }
}

TEST(RelPositionAttention, ShiftEqualsDirectRelativeIndexing) {
  // Independent reference: score(i, j) = ((q_i+u)·k_j + (q_i+v)·p(i−j)) / √dk, with p(r) the projected
  // sinusoidal embedding of relative position r, computed by explicit indexing.
  torch::manual_seed(2);
  const int64_t d = 16, H = 2, dk = 8, T = 5;
  RelPositionAttention attn(d, H, 0.0);
  attn->eval();
  torch::NoGradGuard no_grad;
  attn->pos_bias_u.normal_();
  attn->pos_bias_v.normal_();
  at::Tensor x = torch::randn({1, T, d});
  at::Tensor pos = relative_positions(T, d, x.options());  // row k ↔ relative position T-1-k
  at::Tensor pad = torch::zeros({1, T}, torch::kBool);
  pad[0][T - 1] = true;  // one padded key
  at::Tensor got = attn(x, pos, pad);

  at::Tensor q = attn->linear_q(x)[0].view({T, H, dk});
  at::Tensor k = attn->linear_k(x)[0].view({T, H, dk});
  at::Tensor v = attn->linear_v(x)[0].view({T, H, dk});
  at::Tensor p = attn->linear_pos(pos)[0].view({2 * T - 1, H, dk});
  at::Tensor out = torch::zeros({T, H, dk});
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t i = 0; i < T; ++i) {
      at::Tensor s = torch::zeros({T});
      for (int64_t j = 0; j < T; ++j) {
        const int64_t row = (T - 1) - (i - j);
        s[j] = ((q[i][h] + attn->pos_bias_u[h]).dot(k[j][h]) + (q[i][h] + attn->pos_bias_v[h]).dot(p[row][h])) /
               std::sqrt(static_cast<double>(dk));
      }
      s[T - 1] = -10000.0;
      out[i][h] = torch::matmul(torch::softmax(s, 0), v.select(1, h));
    }
  }
  at::Tensor expected = attn->linear_out(out.reshape({1, T, d}));
  EXPECT_LE(max_diff(got, expected), 1e-5);
}

SpeechLMConfig tiny_speech_lm() { return vtb::testing::tiny_speech_lm_config(); }

TEST(SpeechLM, PlaceholdersAreReplacedInPlaceAndTargetsAreAnswersOnly) {
  torch::manual_seed(3);
  SpeechLM lm(tiny_speech_lm());
  lm->eval();
  torch::NoGradGuard no_grad;
  // Example 0: two audio segments in two places; example 1: text only (padded).
  SpeechBatch batch;
  batch.ids = torch::tensor({{2, 10, 7, 11, 12, 7, 13, 14, 15}, {2, 20, 21, 22, 23, 0, 0, 0, 0}}, torch::kLong);
  batch.lengths = torch::tensor({9, 5}, torch::kLong);
  batch.loss_mask = torch::tensor({{0, 0, 0, 0, 0, 0, 0, 1, 1}, {0, 0, 0, 1, 1, 0, 0, 0, 0}}, torch::kBool);
  batch.features = torch::randn({2, 20, 30});
  batch.feature_lengths = torch::tensor({30, 17}, torch::kLong);
  SplicedInput in = lm->splice(batch);

  std::vector<at::Tensor> audio = lm->audio_embeddings(batch.features, batch.feature_lengths);
  const int64_t a0 = audio[0].size(0), a1 = audio[1].size(0);  // 30 → 4 frames, 17 → 3 frames
  EXPECT_EQ(a0, 4);
  EXPECT_EQ(a1, 3);
  EXPECT_EQ(in.lengths[0].item<int64_t>(), 9 - 2 + a0 + a1);
  EXPECT_EQ(in.lengths[1].item<int64_t>(), 5);
  at::Tensor text = lm->llm->embed(batch.ids);
  // Layout of example 0: [2 10] [audio0] [11 12] [audio1] [13 14 15]
  EXPECT_TRUE(torch::equal(in.embeds[0].narrow(0, 0, 2), text[0].narrow(0, 0, 2)));
  EXPECT_TRUE(torch::equal(in.embeds[0].narrow(0, 2, a0), audio[0]));
  EXPECT_TRUE(torch::equal(in.embeds[0].narrow(0, 2 + a0, 2), text[0].narrow(0, 3, 2)));
  EXPECT_TRUE(torch::equal(in.embeds[0].narrow(0, 4 + a0, a1), audio[1]));
  EXPECT_TRUE(torch::equal(in.embeds[0].narrow(0, 4 + a0 + a1, 3), text[0].narrow(0, 6, 3)));
  // Targets: the position before each answer token predicts it; everything else is ignored.
  const int64_t S = in.targets.size(1);
  std::vector<int64_t> t0(S, -100), t1(S, -100);
  t0[4 + a0 + a1] = 14;
  t0[5 + a0 + a1] = 15;
  t1[2] = 22;
  t1[3] = 23;
  EXPECT_TRUE(torch::equal(in.targets[0], torch::tensor(t0, torch::kLong)));
  EXPECT_TRUE(torch::equal(in.targets[1], torch::tensor(t1, torch::kLong)));
  EXPECT_TRUE(torch::equal(in.positions[0], torch::arange(S, torch::kLong)));
  EXPECT_EQ(in.valid.sum().item<int64_t>(), 9 - 2 + a0 + a1 + 5);

  // The loss equals cross-entropy computed by hand over those four targets.
  LossOutput out = lm->loss(batch);
  EXPECT_EQ(out.tokens, 4);
  at::Tensor logits = lm->llm->logits(lm->llm->hidden_states(in.embeds, in.positions, in.valid));
  at::Tensor lp = torch::log_softmax(logits, -1);
  const double expected =
      -(lp[0][4 + a0 + a1][14] + lp[0][5 + a0 + a1][15] + lp[1][2][22] + lp[1][3][23]).item<double>() / 4;
  EXPECT_NEAR(out.loss.item<double>(), expected, 1e-5);

  batch.feature_lengths = torch::tensor({30}, torch::kLong);
  batch.features = torch::randn({1, 20, 30});
  EXPECT_THROW(lm->splice(batch), std::invalid_argument);  // 2 placeholders, 1 segment
}

TEST(SpeechLM, GradientsReachEncoderAdapterProjectionAndLoraOnly) {
  torch::manual_seed(4);
  SpeechLM lm(tiny_speech_lm());
  lm->freeze_llm_base();
  lm->train();
  SpeechBatch batch;
  batch.ids = torch::tensor({{2, 7, 11, 12, 13}}, torch::kLong);
  batch.lengths = torch::tensor({5}, torch::kLong);
  batch.loss_mask = torch::tensor({{0, 0, 0, 1, 1}}, torch::kBool);
  batch.features = torch::randn({1, 20, 40});
  batch.feature_lengths = torch::tensor({40}, torch::kLong);
  lm->loss(batch).loss.backward();
  for (auto& p : lm->named_parameters()) {
    const std::string& n = p.key();
    const bool llm_base = n.rfind("llm.", 0) == 0 && !is_lora_parameter(n);
    if (llm_base) {
      EXPECT_FALSE(p.value().grad().defined()) << n;
    } else if (n.find("lora.A") == std::string::npos) {  // A's gradient is zero while B is zero
      ASSERT_TRUE(p.value().grad().defined()) << n;
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0) << n;
    }
  }
}

}  // namespace
}  // namespace vtb::model
