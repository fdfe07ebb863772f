// Decoding of the SpeechLM with a KV cache — greedy, sampling (temperature, top-p, seed) or beam search:
// the prompt (text and spliced audio) is prefilled once, then each step feeds one token per example (per beam). Batches
// are right-padded; each example keeps its own positions, and padding columns stay masked, so an example decodes the
// same alone or in a batch.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <vector>

#include "model/speech_lm.h"

namespace vtb::eval {

struct DecodeOptions {
  int64_t max_new_tokens = 64;
  std::vector<int64_t> stop_ids;  // e.g. <end_of_turn> and <eos>; the stop token is not returned
  bool use_cache = true;          // false: recompute the whole sequence every step (the reference path)
  double temperature = 0;         // 0: greedy; > 0: sample from softmax(logits / temperature)
  double top_p = 1;               // sampling: keep the smallest set of tokens whose probability reaches top_p
  uint64_t seed = 0;              // sampling: the generator's seed (same seed, same text)
  int64_t vocab_limit = 0;        // > 0: never emit ids ≥ this (an LLM vocabulary larger than the tokenizer's)
  int64_t beams = 1;              // > 1: beam search (temperature and top_p are then ignored)
  double length_penalty = 1;      // beam search ranks hypotheses by log p / tokens^length_penalty (Hugging Face's)
  int64_t max_length = 0;         // > 0: a prompt (audio frames counted) + max_new_tokens longer than this is refused
};

// A prompt that, with the tokens it may generate, is longer than DecodeOptions::max_length: thrown before
// the LLM runs (attention over a long prompt is the largest allocation decoding makes).
struct PromptTooLong : std::runtime_error {
  PromptTooLong(int64_t example, const std::string& message) : std::runtime_error(message), example(example) {}
  int64_t example;  // its index in the batch
};

// Throws PromptTooLong for the first example whose `lengths` [B] (text tokens, or spliced positions) +
// max_new_tokens exceed options.max_length (when set). `already` positions are held before each prompt.
void check_prompt_lengths(const at::Tensor& lengths, const DecodeOptions& options, int64_t already = 0);

// `prompts`: ids ending with the generation prompt ("<start_of_turn>model\n"), lengths, audio features.
// Greedy at temperature 0, else sampled (temperature, top-p, seed). Returns the generated ids of each example.
std::vector<std::vector<int64_t>> sample_or_greedy_decode(model::SpeechLM& lm, const model::SpeechBatch& prompts,
                                                          const DecodeOptions& options);

// Beam search, example by example: `beams` hypotheses share one cache (reordered each step); a hypothesis
// ends at a stop id (counted in its length and score) or at max_new_tokens. The search ends when `beams`
// hypotheses have ended and no live one ranks above the worst of them — exact for length_penalty = 0,
// where scores only fall; Hugging Face's stopping rule otherwise. Returns the best hypothesis of each example.
std::vector<std::vector<int64_t>> beam_search(model::SpeechLM& lm, const model::SpeechBatch& prompts,
                                              const DecodeOptions& options);

// beam_search when options.beams > 1, else sample_or_greedy_decode.
std::vector<std::vector<int64_t>> decode(model::SpeechLM& lm, const model::SpeechBatch& prompts,
                                         const DecodeOptions& options);

// One conversation decoded turn after turn with one KV cache (vtb chat): each turn prefills only its own
// tokens, so the k-th turn costs its tokens and not the whole conversation's. Greedy or sampled (one
// generator for the whole conversation); the same replies as decoding the concatenated ids from scratch.
class ConversationDecoder {
 public:
  ConversationDecoder(model::SpeechLM& lm, const DecodeOptions& options);

  // `turn`: one example (B = 1), the ids that follow everything fed so far (the first turn starts with
  // <bos>; a later one with <end_of_turn>, the template's newline and the next user turn, ending with the
  // generation prompt). Returns the reply's ids. PromptTooLong when the conversation would outgrow
  // max_length; the conversation is then left as it was.
  std::vector<int64_t> reply(const model::SpeechBatch& turn);

  // Sequence positions held: text tokens and audio frames of every turn, and the replies.
  int64_t length() const { return length_; }
  void reset();

 private:
  model::SpeechLM lm_;
  DecodeOptions options_;
  at::Generator gen_;
  model::KVCache cache_;
  int64_t length_ = 0;
  std::optional<int64_t> unfed_;  // the reply's last token when it ran to max_new_tokens: fed with the next turn
};

}  // namespace vtb::eval
