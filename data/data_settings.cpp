#include "data/data_settings.h"

#include "data/sharded_source.h"

#include <stdexcept>
#include <utility>

namespace vtb::data {

std::vector<LoaderSource> read_sources(const DataSettings& s, std::optional<Task> only) {
  std::vector<LoaderSource> out;
  for (const auto& src : s.sources) {
    if (only && src.task != *only) continue;
    ManifestOptions o;
    o.kind = source_kind(src.task);
    o.default_prompt = src.prompt;
    o.skip_bad_lines = s.skip_bad_lines;
    o.min_duration = s.min_duration;
    o.max_duration = s.max_duration;
    LoaderSource loaded{src.name, src.weight, {}, nullptr};
    if (const auto sharded = sharded_location(src.manifest)) {
      ShardedManifest m = read_sharded_manifest(sharded->first, sharded->second, o);
      loaded.examples = std::move(m.examples);
      loaded.shards = std::make_shared<const ShardIndex>(std::move(m.index));
    } else {
      loaded.examples = read_manifest(src.manifest, o).examples;
    }
    if (loaded.examples.empty())
      throw std::runtime_error("source '" + src.name + "' (" + src.manifest + ") has no usable examples");
    out.push_back(std::move(loaded));
  }
  if (out.empty() && only) {
    std::string kind;
    for (const auto& [name, task] : kTasks)
      if (task == *only) kind = name;
    throw std::runtime_error("no data.source of kind " + kind + " to learn from");
  }
  if (out.empty()) throw std::runtime_error("no data sources: give at least one data.source");
  return out;
}

}  // namespace vtb::data
