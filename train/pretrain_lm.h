// `vtb lm pretrain`: trains every weight of a decoder LLM on text, on the job's ranks, and saves it as a
// Hugging Face folder. It makes the stand-in for a downloaded instruction-tuned LLM (Gemma) that the
// quickstart then loads through the real loader (model.llm) and keeps frozen during joint SFT.
//
// Corpora are JSONL files of documents: {"text": "..."} is trained as <bos> text <eos>;
// {"conversations": [...]} (the text manifest format) goes through the Gemma chat template. The loss covers
// every token after <bos> (next-token prediction on the whole document, prompt included).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "dist/gradient_bucketer.h"
#include "model/decoder_config.h"
#include "optim/adamw.h"
#include "train/pretrain_step.h"

namespace vtb::train {

struct PretrainSettings {
  model::DecoderConfig llm;
  std::string tokenizer, audio_piece = "<audio>";
  std::vector<std::string> corpora;
  std::string out_dir;  // the Hugging Face folder written at the end (rank 0)
  int64_t seed = 1234;
  int64_t batch = 32;  // documents per rank per step
  PretrainSchedule schedule;
  optim::AdamWOptions adamw;
  dist::BucketOptions buckets;
};

// Collective. Document draws depend only on (seed, step, rank), so a run is reproducible.
PretrainReport pretrain_lm(dist::Communicator& comm, const PretrainSettings& settings);

}  // namespace vtb::train
