// Greedy decoding: with the KV cache it equals full recomputation token for token, and a padded batch of
// prompts (audio in some) gives each prompt what it gets alone. Beam search: one beam is greedy, and with
// enough beams it finds the most probable continuation that an exhaustive search (full recomputation of
// every sequence) finds.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <limits>

#include "eval/decoding.h"
#include "tests/unit/tiny_speech_lm.h"

namespace vtb::eval {
namespace {

model::SpeechBatch prompts() {
  model::SpeechBatch b;
  b.ids = torch::tensor({{2, 10, 7, 11, 12, 13, 14, 15}, {2, 20, 21, 22, 0, 0, 0, 0}, {2, 30, 7, 31, 7, 32, 0, 0}},
                        torch::kLong);
  b.lengths = torch::tensor({8, 4, 6}, torch::kLong);
  b.loss_mask = torch::zeros({3, 8}, torch::kBool);
  b.features = torch::randn({3, 20, 40});
  b.feature_lengths = torch::tensor({40, 25, 33}, torch::kLong);
  return b;
}

model::SpeechLM trained_looking_model() {
  torch::manual_seed(11);
  model::SpeechLM lm(vtb::testing::tiny_speech_lm_config());
  torch::NoGradGuard no_grad;
  for (auto& p : lm->named_parameters())
    if (model::is_lora_parameter(p.key())) p.value().normal_(0, 0.3);
  lm->eval();
  return lm;
}

TEST(GreedyDecoder, CacheEqualsRecomputationTokenForToken) {
  model::SpeechLM lm = trained_looking_model();
  torch::manual_seed(12);
  const model::SpeechBatch b = prompts();
  DecodeOptions o;
  o.max_new_tokens = 12;
  const auto cached = sample_or_greedy_decode(lm, b, o);
  o.use_cache = false;
  const auto recomputed = sample_or_greedy_decode(lm, b, o);
  ASSERT_EQ(cached.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(cached[i].size(), 12u);
    EXPECT_EQ(cached[i], recomputed[i]) << "prompt " << i;
  }
}

TEST(GreedyDecoder, BatchEqualsEachPromptAlone) {
  model::SpeechLM lm = trained_looking_model();
  torch::manual_seed(13);
  const model::SpeechBatch b = prompts();
  DecodeOptions o;
  o.max_new_tokens = 10;
  const auto batched = sample_or_greedy_decode(lm, b, o);
  int64_t segment = 0;
  for (int64_t i = 0; i < 3; ++i) {
    const int64_t n = b.lengths[i].item<int64_t>();
    model::SpeechBatch one;
    one.ids = b.ids[i].narrow(0, 0, n).unsqueeze(0);
    one.lengths = torch::tensor({n}, torch::kLong);
    one.loss_mask = torch::zeros({1, n}, torch::kBool);
    const int64_t audio = one.ids.eq(7).sum().item<int64_t>();
    if (audio > 0) {
      one.features = b.features.narrow(0, segment, audio);
      one.feature_lengths = b.feature_lengths.narrow(0, segment, audio);
      segment += audio;
    }
    EXPECT_EQ(sample_or_greedy_decode(lm, one, o)[0], batched[static_cast<size_t>(i)]) << "prompt " << i;
  }
}

TEST(GreedyDecoder, StopsAtStopTokens) {
  model::SpeechLM lm = trained_looking_model();
  torch::manual_seed(14);
  const model::SpeechBatch b = prompts();
  DecodeOptions o;
  o.max_new_tokens = 12;
  const auto free_run = sample_or_greedy_decode(lm, b, o);
  o.stop_ids = {free_run[0][3]};  // the 4th token of prompt 0 becomes a stop token
  const auto stopped = sample_or_greedy_decode(lm, b, o);
  const auto first_stop = std::find(free_run[0].begin(), free_run[0].end(), o.stop_ids[0]);
  EXPECT_EQ(stopped[0], std::vector<int64_t>(free_run[0].begin(), first_stop));
}

TEST(Sampling, SeededTemperatureSamplingAndTinyTopPIsGreedy) {
  model::SpeechLM lm = trained_looking_model();
  torch::manual_seed(15);
  const model::SpeechBatch b = prompts();
  DecodeOptions greedy;
  greedy.max_new_tokens = 10;
  const auto g = sample_or_greedy_decode(lm, b, greedy);
  DecodeOptions hot = greedy;
  hot.temperature = 1.5;
  hot.seed = 7;
  const auto s1 = sample_or_greedy_decode(lm, b, hot), s2 = sample_or_greedy_decode(lm, b, hot);
  EXPECT_EQ(s1, s2);  // same seed, same samples
  hot.seed = 8;
  EXPECT_NE(sample_or_greedy_decode(lm, b, hot), s1);  // another seed, other samples (10 tokens × 3 prompts)
  EXPECT_NE(s1, g);
  DecodeOptions nucleus = hot;
  nucleus.top_p = 1e-6;  // only the most likely token survives: greedy again
  EXPECT_EQ(sample_or_greedy_decode(lm, b, nucleus), g);
}

// log p(tokens | prompt) by full recomputation, float64, ids ≥ vocab_limit impossible.
double sequence_log_prob(model::SpeechLM& lm, const at::Tensor& prompt, const std::vector<int64_t>& tokens,
                         int64_t vocab_limit) {
  torch::NoGradGuard no_grad;
  at::Tensor seq = prompt.unsqueeze(0);
  if (!tokens.empty()) seq = torch::cat({seq, lm->llm->embed(torch::tensor(tokens, torch::kLong).unsqueeze(0))}, 1);
  const int64_t L = prompt.size(0), T = seq.size(1);
  at::Tensor h = lm->llm->hidden_states(seq, torch::arange(T, torch::kLong).unsqueeze(0), at::Tensor());
  at::Tensor logits = lm->llm->logits(h[0]).to(torch::kDouble);
  logits.slice(-1, vocab_limit).fill_(-std::numeric_limits<double>::infinity());
  const at::Tensor lp = torch::log_softmax(logits, -1);
  double total = 0;
  for (size_t i = 0; i < tokens.size(); ++i) total += lp[L - 1 + static_cast<int64_t>(i)][tokens[i]].item<double>();
  return total;
}

TEST(BeamSearch, OneBeamIsGreedy) {
  model::SpeechLM lm = trained_looking_model();
  torch::manual_seed(16);
  const model::SpeechBatch b = prompts();
  DecodeOptions o;
  o.max_new_tokens = 12;
  const auto free_run = sample_or_greedy_decode(lm, b, o);
  o.stop_ids = {free_run[1][4]};  // prompt 1 stops early, the others may too
  o.length_penalty = 0;
  const auto greedy = sample_or_greedy_decode(lm, b, o);
  o.beams = 1;
  EXPECT_EQ(beam_search(lm, b, o), greedy);
  EXPECT_EQ(decode(lm, b, o), greedy);
}

TEST(BeamSearch, EnoughBeamsFindTheExhaustiveSearchsBest) {
  model::SpeechLM lm = trained_looking_model();
  torch::manual_seed(17);
  const model::SpeechBatch b = prompts();
  DecodeOptions o;
  o.vocab_limit = 5;  // tokens 0..4, 1 stops: 4 + 16 + 64 + 16 + 4 + 1 sequences to enumerate
  o.stop_ids = {1};
  o.max_new_tokens = 3;
  o.beams = 25;  // never prunes: at most 16 live prefixes of any length
  o.length_penalty = 0;
  const auto found = beam_search(lm, b, o);
  const model::SplicedInput in = lm->splice(b);
  for (int64_t p = 0; p < 3; ++p) {
    const at::Tensor prompt = in.embeds[p].narrow(0, 0, in.lengths[p].item<int64_t>()).detach();
    // Every ending: k < 3 tokens then the stop token, or 3 tokens cut by max_new_tokens.
    double best = -std::numeric_limits<double>::infinity();
    std::vector<int64_t> best_tokens;
    std::function<void(std::vector<int64_t>)> walk = [&](std::vector<int64_t> prefix) {
      if (prefix.size() < 3) {
        auto ended = prefix;
        ended.push_back(1);
        const double lp = sequence_log_prob(lm, prompt, ended, 5);
        if (lp > best) best = lp, best_tokens = prefix;
        for (int64_t t : {0, 2, 3, 4}) {
          auto longer = prefix;
          longer.push_back(t);
          walk(longer);
        }
      } else {
        const double lp = sequence_log_prob(lm, prompt, prefix, 5);
        if (lp > best) best = lp, best_tokens = prefix;
      }
    };
    walk({});
    EXPECT_EQ(found[static_cast<size_t>(p)], best_tokens) << "prompt " << p << ", best log p " << best;
  }
}

}  // namespace
}  // namespace vtb::eval
