// Tensors and attributes in HDF5 files, as checkpoints store them (docs/design.md §6): every dataset chunked with
// the fletcher32 checksum filter, so a flipped byte fails the read of that dataset; bfloat16 (which HDF5
// lacks) stored as uint16 with a "dtype" attribute. HDF5 attributes have no checksum, so each attribute vtb
// writes also has a copy in a checksummed dataset, /checksummed/<object>/<key>, that every read compares
// it with. Readable by h5dump and h5py.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace vtb::ckpt {

inline constexpr const char* kChecksummedGroup = "/checksummed";
// The dataset holding the checksummed copy of attribute `object`@`key`.
std::string checksummed_copy(const std::string& object, const std::string& key);

struct Hdf5Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Hdf5Writer {
 public:
  explicit Hdf5Writer(const std::string& path);  // creates (truncates)
  ~Hdf5Writer();
  Hdf5Writer(const Hdf5Writer&) = delete;
  Hdf5Writer& operator=(const Hdf5Writer&) = delete;

  // `name` is an absolute path such as "/model/encoder.layers.0.conv.batch_norm.weight"; groups are
  // created as needed. CPU or GPU tensors of float32, float64, bfloat16, int64.
  void write(const std::string& name, const at::Tensor& t);
  // Attributes on a group or dataset (created if it is a group that does not exist yet).
  void attribute(const std::string& object, const std::string& key, const std::string& value);
  void attribute(const std::string& object, const std::string& key, int64_t value);
  void attribute(const std::string& object, const std::string& key, double value);
  void close();  // flushes; errors surface here rather than in the destructor

 private:
  void write_copy(const std::string& object, const std::string& key, const at::Tensor& value);

  std::string path_;
  int64_t file_ = -1;
};

class Hdf5Reader {
 public:
  explicit Hdf5Reader(const std::string& path);
  ~Hdf5Reader();
  Hdf5Reader(const Hdf5Reader&) = delete;
  Hdf5Reader& operator=(const Hdf5Reader&) = delete;

  bool exists(const std::string& name) const;
  bool has_attribute(const std::string& object, const std::string& key) const;  // false also without `object`
  std::vector<std::string> datasets(const std::string& group = "/") const;      // absolute paths, recursive, sorted
  // Reads and checks the dataset (fletcher32); throws Hdf5Error naming file and dataset on corruption.
  at::Tensor read(const std::string& name) const;
  // Attributes, each compared with its checksummed copy (Hdf5Error naming it when they differ). A file
  // without copies (format 1) is read as it is: checksummed_metadata() says which.
  bool checksummed_metadata() const;
  std::string string_attribute(const std::string& object, const std::string& key) const;
  int64_t int_attribute(const std::string& object, const std::string& key) const;
  double real_attribute(const std::string& object, const std::string& key) const;

 private:
  void check_copy(const std::string& object, const std::string& key, const at::Tensor& value) const;

  std::string path_;
  int64_t file_ = -1;
};

}  // namespace vtb::ckpt
