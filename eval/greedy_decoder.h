// Decoding of the SpeechLM (greedy, or sampling with temperature and top-p) with a KV cache: the prompt (text and spliced audio) is prefilled once,
// then each step feeds one token per example. Batches are right-padded; each example keeps its own
// positions, and padding columns stay masked, so an example decodes the same alone or in a batch.
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
};

// `prompts`: ids ending with the generation prompt ("<start_of_turn>model\n"), lengths, audio features.
// Returns the generated ids of each example.
std::vector<std::vector<int64_t>> greedy_decode(model::SpeechLM& lm, const model::SpeechBatch& prompts,
                                                const DecodeOptions& options);

}  // namespace vtb::eval
