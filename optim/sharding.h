// Which part of the trainable parameters each rank updates when the optimizer is sharded (dist.zero = 1).
//
// Note [Optimizer shards]: the shards follow the gradient buckets, as FSDP's flat parameters do: every
// bucket (a flat run of whole parameters, Note [Bucket protocol]) is cut into `world` equal pieces of
// ceil(numel / world) elements, and rank r owns piece r of every bucket. So each rank holds AdamW moments for
// 1/world of the trainable elements (balanced to one element per bucket), a parameter may be split between
// ranks, and a rank's shard of a bucket is one contiguous range — what a reduce-scatter of that bucket
// hands each rank, so reducing gradients per bucket (ZeRO-2) can keep the same layout. A rank updates
// only its pieces (with the full averaged gradient: clipping and the non-finite skip are unchanged), then
// every bucket's pieces are all-gathered back into the full parameters. The update of an element is the
// same arithmetic on the same inputs as without shards, so parameters stay bit-identical to dist.zero = 0.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vtb::optim {

// A range of one parameter's flattened elements.
struct ShardPiece {
  size_t param = 0;    // index into the optimizer's parameter list
  int64_t offset = 0;  // first element, in the flattened parameter
  int64_t length = 0;  // elements
  size_t bucket = 0;   // the bucket it belongs to
  int64_t at = 0;      // where it starts in this rank's piece of the bucket
};

struct ShardLayout {
  int world = 1, rank = 0;
  int zero = 1;                              // dist.zero: 1 (moments sharded) or 2 (gradients too); same layout
  std::vector<std::vector<size_t>> buckets;  // parameter indices per bucket, in bucket order
  std::vector<int64_t> piece_numel;          // per bucket: ceil(bucket elements / world)
  std::vector<ShardPiece> mine;              // this rank's pieces, bucket by bucket
  int64_t owned() const;                     // elements this rank updates
};

// `numel`: elements of each parameter (optimizer order); `buckets`: the bucketer's plan (indices into numel).
ShardLayout plan_shards(const std::vector<int64_t>& numel, const std::vector<std::vector<size_t>>& buckets, int world,
                        int rank);

}  // namespace vtb::optim
