// `vtb data synth`: a small speech corpus made with espeak-ng, for everything that cannot be downloaded
// here: ASR (sentences and digit strings), AST (English speech → German text from a phrase table), SQA
// (a spoken statement, a text question, a short answer) and text SFT (questions and answers, some
// multi-turn). Test splits hold sentences never used in training, and half of each test split is spoken
// by a voice never used in training.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace vtb::data {

struct SynthOptions {
  std::string out_dir = "data/synth";
  uint64_t seed = 1;
  int asr_train = 600, asr_test = 100;
  int ast_train = 300, ast_test = 60;
  int sqa_train = 300, sqa_test = 60;
  int text_train = 500, text_test = 100;
  int tokenizer_vocab = 512;
  // Real human speech for asr_real_test.jsonl (Debian's pocketsphinx-testdata); "" or missing: not written.
  std::string real_speech_dir = "/usr/share/pocketsphinx/test/data";
};

struct SynthReport {
  std::map<std::string, int> examples;  // manifest file → lines
  double audio_seconds = 0;
};

// Writes <out>/audio/..., <out>/{asr,ast,sqa,text}_{train,test}.jsonl, <out>/asr_real_test.jsonl (real
// recordings with their transcripts, when real_speech_dir has them), <out>/lm_train.jsonl (text for the
// stand-in LLM: {"text"} documents and {"conversations"}, from training splits only), <out>/corpus.txt and
// <out>/tokenizer.model, and <out>/{asr,ast}_unseen_prompt_test.jsonl: the asr and ast test splits with
// instructions never used in training (unseen_prompts()). Deterministic for a given seed.
SynthReport make_synthetic_corpus(const SynthOptions& options);

// Per task ("asr", "ast"): the 8 paraphrased instructions of its unseen-prompt test split, the one list of them.
const std::vector<std::pair<std::string, std::vector<std::string>>>& unseen_prompts();

}  // namespace vtb::data
