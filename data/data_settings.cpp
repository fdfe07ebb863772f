#include "data/data_settings.h"

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
    Manifest m = read_manifest(src.manifest, o);
    if (m.examples.empty())
      throw std::runtime_error("source '" + src.name + "' (" + src.manifest + ") has no usable examples");
    out.push_back({src.name, src.weight, std::move(m.examples)});
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
