// Log-mel features exactly as docs/design.md §2 (NeMo's FilterbankFeatures for Canary-1B): 16 kHz, dither (training
// only), pre-emphasis 0.97, STFT (n_fft 512, symmetric Hann 400, hop 160, centred), power spectrum,
// Slaney mel filterbank, log(x + 2^-24), per-utterance per-bin normalisation over valid frames.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vtb::data {

// STFT centre padding: reflect (what released FastConformer checkpoints were trained with) or constant
// (NeMo since July 2025).
enum class PadMode { Reflect, Constant };
inline constexpr std::array<std::pair<std::string_view, PadMode>, 2> kPadModes{
    {{"reflect", PadMode::Reflect}, {"constant", PadMode::Constant}}};
// Valid frames: plus_one = L/hop + 1 (the reflect era), floor = L/hop (newer NeMo).
enum class FrameRule { PlusOne, Floor };
inline constexpr std::array<std::pair<std::string_view, FrameRule>, 2> kFrameRules{
    {{"plus_one", FrameRule::PlusOne}, {"floor", FrameRule::Floor}}};

struct FeatureConfig {
  int sample_rate = 16000;
  int n_fft = 512;
  int win_length = 400;
  int hop = 160;
  int n_mels = 128;
  double fmin = 0;
  double fmax = 8000;
  double preemph = 0.97;
  double dither = 1e-5;  // training only
  double log_guard = 1.0 / (1 << 24);
  PadMode pad_mode = PadMode::Reflect;
  FrameRule frame_rule = FrameRule::PlusOne;

  void validate() const;
  int64_t frames(int64_t samples) const;  // valid frames for `samples` samples
};

// The Slaney-scale, Slaney-normalised mel filterbank (librosa's filters.mel(htk=False, norm="slaney"),
// torchaudio's melscale_fbanks(norm="slaney", mel_scale="slaney")): [n_freqs, n_mels], float32.
at::Tensor slaney_mel_filterbank(int n_freqs, double fmin, double fmax, int n_mels, int sample_rate);

class LogMelExtractor {
 public:
  explicit LogMelExtractor(FeatureConfig config);
  const FeatureConfig& config() const { return config_; }
  // [n_mels, frames] float32. `rng` drives dither; without it (evaluation) there is no dither.
  at::Tensor compute(const std::vector<float>& samples, std::mt19937_64* rng = nullptr) const;

 private:
  FeatureConfig config_;
  at::Tensor window_;      // [n_fft]: symmetric Hann of win_length, zero-padded to n_fft, centred
  at::Tensor filterbank_;  // [n_freqs, n_mels]
};

struct SpecAugmentConfig {
  int freq_masks = 2;
  int freq_width = 27;
  int time_masks = 10;
  double time_width = 0.05;  // fraction of the utterance's frames
};

// Zeroes random frequency bands and time spans of `features` [n_mels, T] in place (training only).
void spec_augment(at::Tensor& features, const SpecAugmentConfig& config, std::mt19937_64& rng);

}  // namespace vtb::data
