// safetensors (huggingface/safetensors) reading and writing: memory-mapped, strictly validated.
//
// Layout: 8 bytes N (u64 little-endian), N bytes of JSON header, then the data buffer. The header maps
// tensor names to {"dtype", "shape", "data_offsets": [begin, end]} (offsets into the data buffer) and may
// hold "__metadata__" (string -> string). A reader must check everything: a file is untrusted input.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include "model/safetensors_header.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace vtb::model {

// A memory-mapped safetensors file. Tensors are zero-copy views that keep the mapping alive.
class SafetensorsFile {
 public:
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  const SafetensorsHeader& header() const { return header_; }
  const TensorEntry* find(const std::string& name) const;
  // Throws SafetensorsError if absent or if the dtype has no LibTorch equivalent (U16, U32, U64, F8_*).
  at::Tensor tensor(const std::string& name) const;

 private:
  SafetensorsFile() = default;
  std::string path_;
  SafetensorsHeader header_;
  std::map<std::string, size_t> index_;
  const uint8_t* data_ = nullptr;  // start of the data buffer inside the mapping
  void* mapping_ = nullptr;
  size_t mapping_bytes_ = 0;
  std::weak_ptr<SafetensorsFile> self_;
};

// Writes `tensors` (CPU, any layout; written contiguous) as the reference writer does: tensors ordered by
// descending dtype alignment then name, compact JSON with __metadata__ first, padded with spaces to a
// multiple of 8. Writes to `path`.tmp, then renames.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// `module`'s parameters (and its buffers, with `buffers`), detached and on the CPU, named `prefix` + their
// name, those `keep` accepts (by their name in `module`; no `keep` = all): what write_safetensors takes, the
// one way vtb saves a module's tensors.
std::vector<std::pair<std::string, at::Tensor>> module_tensors(
    const torch::nn::Module& module, const std::string& prefix, bool buffers,
    const std::function<bool(const std::string&)>& keep = nullptr);

// The bytes write_safetensors would write (for tests and in-memory use).
std::string serialize_safetensors(const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                                  const std::map<std::string, std::string>& metadata = {});

// All tensors of a Hugging Face model folder: model.safetensors, or the shards that
// model.safetensors.index.json names. A tensor name found in two files is an error.
class SafetensorsCheckpoint {
 public:
  static SafetensorsCheckpoint open(const std::string& dir);
  std::vector<std::string> names() const;
  const TensorEntry& entry(const std::string& name) const;
  at::Tensor tensor(const std::string& name) const;
  bool contains(const std::string& name) const { return where_.count(name) > 0; }

 private:
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;  // tensor name -> index in files_
};

}  // namespace vtb::model
