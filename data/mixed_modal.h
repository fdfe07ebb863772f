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
  std::string out_dir;  // writes <output> and audio/<output's stem>/*.wav
  std::string output = "mixed.jsonl";
  int variants = 2;  // K
  uint64_t seed = 1;
  bool skip_bad_lines = false;
  std::vector<std::string> engines{"espeak-ng"};  // whose training voices speak the spans
  std::vector<std::string> voices;                // these instead, when not empty
  // Sentences: a contiguous span of whole sentences of any user turn (the paper's recipe).
  // WordsInLaterTurn: a span of words inside one sentence of a user turn other than the first, with words of
  // that sentence on both sides of it (held-out multi-turn tests); conversations with one user turn, or
  // whose later turns have no sentence of three words, give no variant.
  enum class Span { Sentences, WordsInLaterTurn };
  Span span = Span::Sentences;
};

struct MixgenReport {
  int64_t conversations = 0;
  int64_t examples = 0;  // lines written
  double audio_seconds = 0;
};

class SpeechSynthesizer;
MixgenReport make_mixed_modal(const MixgenOptions& options);
// The same with a synthesizer the caller already has (espeak-ng allows one per process).
MixgenReport make_mixed_modal(const MixgenOptions& options, SpeechSynthesizer& tts);

// Sentences of `text`: split after '.', '!' or '?' followed by a space (the punctuation stays).
std::vector<std::string> split_sentences(const std::string& text);

}  // namespace vtb::data
