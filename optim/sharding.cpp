#include "optim/sharding.h"

#include <algorithm>
#include <stdexcept>

namespace vtb::optim {

int64_t ShardLayout::owned() const {
  int64_t n = 0;
  for (const auto& p : mine) n += p.length;
  return n;
}

ShardLayout plan_shards(const std::vector<int64_t>& numel, const std::vector<std::vector<size_t>>& buckets, int world,
                        int rank) {
  if (world < 1 || rank < 0 || rank >= world) throw std::invalid_argument("plan_shards: rank outside the world");
  ShardLayout layout;
  layout.world = world;
  layout.rank = rank;
  layout.buckets = buckets;
  for (size_t b = 0; b < buckets.size(); ++b) {
    int64_t total = 0;
    for (size_t i : buckets[b]) total += numel.at(i);
    const int64_t piece = (total + world - 1) / world;
    layout.piece_numel.push_back(piece);
    const int64_t lo = piece * rank, hi = std::min(total, piece * (rank + 1));
    int64_t start = 0;  // of the parameter, in the bucket
    for (size_t i : buckets[b]) {
      const int64_t a = std::max(lo, start), z = std::min(hi, start + numel[i]);
      if (a < z) layout.mine.push_back({i, a - start, z - a, b, a - lo});
      start += numel[i];
    }
  }
  return layout;
}

}  // namespace vtb::optim
