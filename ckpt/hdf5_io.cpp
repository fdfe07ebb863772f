#include "ckpt/hdf5_io.h"

#include <ATen/ATen.h>
#include <hdf5.h>

#include <algorithm>
#include <filesystem>

namespace vtb::ckpt {
namespace {

// HDF5 prints its own error stack by default; vtb turns failures into messages instead. A thread-safe HDF5
// (Debian's is) keeps that setting per thread, so each thread that opens a file (the background
// checkpoint writer too) turns it off for itself.
void quiet() {
  // Once, before HDF5 initialises: no clean-up at exit. HDF5's atexit handler closes every file still open,
  // and crashes on one whose close failed (a full disk); vtb closes each file it opens itself.
  static const bool no_atexit = [] { return H5dont_atexit() >= 0; }();
  (void)no_atexit;
  thread_local bool done = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)done;
}

[[noreturn]] void fail(const std::string& path, const std::string& what) { throw Hdf5Error(path + ": " + what); }

struct Handle {  // closes an HDF5 id with the right function
  hid_t id;
  herr_t (*close)(hid_t);
  ~Handle() {
    if (id >= 0) close(id);
  }
};

hid_t file_type(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return H5T_IEEE_F32LE;
    case at::kDouble:
      return H5T_IEEE_F64LE;
    case at::kLong:
      return H5T_STD_I64LE;
    case at::kBFloat16:
      return H5T_STD_U16LE;
    case at::kByte:
      return H5T_STD_U8LE;
    default:
      throw Hdf5Error(std::string("checkpoint: unsupported dtype ") + at::toString(t));
  }
}

hid_t memory_type(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return H5T_NATIVE_FLOAT;
    case at::kDouble:
      return H5T_NATIVE_DOUBLE;
    case at::kLong:
      return H5T_NATIVE_INT64;
    case at::kBFloat16:
      return H5T_NATIVE_UINT16;
    case at::kByte:
      return H5T_NATIVE_UINT8;
    default:
      throw Hdf5Error(std::string("checkpoint: unsupported dtype ") + at::toString(t));
  }
}

hid_t open_object(hid_t file, const std::string& path, const std::string& name) {
  hid_t id = H5Oopen(file, name.c_str(), H5P_DEFAULT);
  if (id < 0) fail(path, "no object '" + name + "'");
  return id;
}

