#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "eval/decoding.h"

namespace vtb::eval {
namespace {

struct Hypothesis {
  std::vector<int64_t> tokens;  // without the stop token
  double log_prob = 0;          // of every token, the stop token included
  double score = 0;             // log_prob / length^length_penalty
};

double ranked(double log_prob, size_t length, double length_penalty) {
  return length_penalty == 0 ? log_prob
                             : log_prob / std::pow(static_cast<double>(std::max<size_t>(1, length)), length_penalty);
}

bool is_stop(int64_t id, const DecodeOptions& o) {
  return std::find(o.stop_ids.begin(), o.stop_ids.end(), id) != o.stop_ids.end();
}

// Log-probabilities [n, V] of the next token, ids ≥ vocab_limit impossible.
at::Tensor next_log_probs(model::SpeechLM& lm, const at::Tensor& hidden_last, const DecodeOptions& o) {
  at::Tensor logits = lm->llm->logits(hidden_last).to(torch::kDouble);
  if (o.vocab_limit > 0 && o.vocab_limit < logits.size(-1))
    logits.slice(-1, o.vocab_limit).fill_(-std::numeric_limits<double>::infinity());
  return torch::log_softmax(logits, -1).cpu();
}

std::vector<int64_t> search_one(model::SpeechLM& lm, const at::Tensor& prompt /* [L, D] */, const DecodeOptions& o) {
  const auto K = static_cast<size_t>(o.beams);
  const c10::Device device = prompt.device();
  const int64_t L = prompt.size(0);
  model::KVCache cache = lm->llm->new_cache();
  at::Tensor positions = torch::arange(L, torch::TensorOptions().dtype(torch::kLong).device(device)).unsqueeze(0);
  at::Tensor h = lm->llm->hidden_states(prompt.unsqueeze(0), positions, at::Tensor(), &cache);
  at::Tensor log_probs = next_log_probs(lm, h.select(1, L - 1), o);  // [1, V]

  std::vector<Hypothesis> alive{Hypothesis{}};
  std::vector<Hypothesis> ended;  // the best K, best first
  auto add_ended = [&](Hypothesis hyp) {
    hyp.score = ranked(hyp.log_prob, hyp.tokens.size() + 1, o.length_penalty);
    ended.push_back(std::move(hyp));
    std::stable_sort(ended.begin(), ended.end(), [](const auto& a, const auto& b) { return a.score > b.score; });
    if (ended.size() > K) ended.pop_back();
  };
  for (int64_t t = 0; t < o.max_new_tokens; ++t) {
    // Every continuation of every live hypothesis, best first; 2K of them always hold K that do not stop.
    const int64_t V = log_probs.size(1);
    at::Tensor base = torch::tensor(
        [&] {
          std::vector<double> v;
          for (const auto& hyp : alive) v.push_back(hyp.log_prob);
          return v;
        }(),
        torch::kDouble);
    at::Tensor total = (log_probs + base.unsqueeze(1)).reshape({-1});
    const int64_t take = std::min<int64_t>(total.numel(), 2 * static_cast<int64_t>(K));
    auto [values, indices] = total.topk(take);
    std::vector<Hypothesis> next;
    std::vector<int64_t> parents;
    for (int64_t i = 0; i < take && next.size() < K; ++i) {
      const double lp = values[i].item<double>();
      if (!std::isfinite(lp)) break;
      const int64_t flat = indices[i].item<int64_t>();
      const auto parent = static_cast<size_t>(flat / V);
      const int64_t token = flat % V;
      Hypothesis hyp{alive[parent].tokens, lp, 0};
      if (is_stop(token, o)) {
        add_ended(std::move(hyp));
        continue;
      }
      hyp.tokens.push_back(token);
      next.push_back(std::move(hyp));
      parents.push_back(static_cast<int64_t>(parent));
    }
    alive = std::move(next);
    if (alive.empty()) break;
    // Done when K hypotheses have ended and the best live one does not rank above the worst of them.
    if (ended.size() == K) {
      double best_alive = -std::numeric_limits<double>::infinity();
      for (const auto& hyp : alive)
        best_alive = std::max(best_alive, ranked(hyp.log_prob, hyp.tokens.size(), o.length_penalty));
      if (best_alive <= ended.back().score) {
        alive.clear();
        break;
      }
    }
    if (t + 1 == o.max_new_tokens) break;
    // One step for every live hypothesis: its parent's cache, then its new token.
    const at::Tensor order = torch::tensor(parents, torch::TensorOptions().dtype(torch::kLong)).to(device);
    for (auto* part : {&cache.k, &cache.v})
      for (auto& x : *part) x = x.index_select(0, order);
    std::vector<int64_t> last;
    for (const auto& hyp : alive) last.push_back(hyp.tokens.back());
    const at::Tensor ids = torch::tensor(last, torch::TensorOptions().dtype(torch::kLong)).to(device).unsqueeze(1);
    const auto n = static_cast<int64_t>(alive.size());
    positions = torch::full({n, 1}, L + t, torch::TensorOptions().dtype(torch::kLong).device(device));
    h = lm->llm->hidden_states(lm->llm->embed(ids), positions, at::Tensor(), &cache);
    log_probs = next_log_probs(lm, h.select(1, 0), o);
  }
  // Hypotheses cut by max_new_tokens end there, without a stop token.
  for (auto& hyp : alive) {
    hyp.score = ranked(hyp.log_prob, hyp.tokens.size(), o.length_penalty);
    ended.push_back(std::move(hyp));
  }
  std::stable_sort(ended.begin(), ended.end(), [](const auto& a, const auto& b) { return a.score > b.score; });
  return ended.empty() ? std::vector<int64_t>{} : ended.front().tokens;
}

}  // namespace

std::vector<std::vector<int64_t>> beam_search(model::SpeechLM& lm, const model::SpeechBatch& prompts,
                                              const DecodeOptions& o) {
  if (o.beams < 1) throw std::invalid_argument("beam search needs at least one beam");
  torch::NoGradGuard no_grad;
  const model::SplicedInput in = lm->splice(prompts);
  check_prompt_lengths(in.lengths, o);
  const at::Tensor lengths = in.lengths.to(torch::kCPU);
  std::vector<std::vector<int64_t>> out;
  for (int64_t b = 0; b < in.embeds.size(0); ++b)
    out.push_back(search_one(lm, in.embeds[b].narrow(0, 0, lengths[b].item<int64_t>()), o));
  return out;
}

std::vector<std::vector<int64_t>> decode(model::SpeechLM& lm, const model::SpeechBatch& prompts,
                                         const DecodeOptions& o) {
  check_prompt_lengths(prompts.lengths, o);  // text tokens alone, before the speech encoder runs
  return o.beams > 1 ? beam_search(lm, prompts, o) : sample_or_greedy_decode(lm, prompts, o);
}

}  // namespace vtb::eval
