// libFuzzer target: arbitrary bytes as one manifest line of each kind. The parser must return or throw
// ManifestError; anything else (crash, other exception, sanitizer report) is a bug.
#include <cstdint>
#include <string>

#include "data/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string line(reinterpret_cast<const char*>(data), size);
  for (auto kind : {vtb::data::SourceKind::Speech, vtb::data::SourceKind::Text, vtb::data::SourceKind::Mixed}) {
    vtb::data::ManifestOptions options;
    options.kind = kind;
    options.check_audio_exists = false;  // no file system in the loop
    vtb::data::Conversation c;
    try {
      vtb::data::parse_manifest_line(line, "/data", options, c);
    } catch (const vtb::data::ManifestError&) {
    }
  }
  return 0;
}
