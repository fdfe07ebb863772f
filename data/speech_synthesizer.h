// Speech synthesis where no speech corpus can be downloaded: vtb makes its own, with three engines Debian
// ships, so that a model can be trained on one and tested on another (the paper's open question of how the
// synthesizer matters, and its warning of overfitting to TTS):
//   espeak-ng  formant synthesis (libespeak-ng), voices with variants: "en-us+m1";
//   flite      CMU's diphone and statistical parametric voices (libflite): "flite:rms";
//   festival   diphone and HTS voices (one `festival --pipe` process fed Scheme): "festival:kal_diphone".
// Each engine starts on its first voice. A SpeechSynthesizer is used from one thread at a time; espeak-ng's
// state is the process's, shared by every SpeechSynthesizer under a lock.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace vtb::data {

struct Voice {
  std::string name;  // "en-us+m1" (espeak-ng, with variant), "flite:awb", "festival:ked_diphone"
  int rate = 175;    // words per minute (80–450); flite and festival's diphone voices stretch durations by
                     // 175 / rate, festival's HTS voices speed up by rate / 175
  int pitch = 50;    // 0–100; flite scales its mean F0 by 1 + (pitch − 50) / 100, festival's HTS voices shift
                     // by (pitch − 50) / 10 half-tones, its diphone voices keep their own
};

// "espeak-ng", "flite", "festival", in that order.
const std::vector<std::string>& synthesis_engines();
// The engine a voice name belongs to ("flite:…", "festival:…", anything else espeak-ng).
std::string engine_of(const std::string& voice_name);

// Per engine, the voices corpora train on and the one voice they hold out for testing.
const std::vector<std::string>& training_voice_names(const std::string& engine = "espeak-ng");
const std::string& held_out_voice_name(const std::string& engine = "espeak-ng");
// The training voices of each engine in turn.
std::vector<std::string> training_voice_names(const std::vector<std::string>& engines);

// "" when `engine` can speak here, else what to install: espeak-ng and flite are linked in; festival is a
// program on PATH.
std::string engine_missing(const std::string& engine);

// Parses "espeak-ng,flite,festival" (any non-empty subset, no repeats); throws std::invalid_argument naming
// `flag` and the engines there are.
std::vector<std::string> parse_engines(const std::string& list, const std::string& flag);

// `name` with a random rate (150–200 wpm) and pitch (35–65).
template <typename Rng>
Voice vary(const std::string& name, Rng& rng) {
  return Voice{name, 150 + static_cast<int>(rng() % 51), 35 + static_cast<int>(rng() % 31)};
}

class SpeechSynthesizer {
 public:
  SpeechSynthesizer();
  ~SpeechSynthesizer();
  SpeechSynthesizer(const SpeechSynthesizer&) = delete;
  SpeechSynthesizer& operator=(const SpeechSynthesizer&) = delete;

  // `text` spoken by `voice`, as 16 kHz mono float samples. Throws std::runtime_error naming the engine and
  // the text when the engine cannot start, does not know the voice, or gives no audio.
  std::vector<float> speak(const std::string& text, const Voice& voice);

 private:
  struct Espeak;
  struct Flite;
  struct Festival;
  std::unique_ptr<Espeak> espeak_;
  std::unique_ptr<Flite> flite_;
  std::unique_ptr<Festival> festival_;
};

}  // namespace vtb::data
