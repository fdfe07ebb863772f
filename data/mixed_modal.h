// `vtb data mixgen`: the paper's mixed-modal SFT recipe on any text-SFT JSONL. Per conversation, up to K
// variants, each replacing a random contiguous span of sentences of one user turn with synthesized
// speech (a random voice) and an <audio> marker.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vtb::data {

struct MixgenOptions {
  std::string input;    // text-SFT manifest ({"conversations": [...]})
  std::string out_dir;  // writes mixed.jsonl and audio/mixed/*.wav
  int variants = 2;     // K
  uint64_t seed = 1;
  bool skip_bad_lines = false;
};

struct MixgenReport {
  int64_t conversations = 0;
  int64_t examples = 0;  // lines written
  double audio_seconds = 0;
};

MixgenReport make_mixed_modal(const MixgenOptions& options);

// Sentences of `text`: split after '.', '!' or '?' followed by a space (the punctuation stays).
std::vector<std::string> split_sentences(const std::string& text);

}  // namespace vtb::data
