// `vtb eval`: decode a manifest sharded across ranks and score it the way each task is scored.
//   asr → corpus WER (English normaliser); ast → BLEU; sqa → ROUGE-L F1 and exact match; text → exact match
//   (normalised); mixed → exact match and ROUGE-L F1.
#pragma once

#include <map>
#include <nlohmann/json_fwd.hpp>

#include <string>
#include <vector>

#include "data/conversation.h"
#include "data/features.h"
#include "data/manifest.h"
#include "data/tokenizer.h"
#include "dist/communicator.h"
#include "eval/decoding.h"
#include "model/speech_lm.h"

namespace vtb::eval {

struct EvalOptions {
  data::Task task = data::Task::Asr;
  int64_t batch_size = 8;
  DecodeOptions decode;
  data::FeatureConfig features;
  // data.on_error = skip: an example whose audio cannot be read is left out of the score and listed in
  // EvalResult::skipped; otherwise it ends the evaluation with an error naming it.
  bool skip_bad_audio = false;
};

struct Prediction {
  std::string origin, reference, hypothesis;
};

struct EvalResult {
  std::vector<Prediction> predictions;  // every rank's, in manifest order (on every rank)
  std::string metric;                   // "wer", "bleu", "rouge_l", "exact_match"
  double value = 0;
  std::map<std::string, double> also;  // secondary metrics (sqa: exact_match)
  std::string detail;                  // e.g. the BLEU signature
  std::vector<std::string> skipped;    // "origin: why" of examples left out (skip_bad_audio), manifest order
};

// Prompts (conversations ending with a user turn) as one padded batch ready for sample_or_greedy_decode: the
// generation prompt appended, audio decoded and turned into features (no dither). CPU tensors. A recording
// longer than `max_audio_seconds` (> 0) is refused from its header, before it is decoded.
model::SpeechBatch prompt_batch(const std::vector<data::Conversation>& prompts, const data::Tokenizer& tok,
                                const data::LogMelExtractor& extractor, double max_audio_seconds = 0);

// The most audio one prompt can hold: `max_length` LLM positions at the encoder's frame rate (100 feature
// frames a second, / `subsampling_factor`). Longer recordings cannot be decoded, so they are not read.
inline double audio_seconds_within(int64_t max_length, int64_t subsampling_factor) {
  return static_cast<double>(max_length * subsampling_factor) / 100.0;
}

// Each rank decodes examples i with i % size == rank; predictions are gathered on every rank. The last
// assistant turn of each conversation is the reference; the turns before it are the prompt.
EvalResult evaluate(dist::Communicator& comm, model::SpeechLM& lm, const data::Tokenizer& tok,
                    const std::vector<data::Conversation>& examples, const EvalOptions& options);

// Writes predictions.jsonl (origin, reference, hypothesis per example) and metrics.json (`about`, the example
// count and every metric of `r`) into `out_dir`, and logs the result.
void write_results(const std::string& out_dir, const EvalResult& r, const nlohmann::json& about);

}  // namespace vtb::eval
