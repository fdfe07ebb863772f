// The mixing sampler (docs/design.md §4): which examples form each batch, from a weighted mix of sources.
//
// Note [Sampler determinism]: everything random is a pure function of (seed, source, epoch, chunk, step)
// through a counter-based hash, so the whole state is a few integers per source, and a restored state
// yields exactly the batches that would have come next.
//  - Each epoch of a source is a seeded permutation of its examples; rank r of R takes positions
//    r, r+R, r+2R, ...: shards are disjoint and together cover the source once per epoch.
//  - Sharded sources (tar shards, sharded_source.h) are dealt differently; see Note [Shards over ranks].
//  - A rank's shard is cut into chunks of `bucket_window` examples; within a chunk examples are sorted by
//    length and cut into batches bounded by audio seconds, tokens and examples (length buckets keep
//    padding low); the chunk's batches then come in a seeded random order.
//  - per_batch mode (the paper's): each step draws one source by weight (the same on every rank, since
//    the draw depends on the step only) and takes that source's next batch. per_sample mode: each
//    example of a batch draws its source.
//
// Note [Shards over ranks]: a source kept as tar shards is read shard by shard (a parallel file system serves
// large sequential reads), so an epoch cannot be a permutation of single examples. Instead:
//  1. the shard list is shuffled by (seed, source, epoch), the same on every rank;
//  2. the shuffled shards' examples, each shard in its tar order, are concatenated, and rank r of R takes the
//     contiguous range [r·N/R, (r+1)·N/R) of that sequence: every example once per epoch, by one rank, and
//     ranks' counts differ by at most one — uneven shards and fewer shards than ranks included (a shard cut
//     between two ranks is read by both, each skipping the other's members by their headers). No rank starves,
//     none waits for another: steps are global, and each rank's epoch is only its own range.
//  3. the length-bucketing chunk (bucket_window consecutive examples of that range) is the shuffle buffer:
//     sorted by length, cut into batches, batches in a seeded order. It bounds what a rank holds: the audio of
//     at most one chunk (plus the batches in flight) is in memory.
// So the sequence is a pure function of (seed, source, epoch, R) and the cursor (epoch, chunk, batch) is a
// stream position: a resume opens the chunk's shard and skips to its first member by headers.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vtb::data {

struct ExampleCost {
  double seconds = 0;  // audio seconds
  int64_t tokens = 0;  // sequence length the example adds (text tokens + audio frames)
};

struct SamplerSource {
  std::string name;
  double weight = 1;
  std::vector<ExampleCost> costs;  // one per example
  // Sharded sources: examples per shard (examples numbered shard by shard). Empty: examples are independent.
  std::vector<int64_t> shard_sizes;
};

struct BatchLimits {
  double max_seconds = 0;       // 0 = unbounded
  int64_t max_tokens = 0;       // 0 = unbounded
  int64_t max_examples = 0;     // 0 = unbounded
  int64_t bucket_window = 512;  // examples per length-bucketing chunk; 0 = no sorting
};

// per_batch: one source per step (the paper's); per_sample: each example drawn from the mix.
enum class MixMode { PerBatch, PerSample };
inline constexpr std::array<std::pair<std::string_view, MixMode>, 2> kMixModes{
    {{"per_batch", MixMode::PerBatch}, {"per_sample", MixMode::PerSample}}};

struct SourceCursor {
  int64_t epoch = 0;
  int64_t chunk = 0;     // per_batch: chunk of the shard
  int64_t batch = 0;     // per_batch: batch within the chunk
  int64_t position = 0;  // per_sample: position in the shard
  int64_t consumed = 0;  // examples taken so far (all epochs)
  // Note [Finishing an epoch on another number of ranks]: while `finishing` holds the cursors of the ranks
  // that wrote the checkpoint (one each), epoch `epoch` is what they left unread, dealt over this world.
  std::vector<SourceCursor> finishing;
};

struct SamplerState {
  int64_t step = 0;
  std::vector<SourceCursor> sources;

  std::string serialize() const;                          // a short text, stored in checkpoints
  static SamplerState deserialize(const std::string& s);  // throws std::invalid_argument
};

// Note [Finishing an epoch on another number of ranks]: a run resumed on R' ranks from a checkpoint of R
// (R' ≠ R) first reads, per source, what the R old ranks had not: for old rank r at (epoch e_r, chunk, batch)
// the rest of its epoch-e_r range (the unread batches of its current chunk and the chunks after it), then its
// whole ranges of epochs e_r+1 .. E (E = the furthest old rank's epoch). That list, old rank by old rank, is
// cut into R' contiguous parts, one per new rank, batched as usual; then epoch E+1 starts on the new world.
// So every epoch up to E reads each example exactly once over the old and the new ranks together. Not exact:
// the batches (another world cuts other chunks). A second change of world before the unread part is done
// cannot be traced this way: that source starts epoch E+1 (said in the log).
// The old ranks' states → the state every new rank restores (the same on all); `traced` false where a source
// had to start its next epoch instead.
SamplerState rescale_sampler_state(const std::vector<SamplerState>& old, bool& traced);

struct SampledBatch {
  int64_t step = 0;
  std::vector<std::pair<size_t, size_t>> items;  // (source, example index)
};

class MixingSampler {
 public:
  MixingSampler(std::vector<SamplerSource> sources, BatchLimits limits, MixMode mode, uint64_t seed, int rank,
                int world);

  SampledBatch next();
  const SamplerState& state() const { return state_; }
  void restore(const SamplerState& state);  // throws std::invalid_argument if it does not fit the sources

  // The examples this rank reads in `epoch` of `source`, in order (while finishing an epoch on another
  // number of ranks, its part of what the old ranks left).
  std::vector<size_t> shard(size_t source, int64_t epoch) const;
  // The same sampler for rank `rank` of `world`, at the start.
  MixingSampler rebased(int rank, int world) const;

 private:
  std::vector<size_t> plan(size_t source, int64_t epoch, int rank, int world) const;
  std::vector<std::vector<size_t>> make_chunk_batches(size_t source, const std::vector<size_t>& sequence, int64_t epoch,
                                                      int64_t chunk) const;
  std::vector<size_t> unread(size_t source, const SourceCursor& old, int old_rank, int old_world) const;
  void next_epoch(SourceCursor& cursor);
  size_t draw_source(uint64_t salt) const;
  std::vector<size_t> batch_of(size_t source);  // per_batch: the source's next batch, advancing its cursor
  const std::vector<std::vector<size_t>>& chunk_batches(size_t source);
  const std::vector<size_t>& current_shard(size_t source);

  std::vector<SamplerSource> sources_;
  BatchLimits limits_;
  MixMode mode_;
  uint64_t seed_;
  int rank_, world_;
  SamplerState state_;
  // Caches, rebuilt from the state on demand.
  struct Cache {
    int64_t epoch = -1, chunk = -1;
    std::vector<size_t> shard;
    std::vector<std::vector<size_t>> batches;
  };
  std::vector<Cache> cache_;
};

// A counter-based hash (splitmix64 finaliser over the inputs), the sampler's only source of randomness.
uint64_t mix_hash(uint64_t a, uint64_t b = 0, uint64_t c = 0, uint64_t d = 0);

}  // namespace vtb::data
