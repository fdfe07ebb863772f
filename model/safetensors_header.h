// The safetensors header: parsing and validation, with no LibTorch dependency (so the fuzzer can
// build it alone). See safetensors.h for the file format.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace vtb::model {

struct SafetensorsError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct TensorEntry {
  std::string name;
  std::string dtype;  // as in the file: "F32", "BF16", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // offsets into the data buffer
  uint64_t end = 0;
};

struct SafetensorsHeader {
  std::vector<TensorEntry> tensors;  // in data order
  std::map<std::string, std::string> metadata;
};

constexpr uint64_t kMaxSafetensorsHeader = 100'000'000;  // as the reference implementation

// Bytes per element of a safetensors dtype; throws SafetensorsError for an unknown dtype.
size_t safetensors_dtype_size(const std::string& dtype);

// Position of `dtype` in the reference Dtype enum (increasing alignment), for the writer's ordering.
size_t safetensors_dtype_rank(const std::string& dtype);

// Parses and validates a header: JSON object; no duplicate names; known dtypes; non-negative shapes;
// offsets contiguous from 0 without gaps or overlaps; end - begin = elements × dtype size; the last end
// equals `data_bytes`. Errors name `file` and the tensor.
SafetensorsHeader parse_safetensors_header(std::string_view json, uint64_t data_bytes, const std::string& file);

}  // namespace vtb::model
