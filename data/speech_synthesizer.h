// Speech synthesis with espeak-ng: where no speech corpus can be downloaded, vtb makes its own.
// espeak-ng keeps global state: one SpeechSynthesizer per process, used from one thread at a time.
#pragma once

#include <string>
#include <vector>

namespace vtb::data {

struct Voice {
  std::string name;  // espeak-ng voice with variant, e.g. "en-us+m3"
  int rate = 175;    // words per minute (80–450)
  int pitch = 50;    // 0–100
};

// English voices vtb's corpora use in training; a corpus holds one more voice out for testing.
const std::vector<std::string>& training_voice_names();
const std::string& held_out_voice_name();

// `name` with a random rate (150–200 wpm) and pitch (35–65).
template <typename Rng>
Voice vary(const std::string& name, Rng& rng) {
  return Voice{name, 150 + static_cast<int>(rng() % 51), 35 + static_cast<int>(rng() % 31)};
}

class SpeechSynthesizer {
 public:
  SpeechSynthesizer();  // throws std::runtime_error when espeak-ng cannot start
  ~SpeechSynthesizer();
  SpeechSynthesizer(const SpeechSynthesizer&) = delete;
  SpeechSynthesizer& operator=(const SpeechSynthesizer&) = delete;

  // `text` spoken by `voice`, as 16 kHz mono float samples.
  std::vector<float> speak(const std::string& text, const Voice& voice);

 private:
  int native_rate_ = 0;
};

}  // namespace vtb::data
