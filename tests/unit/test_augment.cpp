// Waveform augmentation against its formulas: speed as sox's "speed" (length and pitch scale together), the
// noise at exactly the SNR drawn, a room impulse response 60 dB down at its RT60, the FFT convolution equal to
// a direct one; and in the loader the same augmented batches after a resume and whatever the workers.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <numeric>
#include <random>

#include "data/augment.h"

namespace vtb::data {
namespace {

std::vector<float> sine(double hz, double seconds, double amplitude = 0.5) {
  std::vector<float> x(static_cast<size_t>(seconds * 16000));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(amplitude * std::sin(2 * M_PI * hz * i / 16000.0));
  return x;
}

// Frequency from the rising zero crossings.
double frequency(const std::vector<float>& x) {
  std::vector<double> crossings;
  for (size_t i = 1; i < x.size(); ++i)
    if (x[i - 1] < 0 && x[i] >= 0) crossings.push_back(static_cast<double>(i - 1) + x[i - 1] / (x[i - 1] - x[i]));
  return 16000.0 * static_cast<double>(crossings.size() - 1) / (crossings.back() - crossings.front());
}

TEST(Augment, SpeedScalesLengthAndPitchTogether) {
  const std::vector<float> x = sine(440, 1.0);
  for (double factor : {0.9, 1.1}) {
    const std::vector<float> y = change_speed(x, factor);
    EXPECT_NEAR(static_cast<double>(y.size()), 16000 / factor, 2) << factor;
    EXPECT_NEAR(frequency(y), 440 * factor, 0.5) << factor;
  }
  EXPECT_EQ(change_speed(x, 1.0), x);
}

TEST(Augment, NoiseAtExactlyTheSnr) {
  std::mt19937_64 rng(3);
  for (double snr : {0.0, 10.0, 30.0}) {
    const std::vector<float> x = sine(300, 0.5);
    std::vector<float> y = x;
    add_noise(y, snr, rng);
    double signal = 0, noise = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      signal += static_cast<double>(x[i]) * x[i];
      noise += (static_cast<double>(y[i]) - x[i]) * (static_cast<double>(y[i]) - x[i]);
    }
    EXPECT_NEAR(10 * std::log10(signal / noise), snr, 0.01) << snr;  // float rounding of the sum only
  }
  std::vector<float> silence(800, 0.0f);
  add_noise(silence, 10, rng);
  EXPECT_EQ(silence, std::vector<float>(800, 0.0f));
}

TEST(Augment, RoomImpulseResponseDecaysSixtyDecibelsAtItsRt60) {
  std::mt19937_64 rng(5);
  const double rt60 = 0.8;
  const std::vector<float> h = room_impulse_response(rt60, rng);
  ASSERT_EQ(h.size(), static_cast<size_t>(rt60 * 16000) + 1);
  EXPECT_EQ(h[0], 1.0f);
  auto energy = [&](double from, double to) {
    double e = 0;
    for (size_t t = static_cast<size_t>(from * 16000); t < static_cast<size_t>(to * 16000); ++t)
      e += static_cast<double>(h[t]) * h[t];
    return e;
  };
  // exp(−6 ln 10 · t / rt60) in energy: 60 dB per rt60, so 30 dB from the window at 0.1 s to the one at 0.5 s.
  const double drop = 10 * std::log10(energy(0.05, 0.15) / energy(0.45, 0.55));
  EXPECT_NEAR(drop, 60 * 0.4 / rt60, 1.5);
}

TEST(Augment, FftConvolutionEqualsTheDirectOne) {
  std::mt19937_64 rng(7);
  std::normal_distribution<float> normal;
  std::vector<float> x(1000), h(301);
  for (float& v : x) v = normal(rng);
  for (float& v : h) v = normal(rng) * 0.1f;
  const std::vector<float> y = convolve(x, h);
  ASSERT_EQ(y.size(), x.size());
  double worst = 0;
  for (size_t n = 0; n < x.size(); ++n) {
    double direct = 0;
    for (size_t k = 0; k <= std::min(n, h.size() - 1); ++k) direct += static_cast<double>(h[k]) * x[n - k];
    worst = std::max(worst, std::abs(direct - y[n]));
  }
  EXPECT_LT(worst, 1e-5);
}

TEST(Augment, SameSeedSameWaveformOffDrawsNothing) {
  WaveAugmentConfig on;
  on.speed_factors = {0.9, 1.0, 1.1};
  on.noise_prob = 1;
  on.reverb_prob = 1;
  const std::vector<float> x = sine(200, 0.7);
  std::mt19937_64 a(11), b(11), c(12);
  const std::vector<float> ya = augment_waveform(x, on, a);
  EXPECT_EQ(ya, augment_waveform(x, on, b));
  EXPECT_NE(ya, augment_waveform(x, on, c));
  EXPECT_NE(ya, x);
  const WaveAugmentConfig off;
  EXPECT_FALSE(off.enabled());
  std::mt19937_64 d(13), untouched(13);
  EXPECT_EQ(augment_waveform(x, off, d), x);
  EXPECT_EQ(d(), untouched());
  on.speed_factors = {0.4};
  EXPECT_THROW(on.validate(), std::invalid_argument);
}

}  // namespace
}  // namespace vtb::data
