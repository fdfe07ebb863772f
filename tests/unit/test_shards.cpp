// Sharded sources: the epoch plan over ranks (Note [Shards over ranks]) and shard-list brace ranges.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <set>

#include "data/mixing_sampler.h"
#include "data/tar_stream.h"

namespace vtb::data {
namespace {

MixingSampler sharded_sampler(const std::vector<int64_t>& shards, int rank, int world) {
  SamplerSource s{"s", 1, {}, shards};
  s.costs.assign(static_cast<size_t>(std::accumulate(shards.begin(), shards.end(), int64_t{0})), ExampleCost{1, 10});
  return MixingSampler({s}, BatchLimits{0, 0, 4, 8}, MixMode::PerBatch, 7, rank, world);
}

// Every example exactly once per epoch over the ranks, counts within one of each other, each rank's part made
// of whole runs of shards in tar order — for uneven shards and for fewer shards than ranks.
TEST(ShardedEpoch, EveryExampleOncePerEpochOverRanks) {
  for (const std::vector<int64_t>& shards : std::vector<std::vector<int64_t>>{
           {7, 7, 7, 7, 7, 7, 7, 7, 4}, {24, 1, 17, 3, 15}, {60}, {2, 3}, {1, 1, 1, 1, 1, 1, 1}}) {
    const int64_t n = std::accumulate(shards.begin(), shards.end(), int64_t{0});
    for (int world : {1, 2, 3, 5}) {
      if (world > n) continue;
      for (int64_t epoch : {0, 1}) {
        std::vector<size_t> all;
        size_t smallest = SIZE_MAX, largest = 0;
        for (int r = 0; r < world; ++r) {
          const auto mine = sharded_sampler(shards, r, world).shard(0, epoch);
          smallest = std::min(smallest, mine.size());
          largest = std::max(largest, mine.size());
          for (size_t i = 1; i < mine.size(); ++i)  // within a shard, tar order: consecutive indices
            if (mine[i] != mine[i - 1] + 1) {
              int64_t boundary = 0;  // a jump only where a shard ends
              bool at_end = false;
              for (int64_t size : shards) at_end |= static_cast<int64_t>(mine[i - 1]) + 1 == (boundary += size);
              EXPECT_TRUE(at_end) << "rank " << r << " jumps inside a shard at " << mine[i - 1];
            }
          all.insert(all.end(), mine.begin(), mine.end());
        }
        std::sort(all.begin(), all.end());
        std::vector<size_t> expected(static_cast<size_t>(n));
        std::iota(expected.begin(), expected.end(), 0);
        EXPECT_EQ(all, expected) << shards.size() << " shards, " << world << " ranks, epoch " << epoch;
        EXPECT_LE(largest - smallest, 1U);
      }
    }
  }
}

TEST(ShardedEpoch, ShardOrderChangesWithTheEpoch) {
  const std::vector<int64_t> shards(20, 5);
  EXPECT_NE(sharded_sampler(shards, 0, 1).shard(0, 0), sharded_sampler(shards, 0, 1).shard(0, 1));
  EXPECT_EQ(sharded_sampler(shards, 0, 2).shard(0, 3), sharded_sampler(shards, 0, 2).shard(0, 3));
}

TEST(ShardedEpoch, ShardedSourceNeedsABucketWindow) {
  SamplerSource s{"s", 1, std::vector<ExampleCost>(4, ExampleCost{1, 1}), {2, 2}};
  EXPECT_THROW(MixingSampler({s}, BatchLimits{0, 0, 2, 0}, MixMode::PerBatch, 1, 0, 1), std::invalid_argument);
  s.shard_sizes = {2, 3};
  EXPECT_THROW(MixingSampler({s}, BatchLimits{0, 0, 2, 8}, MixMode::PerBatch, 1, 0, 1), std::invalid_argument);
}

TEST(BraceRanges, AsShellsAndNemoWriteThem) {
  EXPECT_EQ(expand_braces("a/audio_{0..2}.tar"),
            (std::vector<std::string>{"a/audio_0.tar", "a/audio_1.tar", "a/audio_2.tar"}));
  EXPECT_EQ(expand_braces("shard-{008..010}.tar"),
            (std::vector<std::string>{"shard-008.tar", "shard-009.tar", "shard-010.tar"}));
  EXPECT_EQ(expand_braces("audio__OP_1..2_CL_.tar"), (std::vector<std::string>{"audio_1.tar", "audio_2.tar"}));
  EXPECT_EQ(expand_braces("{0..1}/{0..1}").size(), 4U);
  EXPECT_EQ(expand_braces("plain.tar"), std::vector<std::string>{"plain.tar"});
  EXPECT_THROW(expand_braces("x{3..1}"), std::invalid_argument);
}

}  // namespace
}  // namespace vtb::data

