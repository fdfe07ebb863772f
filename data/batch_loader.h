// From sampled example indices to padded tensors, in background threads.
//
// Note [Prefetch]: a producer thread draws batches from the MixingSampler in step order, reads the audio of
// sharded sources' examples from their tars (Note [Reading shards in plan order]), and hands each batch
// to a worker pool (decode audio, features, dither and SpecAugment in training, tokenize, pad); next()
// returns batches strictly in step order. All randomness of a batch derives from (seed, step, segment),
// so results do not depend on which worker ran when. At most `queue_depth` batches are in flight. The
// sampler state after each batch is kept with it, so state() always describes the batches already
// returned — what a checkpoint must store.
#pragma once

#include <ATen/core/Tensor.h>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "data/augment.h"
#include "data/conversation.h"
#include "data/features.h"
#include "data/mixing_sampler.h"
#include "data/prompt.h"
#include "data/shard_stream.h"
#include "data/tokenizer.h"

namespace vtb::data {

struct Batch {
  int64_t step = 0;
  std::vector<size_t> sources;   // per example
  std::vector<size_t> examples;  // per example: its index in its source
  at::Tensor ids;                // [B, T] int64, right-padded with <pad>
  at::Tensor lengths;            // [B]
  at::Tensor loss_mask;          // [B, T] bool
  at::Tensor features;           // [N, n_mels, F] or undefined when the batch has no audio
  at::Tensor feature_lengths;    // [N]
  double audio_seconds = 0;
  int64_t answer_tokens = 0;
  int64_t skipped = 0;  // examples dropped because their audio could not be read (skip policy)
};

// Stacks [n_mels, frames_i] features into zero-padded [N, n_mels, max frames] and their lengths [N].
// Undefined tensors for an empty list (a text-only batch).
std::pair<at::Tensor, at::Tensor> pad_features(const std::vector<at::Tensor>& features);

// Formatted examples right-padded with `pad`: ids [B, T] int64, loss_mask [B, T] bool, lengths [B].
struct PaddedTokens {
  at::Tensor ids, loss_mask, lengths;
};
PaddedTokens pad_tokens(const std::vector<FormattedExample>& examples, int64_t pad);

struct LoaderOptions {
  FeatureConfig features;
  SpecAugmentConfig spec_augment;
  WaveAugmentConfig augment;  // speed, noise, reverberation on the waveform (training only)
  bool training = true;       // waveform augmentation, dither and SpecAugment
  bool skip_bad_audio = false;
  int workers = 2;
  int queue_depth = 4;
  uint64_t seed = 0;
  // The speech encoder's time reduction (encoder.subsampling_factor): a second of audio is
  // sample_rate / hop / subsampling_factor positions of the LLM's sequence (12.5 for Canary's 8).
  int64_t subsampling_factor = 8;
};

struct LoaderSource {
  std::string name;
  double weight = 1;
  std::vector<Conversation> examples;
  std::shared_ptr<const ShardIndex> shards;  // a sharded source (examples numbered shard by shard); else null
};

class BatchLoader {
 public:
  BatchLoader(std::vector<LoaderSource> sources, const Tokenizer& tokenizer, BatchLimits limits, MixMode mode,
              LoaderOptions options, int rank, int world);
  ~BatchLoader();

  Batch next();
  SamplerState state() const;               // after the last batch next() returned
  void restore(const SamplerState& state);  // before the first next()
  // The sampler state of rank `rank` of `world` after `steps` batches from the start, drawn without reading
  // any data (a position to restore() to: vtb data epoch --start-batch and --resume-from, the benchmark).
  SamplerState state_after(int64_t steps, int rank, int world) const;

  // Sequence cost the sampler uses: text tokens + the audio frames the encoder makes of the example's audio.
  ExampleCost cost(const Conversation& c, size_t text_tokens) const;

  // data.on_error = skip: the examples of this rank whose audio could not be used, by reason (AudioError),
  // each counted once. A bad example is loaded and logged once, then dropped whenever it is drawn again.
  std::map<std::string, int64_t> bad_examples() const;

 private:
  // A drawn batch with the bytes of its shard members (read by the producer, in plan order).
  struct Work {
    SampledBatch sampled;
    SamplerState state;
    std::vector<MemberBytes> members;  // per item; empty bytes and error for loose files
  };
  void start();
  void produce();
  std::vector<MemberBytes> read_members(const SampledBatch& sampled);
  Batch build(const Work& work) const;

  std::vector<LoaderSource> sources_;
  const Tokenizer& tokenizer_;
  LoaderOptions options_;
  LogMelExtractor extractor_;
  BatchLimits limits_;
  MixMode mode_;
  std::unique_ptr<MixingSampler> sampler_;
  std::vector<std::unique_ptr<ShardStream>> streams_;  // per source; null for JSONL sources. Producer only.

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<int64_t, std::pair<Batch, SamplerState>> ready_;
  std::map<int64_t, std::exception_ptr> failed_;
  int64_t next_step_ = 0;  // the step next() returns
  int64_t in_flight_ = 0;
  SamplerState returned_state_;
  bool stopping_ = false;
  bool started_ = false;
  std::thread producer_;
  std::vector<std::thread> workers_;
  std::vector<Work> work_;  // drawn, not yet built

  mutable std::mutex bad_mu_;                        // guards the two below (workers build concurrently)
  mutable std::set<std::pair<size_t, size_t>> bad_;  // (source, index)
  mutable std::map<std::string, int64_t> bad_by_reason_;
};

}  // namespace vtb::data