void write_attribute(hid_t file, const std::string& path, const std::string& object, const std::string& key, hid_t type,
                     const void* value) {
  if (H5Lexists(file, object.c_str(), H5P_DEFAULT) <= 0 && object != "/") {
    Handle lcpl{H5Pcreate(H5P_LINK_CREATE), H5Pclose};
    H5Pset_create_intermediate_group(lcpl.id, 1);
    Handle g{H5Gcreate2(file, object.c_str(), lcpl.id, H5P_DEFAULT, H5P_DEFAULT), H5Gclose};
    if (g.id < 0) fail(path, "cannot create group '" + object + "'");
  }
  Handle obj{open_object(file, path, object), H5Oclose};
  if (H5Aexists(obj.id, key.c_str()) > 0) H5Adelete(obj.id, key.c_str());
  Handle space{H5Screate(H5S_SCALAR), H5Sclose};
  Handle attr{H5Acreate2(obj.id, key.c_str(), type, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
  if (attr.id < 0 || H5Awrite(attr.id, type, value) < 0) fail(path, "cannot write attribute " + object + "@" + key);
}

bool link_exists(hid_t file, const std::string& name) {
  // Check each prefix: H5Lexists fails when an intermediate group is missing.
  size_t pos = 0;
  while ((pos = name.find('/', pos + 1)) != std::string::npos)
    if (H5Lexists(file, name.substr(0, pos).c_str(), H5P_DEFAULT) <= 0) return false;
  return H5Lexists(file, name.c_str(), H5P_DEFAULT) > 0;
}

void write_string_attribute(hid_t file, const std::string& path, const std::string& object, const std::string& key,
                            const std::string& value) {
  Handle type{H5Tcopy(H5T_C_S1), H5Tclose};  // fixed-length, null-terminated UTF-8
  H5Tset_size(type.id, value.size() + 1);
  H5Tset_cset(type.id, H5T_CSET_UTF8);
  write_attribute(file, path, object, key, type.id, value.c_str());
}

// A string's bytes and a terminating 0 (so that no copy is empty: a chunked dataset needs an element).
at::Tensor string_bytes(const std::string& value) {
  at::Tensor t = at::zeros({static_cast<int64_t>(value.size()) + 1}, at::kByte);
  std::copy(value.begin(), value.end(), t.data_ptr<uint8_t>());
  return t;
}

}  // namespace

std::string checksummed_copy(const std::string& object, const std::string& key) {
  return std::string(kChecksummedGroup) + (object == "/" ? "" : object) + "/" + key;
}

Hdf5Writer::Hdf5Writer(const std::string& path) : path_(path) {
  quiet();
  file_ = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (file_ < 0) fail(path, "cannot create HDF5 file");
}

Hdf5Writer::~Hdf5Writer() {
  if (file_ >= 0) H5Fclose(file_);
}

void Hdf5Writer::close() {
  if (file_ < 0) return;
  // Close even when the flush failed, so that no file stays open; then say why the bytes did not land.
  const bool flushed = H5Fflush(file_, H5F_SCOPE_GLOBAL) >= 0;
  const bool closed = H5Fclose(file_) >= 0;
  file_ = -1;
  if (flushed && closed) return;
  std::error_code ec;
  const auto space = std::filesystem::space(std::filesystem::path(path_).parent_path(), ec);
  if (!ec && space.available < (1u << 20))
    fail(path_,
         "cannot write the file: its file system is full (" + std::to_string(space.available / 1024) + " KiB left)");
  fail(path_, "flush/close failed");
}

void Hdf5Writer::write(const std::string& name, const at::Tensor& tensor) {
  at::Tensor t = tensor.detach().to(at::kCPU).contiguous();
  std::vector<hsize_t> dims(t.sizes().begin(), t.sizes().end());
  Handle space{
      dims.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
      H5Sclose};
  Handle dcpl{H5Pcreate(H5P_DATASET_CREATE), H5Pclose};
  if (!dims.empty()) {
    // Chunks of at most ~16 MiB along the first dimension; fletcher32 needs a chunked layout.
    std::vector<hsize_t> chunk(dims);
    for (auto& c : chunk) c = std::max<hsize_t>(c, 1);
    hsize_t row_bytes = static_cast<hsize_t>(t.element_size());
    for (size_t i = 1; i < chunk.size(); ++i) row_bytes *= chunk[i];
    chunk[0] = std::max<hsize_t>(1, std::min<hsize_t>(chunk[0], (hsize_t{16} << 20) / std::max<hsize_t>(row_bytes, 1)));
    H5Pset_chunk(dcpl.id, static_cast<int>(chunk.size()), chunk.data());
    H5Pset_fletcher32(dcpl.id);
  }
  Handle lcpl{H5Pcreate(H5P_LINK_CREATE), H5Pclose};
  H5Pset_create_intermediate_group(lcpl.id, 1);
  Handle ds{H5Dcreate2(file_, name.c_str(), file_type(t.scalar_type()), space.id, lcpl.id, dcpl.id, H5P_DEFAULT),
            H5Dclose};
  if (ds.id < 0) fail(path_, "cannot create dataset '" + name + "'");
  if (t.numel() > 0 && H5Dwrite(ds.id, memory_type(t.scalar_type()), H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()) < 0)
    fail(path_, "cannot write dataset '" + name + "'");
  if (t.scalar_type() == at::kBFloat16) write_string_attribute(file_, path_, name, "dtype", "bfloat16");
}

void Hdf5Writer::write_copy(const std::string& object, const std::string& key, const at::Tensor& value) {
  const std::string name = checksummed_copy(object, key);
  if (link_exists(file_, name)) H5Ldelete(file_, name.c_str(), H5P_DEFAULT);  // an attribute written again
  write(name, value);
}

void Hdf5Writer::attribute(const std::string& object, const std::string& key, const std::string& value) {
  write_string_attribute(file_, path_, object, key, value);
  write_copy(object, key, string_bytes(value));
}

void Hdf5Writer::attribute(const std::string& object, const std::string& key, int64_t value) {
  write_attribute(file_, path_, object, key, H5T_NATIVE_INT64, &value);
  write_copy(object, key, at::full({1}, value, at::kLong));
}

void Hdf5Writer::attribute(const std::string& object, const std::string& key, double value) {
  write_attribute(file_, path_, object, key, H5T_NATIVE_DOUBLE, &value);
  write_copy(object, key, at::full({1}, value, at::kDouble));
}

Hdf5Reader::Hdf5Reader(const std::string& path) : path_(path) {
  quiet();
  file_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file_ < 0) fail(path, "cannot open as HDF5 (missing, truncated or not HDF5)");
}

Hdf5Reader::~Hdf5Reader() {
  if (file_ >= 0) H5Fclose(file_);
}

bool Hdf5Reader::exists(const std::string& name) const { return link_exists(file_, name); }

bool Hdf5Reader::has_attribute(const std::string& object, const std::string& key) const {
  if (object != "/" && !link_exists(file_, object)) return false;
  return H5Aexists_by_name(file_, object.c_str(), key.c_str(), H5P_DEFAULT) > 0;
}

