// Decoding of the SpeechLM with a KV cache — greedy, sampling (temperature, top-p, seed) or beam search:
// the prompt (text and spliced audio) is prefilled once, then each step feeds one token per example (per beam). Batches
// are right-padded; each example keeps its own positions, and padding columns stay masked, so an example decodes the
// same alone or in a batch.
#pragma once

#include <cstdint>
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
};

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

}  // namespace vtb::eval
