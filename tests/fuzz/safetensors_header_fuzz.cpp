// libFuzzer target: arbitrary bytes as a safetensors file's header region. The parser must either
// accept or throw SafetensorsError; anything else (crash, other exception, sanitizer report) is a bug.
#include <cstdint>
#include <string_view>

#include "model/safetensors_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];
  if (n > size - 8 || n > vtb::model::kMaxSafetensorsHeader) return 0;  // rejected before parsing, as open() does
  try {
    vtb::model::parse_safetensors_header(std::string_view(reinterpret_cast<const char*>(data + 8), n), size - 8 - n,
                                         "fuzz-input");
  } catch (const vtb::model::SafetensorsError&) {
  }
  return 0;
}
