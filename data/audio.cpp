#include "data/audio.h"

#include <fcntl.h>
#include <sndfile.h>
#include <soxr.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <memory>
#include <regex>

namespace vtb::data {
namespace {

struct SndfileCloser {
  void operator()(SNDFILE* f) const { sf_close(f); }
};
using SndfilePtr = std::unique_ptr<SNDFILE, SndfileCloser>;

// A file cut short keeps its header: libsndfile then reads the frames that are there and notes the mismatch
// in its log ("data : 32000 (should be 15978)"). A slice that fits the surviving part would pass every other
// check, so the header's word is taken: the file is truncated. (A header declaring less than the file holds,
// or a streaming writer's placeholder size 0 / 0xFFFFFFFF, is not truncation.)
void refuse_truncated(SNDFILE* f, const std::string& what) {
  char log[4096] = {};
  sf_command(f, SFC_GET_LOG_INFO, log, sizeof log);
  static const std::regex data_line(R"((?:^|\n)data : (\d+) \(should be (\d+)\))");
  std::cmatch m;
  if (!std::regex_search(log, m, data_line)) return;
  const unsigned long long declared = std::stoull(m[1]), present = std::stoull(m[2]);
  if (declared > present && declared != 0 && declared != 0xFFFFFFFFULL)
    throw AudioError("truncated", what + ": truncated: its header declares " + std::to_string(declared) +
                                      " bytes of audio, the file holds " + std::to_string(present));
}

// Opens `path` without blocking and refuses anything but a regular file: reading a FIFO waits for a writer
// forever, a device or socket never ends, and libsndfile would wait in open() for either.
SndfilePtr open_for_reading(const std::string& path, SF_INFO& info) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw AudioError("unreadable", path + ": cannot read audio: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const char* kind = S_ISFIFO(st.st_mode)                         ? "a FIFO"
                       : S_ISDIR(st.st_mode)                        ? "a directory"
                       : S_ISSOCK(st.st_mode)                       ? "a socket"
                       : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                                                                    : "a special file";
    ::close(fd);
    throw AudioError("not a regular file", path + ": is " + kind +
                                               ", not a regular file; vtb reads audio only from files (a FIFO or "
                                               "device would block or never end)");
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  info = SF_INFO{};
  SndfilePtr f(sf_open_fd(fd, SFM_READ, &info, /*close_desc=*/SF_TRUE));
  // With close_desc, libsndfile owns the descriptor from here: it closes it on failure too (psf_open_file's
  // error path), so closing it again here could close another thread's file.
  if (!f) throw AudioError("unreadable", path + ": cannot read audio: " + sf_strerror(nullptr));
  if (info.channels <= 0 || info.samplerate <= 0)
    throw AudioError("unreadable", path + ": invalid header (no channels or rate)");
  refuse_truncated(f.get(), path);
  return f;
}

// Float formats carry any value: a NaN, an infinity or an absurd amplitude (the log-mel power of 1e30 is
// infinite in float32) would reach the model as NaN. Integer formats decode to [-1, 1] and pass.
void check_samples(const std::string& path, const std::vector<float>& samples, int rate) {
  for (size_t i = 0; i < samples.size(); ++i) {
    const float x = samples[i];
    if (std::isfinite(x) && std::fabs(x) <= kMaxSampleMagnitude) continue;
    size_t bad = 0;
    for (float y : samples) bad += !(std::isfinite(y) && std::fabs(y) <= kMaxSampleMagnitude);
    throw AudioError(std::isfinite(x) ? "samples out of range" : "non-finite samples",
                     path + ": " + std::to_string(bad) + " samples are " +
                         (std::isfinite(x) ? "beyond ±" + std::to_string(static_cast<int>(kMaxSampleMagnitude))
                                           : std::string("NaN or infinite")) +
                         ", the first at " + std::to_string(static_cast<double>(i) / rate) + " s (value " +
                         std::to_string(x) + ")");
  }
}

// libsndfile's virtual I/O over bytes already in memory (a tar member).
struct MemoryFile {
  const std::string* bytes;
  sf_count_t at = 0;

