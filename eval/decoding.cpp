#include "eval/decoding.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <limits>

namespace vtb::eval {
namespace {

// The next token of each row of `logits` [B, V]: argmax, or a sample from the temperature-scaled,
// top-p-truncated distribution.
at::Tensor pick(const at::Tensor& raw, const DecodeOptions& o, at::Generator& gen) {
  at::Tensor logits = raw;
  if (o.vocab_limit > 0 && o.vocab_limit < raw.size(-1)) {
    logits = raw.clone();
    logits.slice(-1, o.vocab_limit).fill_(-std::numeric_limits<float>::infinity());
  }
  if (o.temperature <= 0) return logits.argmax(-1);
  at::Tensor probs = torch::softmax(logits.to(torch::kFloat) / o.temperature, -1).cpu();
  if (o.top_p < 1) {
    auto [sorted, order] = probs.sort(-1, /*descending=*/true);
    at::Tensor before = sorted.cumsum(-1) - sorted;  // mass of the tokens ranked above each token
    sorted.masked_fill_(before >= o.top_p, 0.0);     // the top token always stays
    probs = torch::zeros_like(probs).scatter_(-1, order, sorted);
  }
  return at::multinomial(probs, 1, false, gen).squeeze(-1).to(logits.device());
}

bool is_stop(int64_t id, const DecodeOptions& o) {
  return std::find(o.stop_ids.begin(), o.stop_ids.end(), id) != o.stop_ids.end();
}

// The reference path: each example alone, the whole sequence recomputed for every new token.
std::vector<int64_t> decode_by_recomputation(model::SpeechLM& lm, const at::Tensor& prompt_embeds,
                                             const DecodeOptions& o, at::Generator& gen) {
  std::vector<int64_t> out;
  at::Tensor seq = prompt_embeds.unsqueeze(0);  // [1, L, D]
  for (int64_t t = 0; t < o.max_new_tokens; ++t) {
    const int64_t L = seq.size(1);
    at::Tensor pos = torch::arange(L, torch::TensorOptions().dtype(torch::kLong).device(seq.device())).unsqueeze(0);
    at::Tensor h = lm->llm->hidden_states(seq, pos, at::Tensor());
    const int64_t next = pick(lm->llm->logits(h.select(1, L - 1)), o, gen).item<int64_t>();
    if (is_stop(next, o)) break;
    out.push_back(next);
    seq = torch::cat({seq, lm->llm->embed(torch::full(
                               {1, 1}, next, torch::TensorOptions().dtype(torch::kLong).device(seq.device())))},
                     1);
  }
  return out;
}

}  // namespace

std::vector<std::vector<int64_t>> sample_or_greedy_decode(model::SpeechLM& lm, const model::SpeechBatch& prompts,
                                                          const DecodeOptions& o) {
  torch::NoGradGuard no_grad;
  const model::SplicedInput in = lm->splice(prompts);
  const int64_t B = in.embeds.size(0);
  const at::Tensor lengths = in.lengths.to(torch::kCPU);
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(B));
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  if (!o.use_cache) {
    for (int64_t b = 0; b < B; ++b)
      out[static_cast<size_t>(b)] =
          decode_by_recomputation(lm, in.embeds[b].narrow(0, 0, lengths[b].item<int64_t>()), o, gen);
    return out;
  }

  // 1. Prefill: the padded prompts once; each example's next token comes from its last real position.
  model::KVCache cache = lm->llm->new_cache();
  at::Tensor h = lm->llm->hidden_states(in.embeds, in.positions, in.valid, &cache);
  at::Tensor last = (in.lengths - 1).to(h.device());
  at::Tensor next = pick(lm->llm->logits(h.index({torch::arange(B, last.options()), last})), o, gen);  // [B]
  at::Tensor valid = in.valid;
  std::vector<bool> done(static_cast<size_t>(B), false);
  // 2. One token per example per step, at the example's own next position; padding stays masked.
  for (int64_t t = 0; t < o.max_new_tokens; ++t) {
    const at::Tensor ids = next.to(torch::kCPU);
    bool all_done = true;
    for (int64_t b = 0; b < B; ++b) {
      if (done[static_cast<size_t>(b)]) continue;
      const int64_t id = ids[b].item<int64_t>();
      if (is_stop(id, o))
        done[static_cast<size_t>(b)] = true;
      else
        out[static_cast<size_t>(b)].push_back(id);
      all_done = all_done && done[static_cast<size_t>(b)];
    }
    if (all_done || t + 1 == o.max_new_tokens) break;
    valid = torch::cat({valid, torch::ones({B, 1}, valid.options())}, 1);
    const at::Tensor pos = (in.lengths.to(next.device()) + t).unsqueeze(1);
    h = lm->llm->hidden_states(lm->llm->embed(next.unsqueeze(1)), pos, valid, &cache);
    next = pick(lm->llm->logits(h.select(1, 0)), o, gen);
  }
  return out;
}

}  // namespace vtb::eval
