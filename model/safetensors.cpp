#include "model/safetensors.h"

#include "io/atomic_file.h"

#include <ATen/ATen.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace vtb::model {
namespace {

using nlohmann::json;

// safetensors dtypes LibTorch can hold; the others (U16, U32, U64, F8_*) parse but do not load.
const std::pair<const char*, at::ScalarType> kTorchDtypes[] = {
    {"BOOL", at::kBool},     {"U8", at::kByte}, {"I8", at::kChar},   {"I16", at::kShort},  {"F16", at::kHalf},
    {"BF16", at::kBFloat16}, {"I32", at::kInt}, {"F32", at::kFloat}, {"F64", at::kDouble}, {"I64", at::kLong}};

c10::optional<at::ScalarType> torch_dtype(const std::string& name) {
  for (const auto& [n, t] : kTorchDtypes)
    if (name == n) return t;
  return c10::nullopt;
}

std::string dtype_of(at::ScalarType s) {
  for (const auto& [n, t] : kTorchDtypes)
    if (t == s) return n;
  throw SafetensorsError(std::string("safetensors has no dtype for LibTorch ") + at::toString(s));
}

[[noreturn]] void fail(const std::string& file, const std::string& what) { throw SafetensorsError(file + ": " + what); }

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    fail(path, std::string("cannot stat: ") + std::strerror(errno));
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    fail(path, "only " + std::to_string(size) + " bytes: not a safetensors file (needs an 8-byte header length)");
  }
  // Private writable mapping: views can be modified in place without touching the file.
  void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (base == MAP_FAILED) fail(path, std::string("cannot mmap: ") + std::strerror(errno));

  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile);
  f->path_ = path;
  f->mapping_ = base;
  f->mapping_bytes_ = size;
  f->self_ = f;
  const auto* bytes = static_cast<const uint8_t*>(base);
  const uint64_t n = read_u64_le(bytes);
  if (n > kMaxSafetensorsHeader || n > size - 8)
    fail(path, "header length " + std::to_string(n) + " is impossible for a file of " + std::to_string(size) +
                   " bytes (limit " + std::to_string(kMaxSafetensorsHeader) + ")");
  f->header_ =
      parse_safetensors_header(std::string_view(reinterpret_cast<const char*>(bytes + 8), n), size - 8 - n, path);
  f->data_ = bytes + 8 + n;
  for (size_t i = 0; i < f->header_.tensors.size(); ++i) f->index_[f->header_.tensors[i].name] = i;
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_ != nullptr) munmap(mapping_, mapping_bytes_);
}

const TensorEntry* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

at::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const TensorEntry* e = find(name);
  if (e == nullptr) fail(path_, "no tensor named '" + name + "'");
  const auto dtype = torch_dtype(e->dtype);
  if (!dtype) fail(path_, "tensor '" + name + "' has dtype " + e->dtype + ", which LibTorch cannot represent");
  auto keep_alive = self_.lock();
  void* data = const_cast<uint8_t*>(data_ + e->begin);
  return at::from_blob(
      data, e->shape, [keep_alive](void*) {}, at::TensorOptions().dtype(*dtype));
}

std::string serialize_safetensors(const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  struct Item {
    std::string name, dtype;
    at::Tensor data;
  };
  std::vector<Item> items;
  std::set<std::string> names;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__" || !names.insert(name).second)
      throw SafetensorsError("cannot write tensor name '" + name + "' (reserved or given twice)");
    items.push_back({name, dtype_of(t.scalar_type()), t.detach().to(at::kCPU).contiguous()});
  }
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    const size_t ra = safetensors_dtype_rank(a.dtype), rb = safetensors_dtype_rank(b.dtype);
    return ra != rb ? ra > rb : a.name < b.name;
  });

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& it : items) {
    const uint64_t bytes = static_cast<uint64_t>(it.data.numel()) * it.data.element_size();
    nlohmann::ordered_json entry;
    entry["dtype"] = it.dtype;
    entry["shape"] = it.data.sizes().vec();
    entry["data_offsets"] = {offset, offset + bytes};
    header[it.name] = entry;
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');

  std::string out;
  out.reserve(8 + text.size() + offset);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((text.size() >> (8 * i)) & 0xff));
  out += text;
  for (const auto& it : items)
    out.append(static_cast<const char*>(it.data.data_ptr()),
               static_cast<size_t>(it.data.numel()) * it.data.element_size());
  return out;
}

std::vector<std::pair<std::string, at::Tensor>> module_tensors(const torch::nn::Module& module,
                                                               const std::string& prefix, bool buffers,
                                                               const std::function<bool(const std::string&)>& keep) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& p : module.named_parameters())
    if (!keep || keep(p.key())) out.emplace_back(prefix + p.key(), p.value().detach().cpu());
  if (buffers)
    for (const auto& b : module.named_buffers())
      if (!keep || keep(b.key())) out.emplace_back(prefix + b.key(), b.value().detach().cpu());
  return out;
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  io::write_file_atomically(path, serialize_safetensors(tensors, metadata));
}

SafetensorsCheckpoint SafetensorsCheckpoint::open(const std::string& dir) {
  namespace fs = std::filesystem;
  SafetensorsCheckpoint ckpt;
  std::vector<std::string> files;
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  std::map<std::string, std::string> weight_map;
  if (fs::is_regular_file(dir)) {
    files.push_back(dir);
  } else if (fs::exists(index)) {
    std::ifstream in(index);
    json j;
    try {
      j = json::parse(in);
    } catch (const json::exception& e) {
      fail(index.string(), std::string("not valid JSON: ") + e.what());
    }
    if (!j.contains("weight_map") || !j["weight_map"].is_object()) fail(index.string(), "no \"weight_map\" object");
    std::set<std::string> unique;
    for (const auto& [name, file] : j["weight_map"].items()) {
      if (!file.is_string()) fail(index.string(), "weight_map entry '" + name + "' is not a file name");
      weight_map[name] = file.get<std::string>();
      if (unique.insert(file.get<std::string>()).second)
        files.push_back((fs::path(dir) / file.get<std::string>()).string());
    }
  } else if (fs::exists(fs::path(dir) / "model.safetensors")) {
    files.push_back((fs::path(dir) / "model.safetensors").string());
  } else {
    fail(dir, "no model.safetensors or model.safetensors.index.json here");
  }
  for (const auto& f : files) {
    ckpt.files_.push_back(SafetensorsFile::open(f));
    for (const auto& e : ckpt.files_.back()->header().tensors) {
      if (ckpt.where_.count(e.name))
        fail(f, "tensor '" + e.name + "' also appears in " + ckpt.files_[ckpt.where_[e.name]]->path());
      ckpt.where_[e.name] = ckpt.files_.size() - 1;
    }
  }
  for (const auto& [name, file] : weight_map) {
    auto it = ckpt.where_.find(name);
    if (it == ckpt.where_.end() || fs::path(ckpt.files_[it->second]->path()).filename() != file)
      fail(index.string(), "weight_map says tensor '" + name + "' is in " + file + ", but it is not there");
  }
  return ckpt;
}

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> out;
  for (const auto& [name, i] : where_) out.push_back(name);
  return out;
}

const TensorEntry& SafetensorsCheckpoint::entry(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) throw SafetensorsError("no tensor named '" + name + "' in the checkpoint");
  return *files_[it->second]->find(name);
}

at::Tensor SafetensorsCheckpoint::tensor(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) throw SafetensorsError("no tensor named '" + name + "' in the checkpoint");
  return files_[it->second]->tensor(name);
}

}  // namespace vtb::model
