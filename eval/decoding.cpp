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

// The cached path. Feeds `in` after what `cache` holds (`valid`: its key mask so far, [B, C] or undefined when
// empty; `start` [B]: each example's first new position), then decodes one token per example per step, at the
// example's own next position; padding stays masked. On return `cache` and `valid` hold everything fed, and
// `unfed` [B] each example's last pick (its stop id, or its last token at max_new_tokens), not fed.
std::vector<std::vector<int64_t>> prefill_and_decode(model::SpeechLM& lm, const model::SplicedInput& in,
                                                     model::KVCache& cache, at::Tensor& valid, const at::Tensor& start,
                                                     const DecodeOptions& o, at::Generator& gen, at::Tensor& unfed) {
  const int64_t B = in.embeds.size(0);
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(B));
  // 1. Prefill: the padded prompts once; each example's next token comes from its last real position.
  const at::Tensor first = start.to(in.positions.device()).unsqueeze(1);
  valid = valid.defined() ? torch::cat({valid, in.valid}, 1) : in.valid;
  at::Tensor h = lm->llm->hidden_states(in.embeds, in.positions + first, valid, &cache);
  at::Tensor last = (in.lengths - 1).to(h.device());
  at::Tensor next = pick(lm->llm->logits(h.index({torch::arange(B, last.options()), last})), o, gen);  // [B]
  const at::Tensor end = (first.squeeze(1) + in.lengths.to(first.device())).to(next.device());
  std::vector<bool> done(static_cast<size_t>(B), false);
  // 2. One token per example per step.
  for (int64_t t = 0;; ++t) {
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
    h = lm->llm->hidden_states(lm->llm->embed(next.unsqueeze(1)), (end + t).unsqueeze(1), valid, &cache);
    next = pick(lm->llm->logits(h.select(1, 0)), o, gen);
  }
  unfed = next;
  return out;
}

}  // namespace

void check_prompt_lengths(const at::Tensor& lengths, const DecodeOptions& o, int64_t already) {
  if (o.max_length <= 0) return;
  const at::Tensor cpu = lengths.to(torch::kCPU);
  for (int64_t b = 0; b < cpu.size(0); ++b) {
    const int64_t n = already + cpu[b].item<int64_t>();
    if (n + o.max_new_tokens <= o.max_length) continue;
    throw PromptTooLong(b, "the prompt is " + std::to_string(n) + " positions (text tokens and audio frames); with " +
                               std::to_string(o.max_new_tokens) + " new tokens that exceeds the limit of " +
                               std::to_string(o.max_length) +
                               " (--max-length; by default the LLM's max_position_embeddings)");
  }
}

std::vector<std::vector<int64_t>> sample_or_greedy_decode(model::SpeechLM& lm, const model::SpeechBatch& prompts,
                                                          const DecodeOptions& o) {
  torch::NoGradGuard no_grad;
  const model::SplicedInput in = lm->splice(prompts);
  check_prompt_lengths(in.lengths, o);
  const int64_t B = in.embeds.size(0);
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  if (!o.use_cache) {
    const at::Tensor lengths = in.lengths.to(torch::kCPU);
    std::vector<std::vector<int64_t>> out(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b)
      out[static_cast<size_t>(b)] =
          decode_by_recomputation(lm, in.embeds[b].narrow(0, 0, lengths[b].item<int64_t>()), o, gen);
    return out;
  }
  model::KVCache cache = lm->llm->new_cache();
  at::Tensor valid, unfed;
  return prefill_and_decode(lm, in, cache, valid, torch::zeros({B}, torch::kLong), o, gen, unfed);
}

ConversationDecoder::ConversationDecoder(model::SpeechLM& lm, const DecodeOptions& options)
    : lm_(lm), options_(options), gen_(at::make_generator<at::CPUGeneratorImpl>(options.seed)) {
  reset();
}

void ConversationDecoder::reset() {
  cache_ = lm_->llm->new_cache();
  length_ = 0;
  unfed_.reset();
}

std::vector<int64_t> ConversationDecoder::reply(const model::SpeechBatch& turn) {
  torch::NoGradGuard no_grad;
  if (turn.ids.size(0) != 1) throw std::invalid_argument("ConversationDecoder: one conversation at a time");
  // The last reply's token that was picked but never fed comes first (a stop id is not: the template's
  // <end_of_turn> that the turn starts with stands for it).
  model::SpeechBatch b = turn;
  if (unfed_) {
    b.ids = torch::cat({torch::full({1, 1}, *unfed_, turn.ids.options()), turn.ids}, 1);
    b.lengths = turn.lengths + 1;
    b.loss_mask = torch::zeros_like(b.ids, torch::kBool);
  }
  check_prompt_lengths(b.lengths, options_, length_);  // before the speech encoder runs
  const model::SplicedInput in = lm_->splice(b);
  check_prompt_lengths(in.lengths, options_, length_);
  // The cache's key mask: every held position is real (one conversation, no padding).
  at::Tensor valid = length_ > 0 ? torch::ones({1, length_}, in.valid.options()) : at::Tensor();
  at::Tensor unfed;
  const std::vector<int64_t> out =
      prefill_and_decode(lm_, in, cache_, valid, torch::full({1}, length_, torch::kLong), options_, gen_, unfed)[0];
  length_ = cache_.length();
  const int64_t last = unfed.item<int64_t>();
  if (is_stop(last, options_))
    unfed_.reset();
  else
    unfed_ = last;
  return out;
}

}  // namespace vtb::eval
