// vtb data shard: a speech manifest (JSONL + loose audio files) written as tar shards in one of the three
// layouts vtb reads (sharded_source.h), in the manifest's order, `shard_size` examples per shard. The last
// shard holds the remainder (vtb's reader, Lhotse's and WebDataset's take uneven shards; NeMo's legacy
// `scatter` reader wants equal ones — choose a shard size that divides the manifest for it). Audio bytes are
// copied as they are (no re-encoding); every file is written whole or not at all.
#pragma once

#include <cstdint>
#include <string>

#include "data/sharded_source.h"

namespace vtb::data {

struct ShardWriteReport {
  int64_t shards = 0, examples = 0, bytes = 0;
};

// Throws ManifestError naming manifest:line for a line that is not a speech example or whose audio is a slice
// (offset > 0) of a longer file, which only nemo_tarred keeps (its entries carry offsets).
ShardWriteReport write_shards(ShardLayout layout, const std::string& manifest, const std::string& out_dir,
                              int64_t shard_size);

}  // namespace vtb::data
