// Sharded sources: the epoch plan over ranks (Note [Shards over ranks]) and shard-list brace ranges.
#include <gtest/gtest.h>

#include <algorithm>
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
