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

// A chat turn by turn on one KV cache gives the replies that decoding the whole conversation from scratch
// (full recomputation, no cache) gives: three turns, audio in the second, replies that end at a stop id and
// at max_new_tokens (whose last token is fed with the next turn).
TEST(ConversationDecoder, EqualsRecomputingTheWholeConversation) {
  model::SpeechLM lm = trained_looking_model();
  torch::manual_seed(16);
  auto batch = [](std::vector<int64_t> ids, int64_t audio) {
    model::SpeechBatch b;
    const auto n = static_cast<int64_t>(ids.size());
    b.ids = torch::tensor(ids, torch::kLong).unsqueeze(0);
    b.lengths = torch::tensor({n}, torch::kLong);
    b.loss_mask = torch::zeros({1, n}, torch::kBool);
    if (audio > 0) {
      b.features = torch::randn({audio, 20, 30});
      b.feature_lengths = torch::full({audio}, 30, torch::kLong);
    }
    return b;
  };
  const std::vector<model::SpeechBatch> turns = {batch({2, 10, 11, 12}, 0), batch({3, 20, 7, 21}, 1),
                                                 batch({3, 30, 31, 32, 33}, 0)};
  DecodeOptions o;
  o.max_new_tokens = 6;
  // The stop id: the third token of the first reply without stops, so that reply ends at a stop.
  o.stop_ids = {ConversationDecoder(lm, o).reply(turns[0]).at(2)};

  ConversationDecoder chat(lm, o);
  std::vector<int64_t> so_far;
  std::vector<at::Tensor> features;
  int ended_by_stop = 0, ended_by_limit = 0;
  for (const auto& turn : turns) {
    const std::vector<int64_t> reply = chat.reply(turn);
    for (int64_t i = 0; i < turn.lengths[0].item<int64_t>(); ++i) so_far.push_back(turn.ids[0][i].item<int64_t>());
    if (turn.features.defined()) features.push_back(turn.features);
    DecodeOptions recompute = o;
    recompute.use_cache = false;
    model::SpeechBatch whole = batch(so_far, 0);
    if (!features.empty()) {
      whole.features = torch::cat(features);
      whole.feature_lengths = torch::full({whole.features.size(0)}, 30, torch::kLong);
    }
    EXPECT_EQ(reply, sample_or_greedy_decode(lm, whole, recompute)[0]) << "turn " << so_far.size();
    // What the reference conversation continues with: the reply (its stop id stands for <end_of_turn>,
    // which the next turn starts with in a real chat; here id 3).
    so_far.insert(so_far.end(), reply.begin(), reply.end());
    (static_cast<int64_t>(reply.size()) == o.max_new_tokens ? ended_by_limit : ended_by_stop) += 1;
    // The cache holds the prompt's positions (an audio segment counts its frames) and every reply token
    // but an unfed last one.
    const int64_t positions = lm->splice(whole).lengths[0].item<int64_t>() + static_cast<int64_t>(reply.size());
    EXPECT_EQ(chat.length(), static_cast<int64_t>(reply.size()) == o.max_new_tokens ? positions - 1 : positions);
  }
  EXPECT_GE(ended_by_stop, 1);
  EXPECT_GE(ended_by_limit, 1);
}

TEST(ConversationDecoder, RefusesAConversationLongerThanMaxLengthAndKeepsIt) {
  model::SpeechLM lm = trained_looking_model();
  DecodeOptions o;
  o.max_new_tokens = 4;
  o.max_length = 16;
  ConversationDecoder chat(lm, o);
  model::SpeechBatch b;
  b.ids = torch::tensor({{2, 10, 11, 12, 13, 14}}, torch::kLong);
  b.lengths = torch::tensor({6}, torch::kLong);
  b.loss_mask = torch::zeros({1, 6}, torch::kBool);
  chat.reply(b);  // 6 + 4 ≤ 16
  const int64_t held = chat.length();
  try {
    chat.reply(b);  // held + 6 + 4 > 16
    FAIL() << "a conversation past max_length was decoded";
  } catch (const PromptTooLong& e) {
    EXPECT_NE(std::string(e.what()).find("exceeds the limit of 16"), std::string::npos) << e.what();
  }
  EXPECT_EQ(chat.length(), held);
  chat.reset();
  EXPECT_EQ(chat.length(), 0);
  o.max_length = 9;  // one prompt alone: 6 + 4 > 9, refused before the LLM runs
  EXPECT_THROW(decode(lm, b, o), PromptTooLong);
}

}  // namespace
}  // namespace vtb::eval
