// Audio in and out: any format libsndfile reads (wav, flac, ogg, ...), any rate and channel count, to
// 16 kHz mono float through libsoxr at high quality.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace vtb::data {

// `reason` is a short name of what is wrong ("unreadable", "truncated", ...): how data.on_error = skip
// counts bad examples.
struct AudioError : std::runtime_error {
  AudioError(std::string reason, const std::string& message) : std::runtime_error(message), reason(std::move(reason)) {}
  std::string reason;
};

constexpr int kSampleRate = 16000;
// Samples beyond ±this (80 dB over full scale) are a broken file, not loud audio.
constexpr float kMaxSampleMagnitude = 1e4F;

// Reads [offset_s, offset_s + duration_s) of `path` (duration_s ≤ 0: to the end), averages channels,
// resamples to `rate`. Throws AudioError naming the file for anything but a regular file (a FIFO, device or
// socket is refused without blocking), unreadable files, a slice beyond the end, an empty result, a slice
// longer than `max_seconds` (> 0; checked before decoding), and samples that are not finite or beyond
// ±kMaxSampleMagnitude.
std::vector<float> load_audio(const std::string& path, double offset_s = 0, double duration_s = 0,
                              int rate = kSampleRate, double max_seconds = 0);

// The same from a file's bytes already in memory (a tar shard's member); `what` names it in errors.
std::vector<float> load_audio_bytes(const std::string& bytes, const std::string& what, double offset_s = 0,
                                    double duration_s = 0, int rate = kSampleRate, double max_seconds = 0);

// Resamples mono float audio (soxr, HQ). Returns the input when the rates are equal.
std::vector<float> resample(const std::vector<float>& samples, int from_rate, int to_rate);

// Writes mono float samples as 16-bit PCM WAV.
void write_wav(const std::string& path, const std::vector<float>& samples, int rate = kSampleRate);

// Frames, rate and channels from the file header (no decoding).
struct AudioInfo {
  int64_t frames = 0;
  int rate = 0, channels = 0;
};
AudioInfo audio_info(const std::string& path);

// Duration in seconds from the file header (no decoding).
double audio_duration(const std::string& path);
double audio_duration_of(const std::string& bytes, const std::string& what);  // from bytes in memory

}  // namespace vtb::data
