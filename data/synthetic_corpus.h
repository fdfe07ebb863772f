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
  // Engines whose training voices speak the training splits and whose held-out voices speak half of each
  // test split (synthesis_engines(); the corpus of {"espeak-ng"} is the one vtb always made).
  std::vector<std::string> engines{"espeak-ng"};
  // Real English for asr_prose_{train,test}.jsonl: sentences of 5–14 words from the fortune collections of
  // Debian's `fortunes` package (prose_files in prose_dir), spoken like the asr split and added to the LLM's
  // text and the tokenizer's; 0 and 0: not written (the corpus vtb made before they existed).
  int prose_train = 0, prose_test = 0;
  std::string prose_dir = "/usr/share/games/fortunes";
  // Real human speech for asr_real_test.jsonl (Debian's pocketsphinx-testdata); "" or missing: not written.
  std::string real_speech_dir = "/usr/share/pocketsphinx/test/data";
};

struct SynthReport {
  std::map<std::string, int> examples;  // manifest file → lines
  std::map<std::string, int> voices;    // voice → utterances spoken
  double audio_seconds = 0;
};

// Writes <out>/audio/..., <out>/{asr,ast,sqa,text}_{train,test}.jsonl, <out>/asr_real_test.jsonl (real
// recordings with their transcripts, when real_speech_dir has them), <out>/lm_train.jsonl (text for the
// stand-in LLM: {"text"} documents and {"conversations"}, from training splits only), <out>/corpus.txt and
// <out>/tokenizer.model, and <out>/{asr,ast}_unseen_prompt_test.jsonl: the asr and ast test splits with
// instructions never used in training (unseen_prompts()), and <out>/asr_<engine>_test.jsonl for every
// engine there is (whichever trained): the asr test sentences all spoken by that engine's held-out voice.
// Deterministic for a given seed and engines.
SynthReport make_synthetic_corpus(const SynthOptions& options);

// The collections prose sentences come from (the non-offensive ones Debian ships in `fortunes`).
const std::vector<std::string>& prose_files();

// Sentences of 5–14 words from `dir`'s fortune files (entries between "%" lines, attribution lines starting
// "--" dropped), letters and ,;.!?'- only, each once, in file order. Throws naming the folder when it has none.
std::vector<std::string> prose_sentences(const std::string& dir);

// Per task ("asr", "ast"): the 8 paraphrased instructions of its unseen-prompt test split, the one list of them.
const std::vector<std::pair<std::string, std::vector<std::string>>>& unseen_prompts();

}  // namespace vtb::data
