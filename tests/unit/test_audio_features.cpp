// Audio loading and resampling (libsndfile + soxr), the mel filterbank against torchaudio's published
// values (docs/sources.md §4), and bad audio inputs.
#include <gtest/gtest.h>
#include <sndfile.h>
#include <sys/stat.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <future>
#include <limits>

#include "data/audio.h"
#include "data/features.h"

namespace vtb::data {
namespace {

std::string temp(const std::string& name) { return ::testing::TempDir() + "vtb_audio_" + name; }

// Writes interleaved float frames with libsndfile directly (not through vtb's writer).
void write_raw(const std::string& path, const std::vector<float>& interleaved, int channels, int rate, int format) {
  SF_INFO info{};
  info.channels = channels;
  info.samplerate = rate;
  info.format = format;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  ASSERT_NE(f, nullptr) << sf_strerror(nullptr);
  sf_writef_float(f, interleaved.data(), static_cast<sf_count_t>(interleaved.size() / channels));
  sf_close(f);
}

// Frequency of a sine from its zero crossings.
double measured_frequency(const std::vector<float>& x, int rate) {
  int crossings = 0;
  size_t first = 0, last = 0;
  for (size_t i = 1; i < x.size(); ++i)
    if (x[i - 1] < 0 && x[i] >= 0) {
      if (crossings == 0) first = i;
      last = i;
      ++crossings;
    }
  return (crossings - 1) / (static_cast<double>(last - first) / rate);
}

TEST(Audio, StereoSineAt44100ComesOutMono16kAtTheSameFrequency) {
  const int rate = 44100, frames = 44100 * 2 + 17;
  std::vector<float> stereo(2 * frames);
  for (int i = 0; i < frames; ++i) {
    const float s = 0.5f * std::sin(2 * M_PI * 440.0 * i / rate);
    stereo[2 * i] = s;
    stereo[2 * i + 1] = s;  // same on both channels: the mono mix keeps the amplitude
  }
  const std::string path = temp("sine44k.wav");
  write_raw(path, stereo, 2, rate, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
  const auto mono = load_audio(path);
  const double expected_len = frames * 16000.0 / rate;
  EXPECT_LE(std::abs(static_cast<double>(mono.size()) - expected_len), 1.0);
  EXPECT_NEAR(measured_frequency(mono, 16000), 440.0, 0.5);
  float peak = 0;
  for (size_t i = 1000; i < mono.size() - 1000; ++i) peak = std::max(peak, std::abs(mono[i]));
  EXPECT_NEAR(peak, 0.5f, 0.01f);
  EXPECT_NEAR(audio_duration(path), frames / 44100.0, 1e-9);
}

TEST(Audio, OffsetAndDurationSliceTheFile) {
  std::vector<float> ramp(16000);
  for (int i = 0; i < 16000; ++i) ramp[i] = (i % 1000) / 1000.0f - 0.5f;
  const std::string path = temp("ramp.wav");
  write_raw(path, ramp, 1, 16000, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
  const auto slice = load_audio(path, 0.25, 0.5);
  ASSERT_EQ(slice.size(), 8000u);
  EXPECT_FLOAT_EQ(slice[0], ramp[4000]);
  EXPECT_FLOAT_EQ(slice[7999], ramp[11999]);
}

void expect_audio_error(const std::function<void()>& f, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one containing '" << part << "'";
  } catch (const AudioError& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(Audio, BadInputsGiveErrorsNamingTheFile) {
  expect_audio_error([] { load_audio("/nonexistent/a.wav"); }, "/nonexistent/a.wav: cannot read audio");
  const std::string garbage = temp("garbage.wav");
  std::ofstream(garbage) << "RIFF this is not a wav file";
  expect_audio_error([&] { load_audio(garbage); }, garbage + ": cannot read audio");
  const std::string empty = temp("empty.wav");
  write_raw(empty, {}, 1, 16000, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
  expect_audio_error([&] { load_audio(empty); }, "no audio samples");
  std::vector<float> second(16000, 0.1f);
  const std::string one = temp("one.wav");
  write_raw(one, second, 1, 16000, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
  expect_audio_error([&] { load_audio(one, 2.0, 0.5); }, "outside the file");
  expect_audio_error([&] { load_audio(one, 0.0, 30.0); }, "the file has only 1");
  // A truncated file: the header promises 1 s (16000 16-bit frames: 32000 bytes), the data holds half. Refused
  // whatever slice is asked for, even one that fits the surviving half (issue 37).
  std::ifstream in(one, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string cut = temp("cut.wav");
  std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  expect_audio_error([&] { load_audio(cut, 0.0, 1.0); }, cut + ": truncated: its header declares 32000 bytes of audio");
  expect_audio_error([&] { load_audio(cut, 0.0, 0.3); }, cut + ": truncated: its header declares 32000 bytes of audio");
}

// Issue 37: a FIFO blocked open() forever (eval, generate, chat hung; training waited for the watchdog), and
// float files with NaN, inf or ±1e30 samples decoded into NaN features without a word.
TEST(Audio, OnlyRegularFilesWithFiniteSamplesOfSaneSizeAreRead) {
  const std::string fifo = temp("fifo.wav");
  std::remove(fifo.c_str());
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  auto refused = std::async(std::launch::async, [&] {
    try {
      load_audio(fifo);
    } catch (const AudioError& e) {
      return std::string(e.what()) + " [" + e.reason + "]";
    }
    return std::string("read");
  });
  ASSERT_EQ(refused.wait_for(std::chrono::seconds(10)), std::future_status::ready) << "load_audio blocked on a FIFO";
  EXPECT_EQ(refused.get(), fifo +
                               ": is a FIFO, not a regular file; vtb reads audio only from files (a FIFO or "
                               "device would block or never end) [not a regular file]");
  expect_audio_error([] { load_audio("/dev/null"); }, "/dev/null: is a device, not a regular file");
  expect_audio_error([] { load_audio("/tmp"); }, "/tmp: is a directory");

  std::vector<float> samples(16000, 0.25f);
  samples[8000] = std::numeric_limits<float>::quiet_NaN();
  samples[8001] = std::numeric_limits<float>::infinity();
  const std::string nan = temp("nan.wav");
  write_raw(nan, samples, 1, 16000, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
  expect_audio_error([&] { load_audio(nan); }, nan + ": 2 samples are NaN or infinite, the first at 0.500000 s");
  samples[8000] = samples[8001] = 1e30f;
  const std::string loud = temp("loud.wav");
  write_raw(loud, samples, 1, 16000, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
  expect_audio_error([&] { load_audio(loud); }, loud + ": 2 samples are beyond ±10000, the first at 0.500000 s");
  samples[8000] = samples[8001] = 1.5f;  // above full scale in a float file, but audio
  const std::string hot = temp("hot.wav");
  write_raw(hot, samples, 1, 16000, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
  EXPECT_EQ(load_audio(hot).size(), 16000u);
  expect_audio_error([&] { load_audio(hot, 0, 0, kSampleRate, 0.5); },
                     "1.000000 s of audio; this command uses at most");
}

TEST(MelFilterbank, MatchesTorchaudioReferenceValues) {
  // torchaudio 0.13.1 melscale_fbanks(257, 0, 8000, 80, 16000, norm="slaney", mel_scale="slaney"), transposed.
  at::Tensor fb = slaney_mel_filterbank(257, 0, 8000, 80, 16000).t();  // [80, 257]
  EXPECT_NEAR(fb.sum().item<double>(), 2.558261, 1e-5);
  EXPECT_NEAR(fb.max().item<double>(), 0.02640655, 1e-7);
  EXPECT_NEAR(fb[0][1].item<double>(), 0.02253456, 1e-7);
  EXPECT_NEAR(fb[0][2].item<double>(), 0.00863771, 1e-7);
  EXPECT_NEAR(fb[1][2].item<double>(), 0.01821571, 1e-7);
  EXPECT_NEAR(fb[1][3].item<double>(), 0.01295656, 1e-7);
  EXPECT_NEAR(fb[40][54].item<double>(), 0.00715950, 1e-7);
  EXPECT_NEAR(fb[40][55].item<double>(), 0.01444423, 1e-7);
  EXPECT_NEAR(fb[40][56].item<double>(), 0.00876143, 1e-7);
  EXPECT_NEAR(fb[40][57].item<double>(), 0.00175115, 1e-7);
}

TEST(Features, FrameCountsAndNormalisation) {
  std::vector<float> x(16000 + 5);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.01f * i) * 0.3f;
  FeatureConfig reflect;
  at::Tensor f = LogMelExtractor(reflect).compute(x);
  EXPECT_EQ(f.size(0), 128);
  EXPECT_EQ(f.size(1), 101);                              // 16005 / 160 + 1
  EXPECT_LT(f.mean(1).abs().max().item<double>(), 1e-4);  // per-bin mean 0 over valid frames
  FeatureConfig floor_rule;
  floor_rule.pad_mode = PadMode::Constant;
  floor_rule.frame_rule = FrameRule::Floor;
  EXPECT_EQ(LogMelExtractor(floor_rule).compute(x).size(1), 100);
  // Dither changes the features only when a generator is given (training).
  std::mt19937_64 rng(1);
  EXPECT_TRUE(torch::equal(f, LogMelExtractor(reflect).compute(x)));
  EXPECT_FALSE(torch::equal(f, LogMelExtractor(reflect).compute(x, &rng)));
}

}  // namespace
}  // namespace vtb::data
