#include "data/audio.h"

#include <sndfile.h>
#include <soxr.h>

#include <cmath>
#include <memory>

namespace vtb::data {
namespace {

struct SndfileCloser {
  void operator()(SNDFILE* f) const { sf_close(f); }
};
using SndfilePtr = std::unique_ptr<SNDFILE, SndfileCloser>;

SndfilePtr open_for_reading(const std::string& path, SF_INFO& info) {
  info = SF_INFO{};
  SndfilePtr f(sf_open(path.c_str(), SFM_READ, &info));
  if (!f) throw AudioError("unreadable", path + ": cannot read audio: " + sf_strerror(nullptr));
  if (info.channels <= 0 || info.samplerate <= 0)
    throw AudioError("unreadable", path + ": invalid header (no channels or rate)");
  return f;
}

}  // namespace

double audio_duration(const std::string& path) {
  SF_INFO info;
  open_for_reading(path, info);
  return static_cast<double>(info.frames) / info.samplerate;
}

std::vector<float> load_audio(const std::string& path, double offset_s, double duration_s, int rate) {
  SF_INFO info;
  SndfilePtr f = open_for_reading(path, info);
  const sf_count_t first = static_cast<sf_count_t>(std::llround(offset_s * info.samplerate));
  if (offset_s < 0 || first > info.frames)
    throw AudioError("slice outside the file",
                     path + ": offset " + std::to_string(offset_s) + " s is outside the file (" +
                         std::to_string(static_cast<double>(info.frames) / info.samplerate) + " s)");
  sf_count_t count = info.frames - first;
  if (duration_s > 0) {
    const sf_count_t wanted = static_cast<sf_count_t>(std::llround(duration_s * info.samplerate));
    // A manifest duration may overshoot the file by rounding; more than 0.1 s is a wrong manifest.
    if (wanted > count + info.samplerate / 10)
      throw AudioError("shorter than its manifest says",
                       path + ": manifest asks for " + std::to_string(duration_s) + " s from " +
                           std::to_string(offset_s) + " s, but the file has only " +
                           std::to_string(static_cast<double>(count) / info.samplerate) + " s there");
    count = std::min(count, wanted);
  }
  if (count <= 0) throw AudioError("empty", path + ": no audio samples in the requested slice");
  if (first > 0 && sf_seek(f.get(), first, SEEK_SET) < 0)
    throw AudioError("unreadable", path + ": cannot seek: " + sf_strerror(f.get()));

  std::vector<float> interleaved(static_cast<size_t>(count) * info.channels);
  const sf_count_t got = sf_readf_float(f.get(), interleaved.data(), count);
  if (got < count)
    throw AudioError("truncated",
                     path + ": truncated: read " + std::to_string(got) + " of " + std::to_string(count) + " frames");
  std::vector<float> mono(static_cast<size_t>(count));
  for (sf_count_t i = 0; i < count; ++i) {
    float sum = 0;
    for (int c = 0; c < info.channels; ++c) sum += interleaved[static_cast<size_t>(i) * info.channels + c];
    mono[static_cast<size_t>(i)] = sum / static_cast<float>(info.channels);
  }
  return resample(mono, info.samplerate, rate);
}

std::vector<float> resample(const std::vector<float>& samples, int from_rate, int to_rate) {
  if (from_rate == to_rate) return samples;
  const size_t out_len = static_cast<size_t>(std::llround(static_cast<double>(samples.size()) * to_rate / from_rate));
  std::vector<float> out(out_len);
  size_t done = 0;
  const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  const soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);  // a null spec would mean LQ in oneshot
  soxr_error_t err = soxr_oneshot(from_rate, to_rate, 1, samples.data(), samples.size(), nullptr, out.data(), out_len,
                                  &done, &io, &quality, nullptr);
  if (err != nullptr) throw AudioError("resampling failed", std::string("resampling failed: ") + soxr_strerror(err));
  out.resize(done);
  return out;
}

void write_wav(const std::string& path, const std::vector<float>& samples, int rate) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = 1;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SndfilePtr f(sf_open(path.c_str(), SFM_WRITE, &info));
  if (!f) throw AudioError("unwritable", path + ": cannot write: " + sf_strerror(nullptr));
  sf_command(f.get(), SFC_SET_CLIPPING, nullptr, SF_TRUE);
  if (sf_writef_float(f.get(), samples.data(), static_cast<sf_count_t>(samples.size())) !=
      static_cast<sf_count_t>(samples.size()))
    throw AudioError("unwritable", path + ": write failed: " + sf_strerror(f.get()));
}

}  // namespace vtb::data
