// A NeMo checkpoint (.nemo): a tar archive (optionally gzip-compressed) holding model_config.yaml and
// model_weights.ckpt (a torch.save zip of the state dict), besides tokenizer files vtb does not use.
// The archive is untrusted input: members are read into memory by name, never extracted, and every size
// is bounded. Free of LibTorch so that the libFuzzer target (tests/fuzz) builds without it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace vtb::model {

struct NemoArchiveError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct NemoArchiveLimits {
  int64_t config_bytes = 16 << 20;            // model_config.yaml
  int64_t weights_bytes = int64_t{64} << 30;  // model_weights.ckpt
  int64_t members = 100000;                   // entries in the archive
};

struct NemoArchive {
  std::string config_yaml;    // model_config.yaml
  std::vector<char> weights;  // model_weights.ckpt, as stored
  std::vector<std::string> other_members;
};

// Reads a .nemo file; errors name the file and the member.
NemoArchive read_nemo_archive(const std::string& path, const NemoArchiveLimits& limits = {});
// The same from bytes in memory; `source` names them in errors.
NemoArchive parse_nemo_archive(const void* data, size_t size, const std::string& source,
                               const NemoArchiveLimits& limits = {});

// model_config.yaml's scalars by dotted path ("encoder.d_model" → "512"); a sequence of scalars is
// written "[-1, -1]", a null "null". Mappings inside sequences are left out. Errors name `source`.
std::map<std::string, std::string> flatten_yaml(const std::string& text, const std::string& source);

}  // namespace vtb::model
