// Data pipeline speed on the synthetic corpus.
//
//   build/bench/bench_data [CORPUS_DIR=data/synth] [BATCHES=60]
//
// Prints feature extraction speed (× real time on one core) and BatchLoader throughput (batches/s and
// audio seconds/s) with 1, 2 and 4 workers, training mode (dither + SpecAugment), batches of ≤ 30 s.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "data/audio.h"
#include "data/batch_loader.h"
#include "data/manifest.h"
#include "data/synthetic_corpus.h"

using namespace vtb::data;
using clock_type = std::chrono::steady_clock;

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "data/synth";
  const int batches = argc > 2 ? std::atoi(argv[2]) : 60;
  if (!std::filesystem::exists(dir + "/asr_train.jsonl")) {
    std::printf("no corpus in %s: synthesising one (vtb data synth)\n", dir.c_str());
    SynthOptions o;
    o.out_dir = dir;
    make_synthetic_corpus(o);
  }
  ManifestOptions speech, text;
  text.kind = SourceKind::Text;
  const Manifest asr = read_manifest(dir + "/asr_train.jsonl", speech);

  torch::set_num_threads(1);
  std::vector<std::vector<float>> audio;
  double seconds = 0;
  for (const auto& c : asr.examples) {
    const auto& a = c.turns[0].segments.back().audio;
    audio.push_back(load_audio(a.path, a.offset, a.duration));
    seconds += audio.back().size() / 16000.0;
  }
  LogMelExtractor extractor{FeatureConfig{}};
  extractor.compute(audio[0]);
  auto start = clock_type::now();
  for (const auto& x : audio) extractor.compute(x);
  double elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
  std::printf("features: %zu utterances, %.1f s of audio in %.3f s on 1 core = %.0f x real time\n", audio.size(),
              seconds, elapsed, seconds / elapsed);

  const Tokenizer tok = Tokenizer::load(dir + "/tokenizer.model");
  std::vector<LoaderSource> sources{{"asr", 0.5, asr.examples, nullptr},
                                    {"sqa", 0.35, read_manifest(dir + "/sqa_train.jsonl", speech).examples, nullptr},
                                    {"text", 0.15, read_manifest(dir + "/text_train.jsonl", text).examples, nullptr}};
  for (int workers : {1, 2, 4}) {
    LoaderOptions o;
    o.workers = workers;
    o.queue_depth = 2 * workers;
    BatchLoader loader(sources, tok, BatchLimits{30, 0, 0, 256}, MixMode::PerBatch, o, 0, 1);
    loader.next();
    double audio_seconds = 0;
    start = clock_type::now();
    for (int i = 0; i < batches; ++i) audio_seconds += loader.next().audio_seconds;
    elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
    std::printf("loader: %d worker(s): %.1f batches/s, %.0f audio s/s\n", workers, batches / elapsed,
                audio_seconds / elapsed);
  }
}
