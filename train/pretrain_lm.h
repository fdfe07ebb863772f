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

namespace vtb::train {

struct PretrainSettings {
  model::DecoderConfig llm;
  std::string tokenizer, audio_piece = "<audio>";
  std::vector<std::string> corpora;
  std::string out_dir;          // the Hugging Face folder written at the end (rank 0)
  int64_t seed = 1234;
  int64_t steps = 600;
  int64_t batch = 32;           // documents per rank per step
  int64_t warmup_steps = 50;
  int64_t log_every = 50;
  double lr = 3e-3, lr_min = 1e-4, clip = 1.0;
  optim::AdamWOptions adamw;
  dist::BucketOptions buckets;
};

struct PretrainReport {
  int64_t documents = 0;
  int64_t tokens = 0;            // in the corpus
  double first_loss = 0;         // mean over the first log_every steps
  double last_loss = 0;          // mean over the last log_every steps
  double seconds = 0;
};

// Collective. Document draws depend only on (seed, step, rank), so a run is reproducible.
PretrainReport pretrain_lm(dist::Communicator& comm, const PretrainSettings& settings);

}  // namespace vtb::train