  static sf_count_t length(void* self) {
    return static_cast<sf_count_t>(static_cast<MemoryFile*>(self)->bytes->size());
  }
  static sf_count_t seek(sf_count_t offset, int whence, void* self) {
    auto* m = static_cast<MemoryFile*>(self);
    const sf_count_t base = whence == SEEK_CUR ? m->at : whence == SEEK_END ? length(self) : 0;
    if (base + offset < 0 || base + offset > length(self)) return -1;
    return m->at = base + offset;
  }
  static sf_count_t read(void* out, sf_count_t count, void* self) {
    auto* m = static_cast<MemoryFile*>(self);
    const sf_count_t n = std::max<sf_count_t>(0, std::min(count, length(self) - m->at));
    std::memcpy(out, m->bytes->data() + m->at, static_cast<size_t>(n));
    m->at += n;
    return n;
  }
  static sf_count_t write(const void*, sf_count_t, void*) { return 0; }
  static sf_count_t tell(void* self) { return static_cast<MemoryFile*>(self)->at; }
};

SndfilePtr open_bytes(const std::string& bytes, const std::string& what, MemoryFile& file, SF_INFO& info) {
  static SF_VIRTUAL_IO io{&MemoryFile::length, &MemoryFile::seek, &MemoryFile::read, &MemoryFile::write,
                          &MemoryFile::tell};
  file = MemoryFile{&bytes, 0};
  info = SF_INFO{};
  SndfilePtr f(sf_open_virtual(&io, SFM_READ, &info, &file));
  if (!f) throw AudioError("unreadable", what + ": cannot read audio: " + sf_strerror(nullptr));
  if (info.channels <= 0 || info.samplerate <= 0)
    throw AudioError("unreadable", what + ": invalid header (no channels or rate)");
  refuse_truncated(f.get(), what);
  return f;
}

std::vector<float> decode(SNDFILE* file, const SF_INFO& info, const std::string& path, double offset_s,
                          double duration_s, int rate, double max_seconds);

}  // namespace

AudioInfo audio_info(const std::string& path) {
  SF_INFO info;
  open_for_reading(path, info);
  return AudioInfo{info.frames, info.samplerate, info.channels};
}

double audio_duration(const std::string& path) {
  const AudioInfo info = audio_info(path);
  return static_cast<double>(info.frames) / info.rate;
}

double audio_duration_of(const std::string& bytes, const std::string& what) {
  MemoryFile file{};
  SF_INFO info;
  open_bytes(bytes, what, file, info);
  return static_cast<double>(info.frames) / info.samplerate;
}

std::vector<float> load_audio(const std::string& path, double offset_s, double duration_s, int rate,
                              double max_seconds) {
  SF_INFO info;
  SndfilePtr f = open_for_reading(path, info);
  return decode(f.get(), info, path, offset_s, duration_s, rate, max_seconds);
}

std::vector<float> load_audio_bytes(const std::string& bytes, const std::string& what, double offset_s,
                                    double duration_s, int rate, double max_seconds) {
  MemoryFile file{};
  SF_INFO info;
  SndfilePtr f = open_bytes(bytes, what, file, info);
  return decode(f.get(), info, what, offset_s, duration_s, rate, max_seconds);
}

namespace {

std::vector<float> decode(SNDFILE* file, const SF_INFO& info, const std::string& path, double offset_s,
                          double duration_s, int rate, double max_seconds) {
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
  if (max_seconds > 0 && static_cast<double>(count) / info.samplerate > max_seconds)
    throw AudioError("too long", path + ": " + std::to_string(static_cast<double>(count) / info.samplerate) +
                                     " s of audio; this command uses at most " + std::to_string(max_seconds) +
                                     " s (checked from the header, before decoding)");
  if (first > 0 && sf_seek(file, first, SEEK_SET) < 0)
    throw AudioError("unreadable", path + ": cannot seek: " + sf_strerror(file));

  std::vector<float> interleaved(static_cast<size_t>(count) * info.channels);
  const sf_count_t got = sf_readf_float(file, interleaved.data(), count);
  if (got < count)
    throw AudioError("truncated",
                     path + ": truncated: read " + std::to_string(got) + " of " + std::to_string(count) + " frames");
  std::vector<float> mono(static_cast<size_t>(count));
  for (sf_count_t i = 0; i < count; ++i) {
    float sum = 0;
    for (int c = 0; c < info.channels; ++c) sum += interleaved[static_cast<size_t>(i) * info.channels + c];
    mono[static_cast<size_t>(i)] = sum / static_cast<float>(info.channels);
  }
  check_samples(path, mono, info.samplerate);
  return resample(mono, info.samplerate, rate);
}

}  // namespace

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
