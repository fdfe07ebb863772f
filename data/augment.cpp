#include "data/augment.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "data/audio.h"

namespace vtb::data {

bool WaveAugmentConfig::enabled() const {
  return noise_prob > 0 || reverb_prob > 0 ||
         std::any_of(speed_factors.begin(), speed_factors.end(), [](double f) { return f != 1.0; });
}

double WaveAugmentConfig::slowest() const { return *std::min_element(speed_factors.begin(), speed_factors.end()); }

void WaveAugmentConfig::validate() const {
  if (speed_factors.empty()) throw std::invalid_argument("data.speed_factors: name at least one factor");
  for (double f : speed_factors)
    if (!(f >= 0.5 && f <= 2.0))
      throw std::invalid_argument("data.speed_factors: " + std::to_string(f) + " is outside [0.5, 2]");
  if (!(noise_snr_min_db <= noise_snr_max_db))
    throw std::invalid_argument("data.noise_snr_min_db must not exceed data.noise_snr_max_db");
  if (!(reverb_rt60_min_s > 0 && reverb_rt60_min_s <= reverb_rt60_max_s))
    throw std::invalid_argument("data.reverb_rt60_min_s must be > 0 and not exceed data.reverb_rt60_max_s");
}

std::vector<float> change_speed(const std::vector<float>& samples, double factor) {
  if (factor == 1.0) return samples;
  return resample(samples, static_cast<int>(std::lround(kSampleRate * factor)), kSampleRate);
}

void add_noise(std::vector<float>& samples, double snr_db, std::mt19937_64& rng) {
  std::normal_distribution<double> normal;
  std::vector<double> noise(samples.size());
  double signal = 0, power = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    noise[i] = normal(rng);
    signal += static_cast<double>(samples[i]) * samples[i];
    power += noise[i] * noise[i];
  }
  if (signal == 0 || power == 0) return;
  const double scale = std::sqrt(signal / power / std::pow(10.0, snr_db / 10));
  for (size_t i = 0; i < samples.size(); ++i) samples[i] = static_cast<float>(samples[i] + scale * noise[i]);
}

std::vector<float> room_impulse_response(double rt60_s, std::mt19937_64& rng, int rate) {
  const size_t n = static_cast<size_t>(std::ceil(rt60_s * rate));
  std::normal_distribution<double> normal;
  std::vector<float> h(n + 1);
  h[0] = 1;
  // Reverberant tail 20 dB under the direct path at its start, 60 dB further down at rt60.
  for (size_t t = 1; t <= n; ++t)
    h[t] =
        static_cast<float>(0.1 * normal(rng) * std::exp(-3 * std::log(10.0) * static_cast<double>(t) / rate / rt60_s));
  return h;
}

std::vector<float> convolve(const std::vector<float>& x, const std::vector<float>& h) {
  if (x.empty() || h.empty()) return x;
  const int64_t n = static_cast<int64_t>(x.size() + h.size() - 1);
  const auto opts = at::TensorOptions().dtype(at::kDouble);
  const at::Tensor X = at::fft_rfft(
      at::from_blob(const_cast<float*>(x.data()), {static_cast<int64_t>(x.size())}, at::kFloat).to(opts), n);
  const at::Tensor H = at::fft_rfft(
      at::from_blob(const_cast<float*>(h.data()), {static_cast<int64_t>(h.size())}, at::kFloat).to(opts), n);
  const at::Tensor y = at::fft_irfft(X * H, n).narrow(0, 0, static_cast<int64_t>(x.size())).to(at::kFloat).contiguous();
  return std::vector<float>(y.data_ptr<float>(), y.data_ptr<float>() + y.numel());
}

std::vector<float> augment_waveform(const std::vector<float>& samples, const WaveAugmentConfig& c,
                                    std::mt19937_64& rng) {
  std::vector<float> out = samples;
  if (c.speed_factors.size() > 1 || c.speed_factors[0] != 1.0)
    out = change_speed(out, c.speed_factors[rng() % c.speed_factors.size()]);
  std::uniform_real_distribution<double> unit;
  if (c.reverb_prob > 0 && unit(rng) < c.reverb_prob) {
    double before = 0, after = 0;
    for (float s : out) before += static_cast<double>(s) * s;
    out = convolve(
        out, room_impulse_response(c.reverb_rt60_min_s + unit(rng) * (c.reverb_rt60_max_s - c.reverb_rt60_min_s), rng));
    for (float s : out) after += static_cast<double>(s) * s;
    if (after > 0) {
      const float gain = static_cast<float>(std::sqrt(before / after));
      for (float& s : out) s *= gain;
    }
  }
  if (c.noise_prob > 0 && unit(rng) < c.noise_prob)
    add_noise(out, c.noise_snr_min_db + unit(rng) * (c.noise_snr_max_db - c.noise_snr_min_db), rng);
  return out;
}

}  // namespace vtb::data
