#include "data/features.h"

#include <ATen/ATen.h>

#include <cmath>
#include <stdexcept>

namespace vtb::data {
namespace {

// Slaney mel scale (librosa hz_to_mel, htk=False): linear below 1 kHz, logarithmic above.
constexpr double kMinLogHz = 1000.0, kMinLogMel = 15.0, kLinearStep = 200.0 / 3;
const double kLogStep = std::log(6.4) / 27.0;

double hz_to_mel(double f) { return f < kMinLogHz ? f / kLinearStep : kMinLogMel + std::log(f / kMinLogHz) / kLogStep; }
double mel_to_hz(double m) {
  return m < kMinLogMel ? m * kLinearStep : kMinLogHz * std::exp((m - kMinLogMel) * kLogStep);
}

}  // namespace

void FeatureConfig::validate() const {
  if (win_length > n_fft) throw std::invalid_argument("features: win_length must not exceed n_fft");
}

int64_t FeatureConfig::frames(int64_t samples) const {
  return samples / hop + (frame_rule == FrameRule::PlusOne ? 1 : 0);
}

at::Tensor slaney_mel_filterbank(int n_freqs, double fmin, double fmax, int n_mels, int sample_rate) {
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  at::Tensor freqs = at::linspace(0, sample_rate / 2.0, n_freqs, f64);
  at::Tensor mels = at::linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2, f64);
  at::Tensor edges = at::empty({n_mels + 2}, f64);
  for (int i = 0; i < n_mels + 2; ++i) edges[i] = mel_to_hz(mels[i].item<double>());
  at::Tensor width = edges.slice(0, 1) - edges.slice(0, 0, -1);  // [n_mels+1]
  at::Tensor slopes = edges.unsqueeze(0) - freqs.unsqueeze(1);   // [n_freqs, n_mels+2]
  at::Tensor down = -slopes.slice(1, 0, n_mels) / width.slice(0, 0, n_mels);
  at::Tensor up = slopes.slice(1, 2) / width.slice(0, 1);
  at::Tensor fb = at::clamp_min(at::minimum(down, up), 0.0);
  at::Tensor area = 2.0 / (edges.slice(0, 2, n_mels + 2) - edges.slice(0, 0, n_mels));  // Slaney norm
  return (fb * area.unsqueeze(0)).to(at::kFloat);
}

LogMelExtractor::LogMelExtractor(FeatureConfig config) : config_(std::move(config)) {
  config_.validate();
  at::Tensor hann = at::hann_window(config_.win_length, /*periodic=*/false, at::TensorOptions().dtype(at::kFloat));
  const int left = (config_.n_fft - config_.win_length) / 2;
  window_ = at::constant_pad_nd(hann, {left, config_.n_fft - config_.win_length - left});
  filterbank_ =
      slaney_mel_filterbank(config_.n_fft / 2 + 1, config_.fmin, config_.fmax, config_.n_mels, config_.sample_rate);
}

at::Tensor LogMelExtractor::compute(const std::vector<float>& samples, std::mt19937_64* rng) const {
  const int64_t L = static_cast<int64_t>(samples.size());
  const int pad = config_.n_fft / 2;
  if (L == 0) throw std::invalid_argument("features: empty audio");
  if (config_.pad_mode == PadMode::Reflect && L <= pad)
    throw std::invalid_argument("features: " + std::to_string(L) +
                                " samples are too short for reflect padding (need > " + std::to_string(pad) + ")");
  at::Tensor x = at::from_blob(const_cast<float*>(samples.data()), {L}, at::kFloat).clone();
  if (rng != nullptr && config_.dither > 0) {
    std::normal_distribution<float> normal(0.f, 1.f);
    float* p = x.data_ptr<float>();
    for (int64_t i = 0; i < L; ++i) p[i] += static_cast<float>(config_.dither) * normal(*rng);
  }
  // Pre-emphasis: y[0] = x[0], y[t] = x[t] - a·x[t-1].
  x = at::cat({x.slice(0, 0, 1), x.slice(0, 1) - config_.preemph * x.slice(0, 0, -1)});
  // Centre padding done here (not by stft) so the pad mode is explicit on every LibTorch version.
  at::Tensor padded = config_.pad_mode == PadMode::Reflect
                          ? at::reflection_pad1d(x.view({1, 1, L}), {pad, pad}).view({-1})
                          : at::constant_pad_nd(x, {pad, pad});
  at::Tensor spec = at::stft(padded, config_.n_fft, config_.hop, config_.n_fft, window_, /*center=*/false, "reflect",
                             /*normalized=*/false, /*onesided=*/true, /*return_complex=*/true);
  at::Tensor power = at::abs(spec).pow(2);                                              // [n_freqs, frames]
  at::Tensor logmel = at::log(at::matmul(filterbank_.t(), power) + config_.log_guard);  // [n_mels, frames]

  const int64_t valid = std::min<int64_t>(config_.frames(L), logmel.size(1));
  logmel = logmel.slice(1, 0, valid);
  at::Tensor mean = logmel.mean(1, true);
  at::Tensor stdev = valid > 1 ? logmel.std(1, /*unbiased=*/true, true) : at::zeros_like(mean);
  return (logmel - mean) / (stdev + 1e-5);
}

void spec_augment(at::Tensor& features, const SpecAugmentConfig& config, std::mt19937_64& rng) {
  const int64_t F = features.size(0), T = features.size(1);
  auto uniform = [&rng](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  for (int i = 0; i < config.freq_masks; ++i) {
    const int64_t width = uniform(0, std::min<int64_t>(config.freq_width, F));
    const int64_t start = uniform(0, F - width);
    features.slice(0, start, start + width).zero_();
  }
  const int64_t max_time = std::max<int64_t>(1, static_cast<int64_t>(config.time_width * T));
  for (int i = 0; i < config.time_masks; ++i) {
    const int64_t width = uniform(0, std::min(max_time, T));
    const int64_t start = uniform(0, T - width);
    features.slice(1, start, start + width).zero_();
  }
}

}  // namespace vtb::data
