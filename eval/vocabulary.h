// Out-of-vocabulary rates: which words of a test split's references no training text contains. A model
// that never read or heard a word can only guess it, so WER on a split with many such words measures the
// corpus's vocabulary as much as the model's hearing.
//
// Note [What human-speech WER measures]
// The quickstart's models score above 100 % WER on the 10 human recordings of pocketsphinx-testdata
// (asr_real_test.jsonl). Read as a new user would, their predictions are sentences of the synthetic corpus's
// template grammar: for "seven of clubs" the joint model of the full sweep (rank 4, seed 1) says "her
// brother sees two apples in the park", for "ten of clubs" "nine", for the Austen sentence "and mister john
// dashwood had then leisure to consider …" "her brother sees two apples in the the at the parket". This note
// confirms that reading with a number: the template corpus's training text has 139 distinct words, and 67
// of the 92 reference words of the recordings (72.8 %) are not among them (`vtb data synth` prints the rate
// of every test split and writes oov.json). A model that can only say words it was trained on gets each of
// those 67 wrong, so its WER there cannot fall below 72.8 % however well it hears; the long template
// sentences it says instead of two-word card names are insertions, which take WER past 100 %. With 3,000
// sentences of real English beside the templates (`vtb data synth --prose 3000`, Debian's fortunes), 14 of
// the 92 words (15.2 %) are unseen, mostly names and rare words (dashwood, prudently, spades).
// Decoding was checked for the other causes the issue names: every hypothesis of the sweep's 12 models ended
// at <end_of_turn> within the 64-token limit (the longest, 21 words, is greedy decoding repeating "three
// eight"), both sides pass through the same English normaliser, and the prompt is the trained instruction.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace vtb::eval {

// Every word (english_normalize, split on spaces) of every text in the JSONL manifests: the fields text,
// answer, context, question and spoken, and the values of conversations' turns.
std::set<std::string> manifest_words(const std::vector<std::string>& manifests);

struct OovRate {
  int64_t words = 0;            // reference words of the split (tokens)
  int64_t unseen = 0;           // of them not in the vocabulary
  std::set<std::string> types;  // the distinct unseen words
  double rate() const { return words > 0 ? static_cast<double>(unseen) / static_cast<double>(words) : 0; }
};

// The references of a test manifest (each line's answer, or its last Assistant turn) against `vocabulary`.
// Throws naming file and line for a line that is not JSON or has no reference.
OovRate out_of_vocabulary(const std::set<std::string>& vocabulary, const std::string& test_manifest);

}  // namespace vtb::eval
