// Out-of-vocabulary rates: which words of a test split's references no training text contains. A model
// that never read or heard a word can only guess it, so WER on a split with many such words measures the
// corpus's vocabulary as much as the model's hearing.
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
