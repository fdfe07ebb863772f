// Waveform augmentation in training, before the features: speed perturbation, additive noise and
// reverberation, what a speech team adds so that a model learns the words rather than the recording (or the
// synthesizer: the paper's warning of overfitting to TTS). SpecAugment on the features stays as it is.
//
// Every draw comes from the generator the loader seeds per (train.seed, step, example, segment) — a stream
// of its own beside dither's and SpecAugment's — so an augmented batch is the same after a resume (the
// checkpoint holds the seed and the step) and whatever worker built it; with augmentation off nothing is
// drawn and batches are what they were before it existed.
#pragma once

#include <random>
#include <vector>

namespace vtb::data {

struct WaveAugmentConfig {
  // Per utterance one factor, drawn uniformly (Kaldi's and Lhotse's 0.9, 1.0, 1.1); like sox's "speed"
  // effect, duration and pitch change together. {1.0}: off.
  std::vector<double> speed_factors{1.0};
  // With this probability white Gaussian noise at an SNR drawn uniformly from [min, max] dB.
  double noise_prob = 0;
  double noise_snr_min_db = 10, noise_snr_max_db = 30;
  // With this probability the utterance convolved with a synthetic room impulse response (a direct path and
  // exponentially decaying noise) whose RT60 is drawn uniformly from [min, max] s, at its original level.
  double reverb_prob = 0;
  double reverb_rt60_min_s = 0.2, reverb_rt60_max_s = 0.8;

  bool enabled() const;
  // The slowest factor: audio gets up to 1/slowest longer, which batch budgets must allow for.
  double slowest() const;
  void validate() const;  // throws std::invalid_argument naming the setting
};

// `samples` (16 kHz mono) augmented as `config` says.
std::vector<float> augment_waveform(const std::vector<float>& samples, const WaveAugmentConfig& config,
                                    std::mt19937_64& rng);

// The pieces.
// Played `factor` times faster: resampled from round(16000 × factor) Hz to 16000 Hz (soxr), n / factor samples.
std::vector<float> change_speed(const std::vector<float>& samples, double factor);
// White Gaussian noise scaled so that Σ signal² / Σ noise² is exactly `snr_db` (silence stays silent).
void add_noise(std::vector<float>& samples, double snr_db, std::mt19937_64& rng);
// h[0] = 1, then Gaussian noise under exp(−3 ln 10 · t / rt60) (60 dB down at rt60) for rt60 seconds.
std::vector<float> room_impulse_response(double rt60_s, std::mt19937_64& rng, int rate = 16000);
// The first x.size() samples of x * h (linear convolution, through real FFTs in double precision).
std::vector<float> convolve(const std::vector<float>& x, const std::vector<float>& h);

}  // namespace vtb::data
