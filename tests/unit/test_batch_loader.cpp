// BatchLoader on real synthesized speech: batches are what the template and the feature extractor give,
// identical whatever the number of workers, resumable from state(), and bad audio follows the policy.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "data/audio.h"
#include "data/batch_loader.h"
#include "data/manifest.h"
#include "data/prompt.h"
#include "data/synthetic_corpus.h"

namespace vtb::data {
namespace {

namespace fs = std::filesystem;

const std::string& corpus() {
  static const std::string dir = [] {
    SynthOptions o;
    o.out_dir = ::testing::TempDir() + "vtb_loader_corpus_" + std::to_string(getpid());
    fs::remove_all(o.out_dir);
    o.asr_train = 24, o.asr_test = 4, o.ast_train = 8, o.ast_test = 4, o.sqa_train = 8, o.sqa_test = 4;
    o.text_train = 16, o.text_test = 4;
    o.tokenizer_vocab = 300;
    make_synthetic_corpus(o);
    return o.out_dir;
  }();
  return dir;
}

const Tokenizer& tok() {
  static const Tokenizer t = Tokenizer::load(corpus() + "/tokenizer.model");
  return t;
}

std::vector<LoaderSource> sources() {
  ManifestOptions speech, text;
  text.kind = SourceKind::Text;
  return {{"asr", 0.5, read_manifest(corpus() + "/asr_train.jsonl", speech).examples},
          {"sqa", 0.3, read_manifest(corpus() + "/sqa_train.jsonl", speech).examples},
          {"text", 0.2, read_manifest(corpus() + "/text_train.jsonl", text).examples}};
}

LoaderOptions options(int workers, bool training, bool augment = false) {
  LoaderOptions o;
  o.workers = workers;
  o.training = training;
  o.seed = 42;
  if (augment) {  // every kind on every utterance; none slower than 1.0, so the batches hold the same examples
    o.augment.speed_factors = {1.0, 1.1};
    o.augment.noise_prob = 1;
    o.augment.reverb_prob = 1;
  }
  return o;
}

void expect_same(const Batch& a, const Batch& b) {
  ASSERT_EQ(a.step, b.step);
  EXPECT_TRUE(torch::equal(a.ids, b.ids)) << "step " << a.step;
  EXPECT_TRUE(torch::equal(a.loss_mask, b.loss_mask));
  ASSERT_EQ(a.features.defined(), b.features.defined());
  if (a.features.defined()) {
    EXPECT_TRUE(torch::equal(a.features, b.features)) << "step " << a.step;
  }
}

TEST(BatchLoader, SameBatchesWhateverTheNumberOfWorkers) {
  BatchLoader one(sources(), tok(), BatchLimits{6, 0, 4, 16}, MixMode::PerBatch, options(1, true), 0, 1);
  BatchLoader three(sources(), tok(), BatchLimits{6, 0, 4, 16}, MixMode::PerBatch, options(3, true), 0, 1);
  for (int i = 0; i < 12; ++i) expect_same(one.next(), three.next());
}

// With waveform augmentation on: the batches differ from unaugmented ones, and are the same whatever the
// workers and after a restore (the augmentation's generator derives from seed and step, which the checkpoint
// holds).
TEST(BatchLoader, AugmentedBatchesAreTheSameAfterARestoreAndWhateverTheWorkers) {
  const BatchLimits limits{6, 0, 4, 16};
  BatchLoader plain(sources(), tok(), limits, MixMode::PerBatch, options(1, true), 0, 1);
  BatchLoader one(sources(), tok(), limits, MixMode::PerBatch, options(1, true, true), 0, 1);
  BatchLoader three(sources(), tok(), limits, MixMode::PerBatch, options(3, true, true), 0, 1);
  int differing = 0, with_audio = 0;
  for (int i = 0; i < 5; ++i) {
    const Batch a = one.next(), p = plain.next();
    expect_same(a, three.next());
    EXPECT_TRUE(torch::equal(a.ids, p.ids)) << "the same examples";
    if (a.features.defined() && p.features.defined()) {
      ++with_audio;
      differing += !(a.features.sizes() == p.features.sizes() && torch::equal(a.features, p.features));
    }
  }
  EXPECT_GT(with_audio, 0);
  EXPECT_EQ(differing, with_audio) << "augmentation did not reach the features";
  const SamplerState saved = one.state();
  std::vector<Batch> expected;
  for (int i = 0; i < 4; ++i) expected.push_back(one.next());
  BatchLoader resumed(sources(), tok(), limits, MixMode::PerBatch, options(2, true, true), 0, 1);
  resumed.restore(saved);
  for (const auto& e : expected) expect_same(resumed.next(), e);
}

TEST(BatchLoader, RestoredStateContinuesExactly) {
  BatchLoader a(sources(), tok(), BatchLimits{6, 0, 4, 16}, MixMode::PerBatch, options(2, true), 1, 2);
  for (int i = 0; i < 7; ++i) a.next();
  const SamplerState saved = a.state();
  EXPECT_EQ(saved.step, 7);
  std::vector<Batch> expected;
  for (int i = 0; i < 6; ++i) expected.push_back(a.next());
  BatchLoader b(sources(), tok(), BatchLimits{6, 0, 4, 16}, MixMode::PerBatch, options(2, true), 1, 2);
  b.restore(saved);
  for (const auto& e : expected) expect_same(b.next(), e);
}

TEST(BatchLoader, BatchesHoldTheTemplateAndTheFeatures) {
  auto src = sources();
  BatchLoader loader(src, tok(), BatchLimits{0, 0, 3, 0}, MixMode::PerSample, options(2, false), 0, 1);
  LogMelExtractor extractor{FeatureConfig{}};
  for (int step = 0; step < 6; ++step) {
    const Batch b = loader.next();
    int64_t segment = 0;
    ASSERT_EQ(b.ids.size(0), static_cast<int64_t>(b.sources.size()));
    for (int64_t i = 0; i < b.ids.size(0); ++i) {
      const int64_t n = b.lengths[i].item<int64_t>();
      const int64_t placeholders = b.ids[i].narrow(0, 0, n).eq(tok().special().audio).sum().item<int64_t>();
      EXPECT_TRUE(b.ids[i].narrow(0, n, b.ids.size(1) - n).eq(tok().special().pad).all().item<bool>());
      segment += placeholders;
    }
    EXPECT_EQ(segment, b.features.defined() ? b.features.size(0) : 0);
    // Without training there is no dither or SpecAugment: each segment equals the extractor's output.
    for (int64_t s = 0; s < segment; ++s) {
      const int64_t frames = b.feature_lengths[s].item<int64_t>();
      EXPECT_TRUE(b.features[s].narrow(1, frames, b.features.size(2) - frames).eq(0).all().item<bool>());
    }
  }
  // One example end to end: the first ASR example alone.
  std::vector<LoaderSource> one{{"asr", 1, {src[0].examples[0]}}};
  BatchLoader single(one, tok(), BatchLimits{0, 0, 1, 0}, MixMode::PerBatch, options(1, false), 0, 1);
  const Batch b = single.next();
  const FormattedExample f = format_conversation(src[0].examples[0], tok());
  EXPECT_TRUE(torch::equal(b.ids[0], torch::tensor(std::vector<int64_t>(f.ids.begin(), f.ids.end()), torch::kLong)));
  const auto& a = f.audio[0];
  EXPECT_TRUE(torch::equal(b.features[0], extractor.compute(load_audio(a.path, a.offset, a.duration))));
}

TEST(BatchLoader, UnreadableAudioFailsNamingTheLineOrIsSkipped) {
  auto src = sources();
  std::vector<LoaderSource> bad{{"asr", 1, {src[0].examples[0], src[0].examples[1]}}};
  const std::string broken = ::testing::TempDir() + "vtb_broken.wav";
  std::ofstream(broken) << "not audio";
  bad[0].examples[1].turns[0].segments.back().audio.path = broken;
  {
    BatchLoader loader(bad, tok(), BatchLimits{0, 0, 2, 0}, MixMode::PerBatch, options(1, false), 0, 1);
    try {
      loader.next();
      FAIL() << "unreadable audio must fail under the fail policy";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(bad[0].examples[1].origin + ": " + broken), std::string::npos) << e.what();
    }
  }
  LoaderOptions skip = options(1, false);
  skip.skip_bad_audio = true;
  BatchLoader loader(bad, tok(), BatchLimits{0, 0, 2, 0}, MixMode::PerBatch, skip, 0, 1);
  const Batch b = loader.next();
  EXPECT_EQ(b.skipped, 1);
  EXPECT_EQ(b.ids.size(0), 1);
}

}  // namespace
}  // namespace vtb::data