std::vector<std::string> Hdf5Reader::datasets(const std::string& group) const {
  struct Walk {
    std::string prefix;
    std::vector<std::string> out;
  } walk{group == "/" ? "/" : group + "/", {}};
  Handle g{open_object(file_, path_, group), H5Oclose};
  // The visit API changed in HDF5 1.12 (H5O_info2_t); Debian 12 ships 1.10.
#if H5_VERSION_GE(1, 12, 0)
  auto visit = [](hid_t, const char* name, const H5O_info2_t* info, void* data) -> herr_t {
#else
  auto visit = [](hid_t, const char* name, const H5O_info_t* info, void* data) -> herr_t {
#endif
    auto* w = static_cast<Walk*>(data);
    if (info->type == H5O_TYPE_DATASET) w->out.push_back(w->prefix + name);
    return 0;
  };
#if H5_VERSION_GE(1, 12, 0)
  H5Ovisit3(g.id, H5_INDEX_NAME, H5_ITER_INC, visit, &walk, H5O_INFO_BASIC);
#else
  H5Ovisit2(g.id, H5_INDEX_NAME, H5_ITER_INC, visit, &walk, H5O_INFO_BASIC);
#endif
  std::sort(walk.out.begin(), walk.out.end());
  return walk.out;
}

at::Tensor Hdf5Reader::read(const std::string& name) const {
  Handle ds{H5Dopen2(file_, name.c_str(), H5P_DEFAULT), H5Dclose};
  if (ds.id < 0) fail(path_, "no dataset '" + name + "'");
  Handle space{H5Dget_space(ds.id), H5Sclose};
  const int rank = H5Sget_simple_extent_ndims(space.id);
  std::vector<hsize_t> dims(static_cast<size_t>(std::max(rank, 0)));
  H5Sget_simple_extent_dims(space.id, dims.data(), nullptr);
  Handle type{H5Dget_type(ds.id), H5Tclose};
  at::ScalarType st;
  const bool bf16 = H5Aexists(ds.id, "dtype") > 0;
  if (H5Tequal(type.id, H5T_IEEE_F32LE) > 0)
    st = at::kFloat;
  else if (H5Tequal(type.id, H5T_IEEE_F64LE) > 0)
    st = at::kDouble;
  else if (H5Tequal(type.id, H5T_STD_I64LE) > 0)
    st = at::kLong;
  else if (H5Tequal(type.id, H5T_STD_U16LE) > 0 && bf16)
    st = at::kBFloat16;
  else if (H5Tequal(type.id, H5T_STD_U8LE) > 0)
    st = at::kByte;
  else
    fail(path_, "dataset '" + name + "' has a type vtb does not store");
  at::Tensor t = at::empty(std::vector<int64_t>(dims.begin(), dims.end()), at::TensorOptions().dtype(st));
  if (t.numel() > 0 && H5Dread(ds.id, memory_type(st), H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()) < 0)
    fail(path_, "dataset '" + name + "' is corrupt (fletcher32 checksum or read error)");
  return t;
}

std::string Hdf5Reader::string_attribute(const std::string& object, const std::string& key) const {
  Handle obj{open_object(file_, path_, object), H5Oclose};
  Handle attr{H5Aopen(obj.id, key.c_str(), H5P_DEFAULT), H5Aclose};
  if (attr.id < 0) fail(path_, "no attribute " + object + "@" + key);
  Handle type{H5Aget_type(attr.id), H5Tclose};
  std::string value(H5Tget_size(type.id), '\0');
  Handle mem{H5Tcopy(H5T_C_S1), H5Tclose};
  H5Tset_size(mem.id, value.size());
  H5Tset_cset(mem.id, H5Tget_cset(type.id));
  if (H5Aread(attr.id, mem.id, value.data()) < 0) fail(path_, "cannot read attribute " + object + "@" + key);
  value.erase(value.find_last_not_of('\0') + 1);
  check_copy(object, key, string_bytes(value));
  return value;
}

bool Hdf5Reader::checksummed_metadata() const { return link_exists(file_, kChecksummedGroup); }

void Hdf5Reader::check_copy(const std::string& object, const std::string& key, const at::Tensor& value) const {
  if (!checksummed_metadata()) return;  // written before format 2: attributes as they are
  const std::string name = checksummed_copy(object, key);
  if (!link_exists(file_, name)) fail(path_, "attribute " + object + "@" + key + " has no checksummed copy " + name);
  if (!at::equal(read(name), value))
    fail(path_,
         "attribute " + object + "@" + key + " differs from its checksummed copy " + name + ": the file is damaged");
}

namespace {

template <typename T>
T numeric_attribute(hid_t file, const std::string& path, const std::string& object, const std::string& key, hid_t type,
                    const char* kind) {
  Handle obj{open_object(file, path, object), H5Oclose};
  Handle attr{H5Aopen(obj.id, key.c_str(), H5P_DEFAULT), H5Aclose};
  T v{};
  if (attr.id < 0 || H5Aread(attr.id, type, &v) < 0)
    fail(path, std::string("no ") + kind + " attribute " + object + "@" + key);
  return v;
}

}  // namespace

int64_t Hdf5Reader::int_attribute(const std::string& object, const std::string& key) const {
  const auto v = numeric_attribute<int64_t>(file_, path_, object, key, H5T_NATIVE_INT64, "integer");
  check_copy(object, key, at::full({1}, v, at::kLong));
  return v;
}

double Hdf5Reader::real_attribute(const std::string& object, const std::string& key) const {
  const auto v = numeric_attribute<double>(file_, path_, object, key, H5T_NATIVE_DOUBLE, "real");
  check_copy(object, key, at::full({1}, v, at::kDouble));
  return v;
}

}  // namespace vtb::ckpt
