// One rank's reading of a sharded source, in the order the sampler planned (Note [Shards over ranks]).
//
// Note [Reading shards in plan order]: the sampler hands out examples in a bounded shuffle of the rank's
// sequence (one chunk at a time), so the stream reads that sequence forward — one tar open, members read
// in order, skipped ones passed by their headers — and keeps each member's bytes until its example is taken.
// What it holds is bounded by the chunk (data.bucket_window examples) and the batches in flight. A resume
// seeks to the chunk's first position: the shard is opened and the members before it are skipped by header,
// none of their audio read or decoded. Errors are kept with the example they concern (the builder applies
// data.on_error); a truncated shard fails every later member of that shard without reopening it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/sharded_source.h"
#include "data/tar_stream.h"

namespace vtb::data {

struct MemberBytes {
  std::shared_ptr<const std::string> bytes;  // null when the member could not be read
  std::string where;                         // "shard.tar: member 'x.flac'"
  std::string error, reason;                 // why not (ShardError's message and reason)
};

class ShardStream {
 public:
  using Sequence = std::function<std::vector<size_t>(int64_t epoch)>;  // the rank's examples of an epoch
  ShardStream(std::shared_ptr<const ShardIndex> index, Sequence sequence);

  // The next read is `position` of `epoch`'s sequence; what is held is dropped.
  void seek(int64_t epoch, int64_t position);
  // Reads forward until `example` has been read (moving on to the next epoch at the end of a sequence) and
  // hands over its bytes. Each example is taken once per epoch, in any order within the read-ahead.
  MemberBytes take(size_t example);
  size_t held() const { return held_.size(); }

 private:
  void read_next();
  MemberBytes read_member(size_t example);

  std::shared_ptr<const ShardIndex> index_;
  Sequence sequence_;
  std::vector<int64_t> first_;  // first example of each shard
  int64_t epoch_ = 0;
  std::vector<size_t> order_;
  size_t next_ = 0;
  std::unique_ptr<TarReader> tar_;
  int32_t tar_shard_ = -1;
  MemberBytes last_;  // the member read last: NeMo entries "-subN" share one
  int32_t last_shard_ = -1;
  int64_t last_ordinal_ = -1;
  std::map<int32_t, ShardError> broken_;  // shard → the error that ended it
  std::unordered_map<size_t, MemberBytes> held_;
};

}  // namespace vtb::data