namespace vtb::data {
namespace {

// Note [Finishing an epoch on another number of ranks]: R ranks take K batches each, a job of R' ranks resumes
// from their states; what the old ranks took plus what the new ones take until the epoch after the furthest old
// rank's begins is every example of those epochs exactly as often as there are epochs — none lost, none twice.
void check_finishing(const std::vector<int64_t>& shards, size_t examples, MixMode mode, int old_world, int new_world,
                     int64_t steps) {
  SamplerSource s{"s", 1, std::vector<ExampleCost>(examples), shards};
  for (size_t i = 0; i < examples; ++i) s.costs[i] = ExampleCost{1.0 + static_cast<double>(i % 7), 10};
  // per_sample: one example per batch, so that no batch spans the end of the epoch being counted.
  const BatchLimits limits{0, 0, mode == MixMode::PerSample ? 1 : 3, 8};
  std::map<size_t, int> seen;
  std::vector<SamplerState> old;
  int64_t last_epoch = 0;
  for (int r = 0; r < old_world; ++r) {
    MixingSampler m({s}, limits, mode, 11, r, old_world);
    for (int64_t k = 0; k < steps; ++k)
      for (const auto& item : m.next().items) ++seen[item.second];
    old.push_back(m.state());
    last_epoch = std::max(last_epoch, m.state().sources[0].epoch);
  }
  bool traced = false;
  const SamplerState resumed = rescale_sampler_state(old, traced);
  ASSERT_TRUE(traced);
  for (int r = 0; r < new_world; ++r) {
    MixingSampler m({s}, limits, mode, 11, r, new_world);
    m.restore(resumed);
    while (m.state().sources[0].epoch <= last_epoch)
      for (const auto& item : m.next().items) ++seen[item.second];
  }
  ASSERT_EQ(seen.size(), examples) << "examples never read";
  for (const auto& [example, times] : seen)
    ASSERT_EQ(times, last_epoch + 1) << "example " << example << " over " << last_epoch + 1 << " epochs, " << old_world
                                     << " → " << new_world << " ranks after " << steps << " steps";
}

TEST(ShardedEpoch, ResumeOnAnotherNumberOfRanksFinishesTheEpoch) {
  for (MixMode mode : {MixMode::PerBatch, MixMode::PerSample})
    for (const auto& [old_world, new_world] : std::vector<std::pair<int, int>>{{2, 3}, {3, 2}, {1, 4}, {4, 1}})
      for (int64_t steps : {0, 1, 2, 5, 9, 23}) {
        check_finishing({24, 1, 17, 3, 15}, 60, mode, old_world, new_world, steps);  // shards
        check_finishing({}, 61, mode, old_world, new_world, steps);                  // a JSONL source
      }
}

TEST(ShardedEpoch, StateWithOldCursorsRoundTrips) {
  SamplerState s{7,
                 {SourceCursor{3, 1, 2, 0, 40, {SourceCursor{2, 4, 1, 0, 0, {}}, SourceCursor{3, 0, 0, 5, 0, {}}}},
                  SourceCursor{1, 0, 0, 0, 9, {}}}};
  const SamplerState back = SamplerState::deserialize(s.serialize());
  EXPECT_EQ(back.serialize(), s.serialize());
  ASSERT_EQ(back.sources[0].finishing.size(), 2U);
  EXPECT_EQ(back.sources[0].finishing[1].position, 5);
  EXPECT_EQ(SamplerState{}.serialize().substr(0, 2), "v1");  // what checkpoints without old cursors still say
}

}  // namespace
}  // namespace vtb::data
