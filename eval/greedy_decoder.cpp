#include "eval/greedy_decoder.h"

#include <torch/torch.h>

#include <algorithm>

namespace vtb::eval {
namespace {

bool is_stop(int64_t id, const DecodeOptions& o) { return std::find(o.stop_ids.begin(), o.stop_ids.end(), id) != o.stop_ids.end(); }

// The reference path: each example alone, the whole sequence recomputed for every new token.
std::vector<int64_t> decode_by_recomputation(model::SpeechLM& lm, const at::Tensor& prompt_embeds, const DecodeOptions& o) {
  std::vector<int64_t> out;
  at::Tensor seq = prompt_embeds.unsqueeze(0);  // [1, L, D]
  for (int64_t t = 0; t < o.max_new_tokens; ++t) {
    const int64_t L = seq.size(1);
    at::Tensor pos = torch::arange(L, torch::TensorOptions().dtype(torch::kLong).device(seq.device())).unsqueeze(0);
    at::Tensor h = lm->llm->hidden_states(seq, pos, at::Tensor());
    const int64_t next = lm->llm->logits(h.select(1, L - 1)).argmax(-1).item<int64_t>();
    if (is_stop(next, o)) break;
    out.push_back(next);
    seq = torch::cat({seq, lm->llm->embed(torch::full({1, 1}, next, torch::TensorOptions().dtype(torch::kLong).device(seq.device())))}, 1);
  }
  return out;
}

}  // namespace

std::vector<std::vector<int64_t>> greedy_decode(model::SpeechLM& lm, const model::SpeechBatch& prompts, const DecodeOptions& o) {
  torch::NoGradGuard no_grad;
  const model::SplicedInput in = lm->splice(prompts);
  const int64_t B = in.embeds.size(0);
  const at::Tensor lengths = in.lengths.to(torch::kCPU);
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(B));
  if (!o.use_cache) {
    for (int64_t b = 0; b < B; ++b)
      out[static_cast<size_t>(b)] = decode_by_recomputation(lm, in.embeds[b].narrow(0, 0, lengths[b].item<int64_t>()), o);
    return out;
  }

  // 1. Prefill: the padded prompts once; each example's next token comes from its last real position.
  model::KVCache cache = lm->llm->new_cache();
  at::Tensor h = lm->llm->hidden_states(in.embeds, in.positions, in.valid, &cache);
  at::Tensor last = (in.lengths - 1).to(h.device());
  at::Tensor next = lm->llm->logits(h.index({torch::arange(B, last.options()), last})).argmax(-1);  // [B]
  at::Tensor valid = in.valid;
  std::vector<bool> done(static_cast<size_t>(B), false);
  // 2. One token per example per step, at the example's own next position; padding stays masked.
  for (int64_t t = 0; t < o.max_new_tokens; ++t) {
    const at::Tensor ids = next.to(torch::kCPU);
    bool all_done = true;
    for (int64_t b = 0; b < B; ++b) {
      if (done[static_cast<size_t>(b)]) continue;
      const int64_t id = ids[b].item<int64_t>();
      if (is_stop(id, o)) done[static_cast<size_t>(b)] = true;
      else out[static_cast<size_t>(b)].push_back(id);
      all_done = all_done && done[static_cast<size_t>(b)];
    }
    if (all_done || t + 1 == o.max_new_tokens) break;
    valid = torch::cat({valid, torch::ones({B, 1}, valid.options())}, 1);
    const at::Tensor pos = (in.lengths.to(next.device()) + t).unsqueeze(1);
    h = lm->llm->hidden_states(lm->llm->embed(next.unsqueeze(1)), pos, valid, &cache);
    next = lm->llm->logits(h.select(1, 0)).argmax(-1);
  }
  return out;
}

}  // namespace vtb::eval
