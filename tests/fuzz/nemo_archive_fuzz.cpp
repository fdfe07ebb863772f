// libFuzzer target: arbitrary bytes as a .nemo file. The reader must accept them or throw its own error
// (NemoArchiveError, PickleError); model_config.yaml goes through the YAML flattening and
// model_weights.ckpt, and the input itself, through the pickle rewrite that precedes LibTorch's unpickler.
// Anything else (crash, other exception, sanitizer report) is a bug.
#include <cstdint>
#include <string_view>

#include "model/nemo_archive.h"
#include "model/pickle_rewrite.h"

namespace {

void rewrite(std::string_view bytes) {
  try {
    vtb::model::plain_dicts(bytes);
  } catch (const vtb::model::PickleError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rewrite(std::string_view(reinterpret_cast<const char*>(data), size));
  vtb::model::NemoArchiveLimits limits;
  limits.weights_bytes = 1 << 20;  // bounded like the real limits, small enough for the fuzzer's memory
  limits.config_bytes = 1 << 16;
  try {
    const auto archive = vtb::model::parse_nemo_archive(data, size, "fuzz-input", limits);
    vtb::model::flatten_yaml(archive.config_yaml, "fuzz-input");
    rewrite(std::string_view(archive.weights.data(), archive.weights.size()));
  } catch (const vtb::model::NemoArchiveError&) {
  }
  return 0;
}
