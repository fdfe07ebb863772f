// Speech corpora kept as tar shards (docs/design.md §4, README "Sharded data"): the three layouts their
// writers make, read into the same Conversations a JSONL manifest gives, with each example's audio named as a
// member of a shard instead of a file.
//
//   nemo_tarred  NeMo's convert_to_tarred_audio_dataset.py: audio_<k>.tar, and either
//                sharded_manifests/manifest_<k>.json or one tarred_audio_manifest.json with "shard_id".
//                audio_filepath is a member name; tar order is not manifest order (matched by name); entries
//                "<stem>-subN<ext>" share the member "<stem><ext>" (each with its own offset and duration).
//   lhotse_shar  CutSet.to_shar: cuts.<6 digits>.jsonl[.gz] beside recording.<6 digits>.tar, the i-th cut's
//                audio the i-th data member "<cut id>.<ext>" (then "<cut id>.json"); supervisions carry the text.
//   webdataset   tars of members grouped by the key before the first dot: "<key>.flac" + "<key>.json" (fields
//                "answer" or "text", "duration", "context"/"question") or "<key>.txt" (the answer).
//
// A source's location is a directory or brace-expanded shard paths ("audio_{0..511}.tar").
//
// Note [Metadata up front, audio streamed]: indexing reads the manifests, the cuts files and (for NeMo tarred
// and WebDataset) the tar headers — never the audio, except WebDataset audio whose json has no duration —
// so the sampler knows every example's cost before the first step, exactly as for a JSONL manifest, and can
// plan an epoch as a pure function of the seed. The audio is then read shard by shard, in the plan's order,
// by ShardStream (shard_stream.h).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "data/manifest.h"

namespace vtb::data {

enum class ShardLayout { NemoTarred, LhotseShar, WebDataset };
inline constexpr std::array<std::pair<std::string_view, ShardLayout>, 3> kShardLayouts{
    {{"nemo_tarred", ShardLayout::NemoTarred},
     {"lhotse_shar", ShardLayout::LhotseShar},
     {"webdataset", ShardLayout::WebDataset}}};

// data.source's MANIFEST "LAYOUT:LOCATION" ("lhotse_shar:/data/shar"); nullopt for a JSONL manifest path.
std::optional<std::pair<ShardLayout, std::string>> sharded_location(const std::string& manifest);

// Where an example's audio sits: the `ordinal`-th regular member of shard `shard`, named `name` (Lhotse Shar:
// the name up to its extension, which the index does not know before reading).
struct ShardMember {
  int32_t shard = 0;
  int64_t ordinal = 0;
  std::string name;
};

struct ShardIndex {
  ShardLayout layout = ShardLayout::WebDataset;
  std::vector<std::string> paths;    // the tar shards
  std::vector<int64_t> sizes;        // examples per shard: examples are numbered shard by shard, in tar order
  std::vector<ShardMember> members;  // per example; ordinals ascend within a shard
  // Regular members each shard must hold, checked when a rank reads to a shard's end (Lhotse Shar: two per
  // cut line, so a tar with more or fewer cuts than its cuts file is an error); -1 where the index read them.
  std::vector<int64_t> expected_members;
};

struct ShardedManifest {
  ShardIndex index;
  std::vector<Conversation> examples;
  ManifestStats stats;
};

// Reads a sharded source's metadata. Problems (a shard listed but absent, a manifest entry with no member, a
// member with no entry, a bad cut line) are errors naming the file, line or member, or — with
// options.skip_bad_lines — skipped and counted in stats.skipped by reason. Throws ManifestError.
ShardedManifest read_sharded_manifest(ShardLayout layout, const std::string& location, const ManifestOptions& options);

}  // namespace vtb::data
