#include "data/speech_synthesizer.h"

#include <espeak-ng/speak_lib.h>

#include <atomic>
#include <cstring>
#include <stdexcept>

#include "data/audio.h"

namespace vtb::data {
namespace {

std::vector<short>* g_sink = nullptr;  // espeak-ng's callback has no user pointer for our buffer
std::atomic<bool> g_alive{false};

int collect(short* wav, int samples, espeak_EVENT*) {
  if (wav != nullptr && samples > 0 && g_sink != nullptr) g_sink->insert(g_sink->end(), wav, wav + samples);
  return 0;
}

}  // namespace

const std::vector<std::string>& training_voice_names() {
  static const std::vector<std::string> names{"en-us+m1", "en-us+f2", "en+m3", "en-us+m4", "en-gb-x-rp+f3"};
  return names;
}

const std::string& held_out_voice_name() {
  static const std::string name = "en-gb-scotland+f4";
  return name;
}

SpeechSynthesizer::SpeechSynthesizer() {
  if (g_alive.exchange(true)) throw std::logic_error("espeak-ng: only one SpeechSynthesizer per process");
  native_rate_ = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, nullptr, 0);
  if (native_rate_ <= 0) {
    g_alive = false;
    throw std::runtime_error("espeak-ng failed to initialise (is espeak-ng-data installed?)");
  }
  espeak_SetSynthCallback(collect);
}

SpeechSynthesizer::~SpeechSynthesizer() {
  espeak_Terminate();
  g_alive = false;
}

std::vector<float> SpeechSynthesizer::speak(const std::string& text, const Voice& voice) {
  if (espeak_SetVoiceByName(voice.name.c_str()) != EE_OK)
    throw std::runtime_error("espeak-ng: unknown voice '" + voice.name + "'");
  espeak_SetParameter(espeakRATE, voice.rate, 0);
  espeak_SetParameter(espeakPITCH, voice.pitch, 0);
  std::vector<short> pcm;
  g_sink = &pcm;
  const espeak_ERROR err =
      espeak_Synth(text.c_str(), text.size() + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8, nullptr, nullptr);
  espeak_Synchronize();
  g_sink = nullptr;
  if (err != EE_OK) throw std::runtime_error("espeak-ng could not speak '" + text + "'");
  if (pcm.empty()) throw std::runtime_error("espeak-ng produced no audio for '" + text + "'");
  std::vector<float> samples(pcm.size());
  for (size_t i = 0; i < pcm.size(); ++i) samples[i] = pcm[i] / 32768.0f;
  return resample(samples, native_rate_, kSampleRate);
}

}  // namespace vtb::data
