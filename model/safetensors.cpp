#include "model/safetensors.h"

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

// The reference Dtype enum, in its order (= increasing alignment): the writer sorts by it.
struct DtypeInfo {
  const char* name;
  size_t size;
  c10::optional<at::ScalarType> torch;
};
const std::vector<DtypeInfo>& dtype_table() {
  static const std::vector<DtypeInfo> table{
      {"BOOL", 1, at::kBool},      {"U8", 1, at::kByte},    {"I8", 1, at::kChar},        {"F8_E5M2", 1, c10::nullopt},
      {"F8_E4M3", 1, c10::nullopt}, {"I16", 2, at::kShort},  {"U16", 2, c10::nullopt},    {"F16", 2, at::kHalf},
      {"BF16", 2, at::kBFloat16},  {"I32", 4, at::kInt},    {"U32", 4, c10::nullopt},    {"F32", 4, at::kFloat},
      {"F64", 8, at::kDouble},     {"I64", 8, at::kLong},   {"U64", 8, c10::nullopt}};
  return table;
}

const DtypeInfo* find_dtype(const std::string& name) {
  for (const auto& d : dtype_table())
    if (name == d.name) return &d;
  return nullptr;
}

size_t dtype_rank(const std::string& name) {
  const auto& t = dtype_table();
  for (size_t i = 0; i < t.size(); ++i)
    if (name == t[i].name) return i;
  return 0;
}

std::string dtype_of(at::ScalarType s) {
  for (const auto& d : dtype_table())
    if (d.torch && *d.torch == s) return d.name;
  throw SafetensorsError(std::string("safetensors has no dtype for LibTorch ") + at::toString(s));
}

[[noreturn]] void fail(const std::string& file, const std::string& what) {
  throw SafetensorsError(file + ": " + what);
}

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

TensorEntry parse_entry(const std::string& file, const std::string& name, const json& j) {
  auto bad = [&](const std::string& what) { fail(file, "tensor '" + name + "': " + what); };
  if (!j.is_object()) bad("entry is not a JSON object");
  for (const auto& [key, value] : j.items())
    if (key != "dtype" && key != "shape" && key != "data_offsets") bad("unexpected field '" + key + "'");
  if (!j.contains("dtype") || !j["dtype"].is_string()) bad("missing or non-string \"dtype\"");
  if (!j.contains("shape") || !j["shape"].is_array()) bad("missing or non-array \"shape\"");
  if (!j.contains("data_offsets") || !j["data_offsets"].is_array() || j["data_offsets"].size() != 2)
    bad("\"data_offsets\" must be [begin, end]");

  TensorEntry e;
  e.name = name;
  e.dtype = j["dtype"].get<std::string>();
  const DtypeInfo* info = find_dtype(e.dtype);
  if (info == nullptr) bad("unknown dtype '" + e.dtype + "'");
  uint64_t bytes = info->size;
  for (const auto& d : j["shape"]) {
    if (!d.is_number_unsigned()) bad("shape entries must be non-negative integers");
    const uint64_t n = d.get<uint64_t>();
    if (n > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(bytes, n, &bytes)) bad("shape overflows");
    e.shape.push_back(static_cast<int64_t>(n));
  }
  for (const auto& o : j["data_offsets"])
    if (!o.is_number_unsigned()) bad("data_offsets must be non-negative integers");
  e.begin = j["data_offsets"][0].get<uint64_t>();
  e.end = j["data_offsets"][1].get<uint64_t>();
  if (e.end < e.begin) bad("data_offsets end " + std::to_string(e.end) + " < begin " + std::to_string(e.begin));
  if (e.end - e.begin != bytes)
    bad("holds " + std::to_string(e.end - e.begin) + " bytes but " + e.dtype + " of its shape needs " +
        std::to_string(bytes));
  return e;
}

}  // namespace

size_t safetensors_dtype_size(const std::string& dtype) {
  const DtypeInfo* info = find_dtype(dtype);
  if (info == nullptr) throw SafetensorsError("unknown safetensors dtype '" + dtype + "'");
  return info->size;
}

SafetensorsHeader parse_safetensors_header(std::string_view text, uint64_t data_bytes, const std::string& file) {
  // Duplicate names would silently keep the last entry in the JSON library: catch them while parsing.
  std::set<std::string> seen;
  std::string duplicate;
  json::parser_callback_t on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth == 1 && event == json::parse_event_t::key && !seen.insert(parsed.get<std::string>()).second)
      duplicate = parsed.get<std::string>();
    return true;
  };
  json root;
  try {
    root = json::parse(text.begin(), text.end(), on_event);
  } catch (const json::exception& e) {
    fail(file, std::string("header is not valid JSON: ") + e.what());
  }
  if (!duplicate.empty()) fail(file, "tensor '" + duplicate + "' appears twice in the header");
  if (!root.is_object()) fail(file, "header is not a JSON object");

  SafetensorsHeader header;
  for (const auto& [name, value] : root.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) fail(file, "__metadata__ is not an object");
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string()) fail(file, "__metadata__ value of '" + k + "' is not a string");
        header.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    header.tensors.push_back(parse_entry(file, name, value));
  }

  std::sort(header.tensors.begin(), header.tensors.end(), [](const TensorEntry& a, const TensorEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected = 0;
  for (const auto& e : header.tensors) {
    if (e.begin > expected)
      fail(file, "gap in the data buffer before tensor '" + e.name + "' (bytes " + std::to_string(expected) + ".." +
                     std::to_string(e.begin) + " belong to no tensor)");
    if (e.begin < expected)
      fail(file, "tensor '" + e.name + "' overlaps the previous tensor (begins at " + std::to_string(e.begin) +
                     ", previous ends at " + std::to_string(expected) + ")");
    expected = e.end;
  }
  if (expected != data_bytes)
    fail(file, "the header describes " + std::to_string(expected) + " data bytes but the file holds " +
                   std::to_string(data_bytes) + (expected > data_bytes ? " (truncated?)" : ""));
  return header;
}

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
  f->header_ = parse_safetensors_header(std::string_view(reinterpret_cast<const char*>(bytes + 8), n), size - 8 - n, path);
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
  const DtypeInfo* info = find_dtype(e->dtype);
  if (!info->torch) fail(path_, "tensor '" + name + "' has dtype " + e->dtype + ", which LibTorch cannot represent");
  auto keep_alive = self_.lock();
  void* data = const_cast<uint8_t*>(data_ + e->begin);
  return at::from_blob(data, e->shape, [keep_alive](void*) {}, at::TensorOptions().dtype(*info->torch));
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
    const size_t ra = dtype_rank(a.dtype), rb = dtype_rank(b.dtype);
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
    out.append(static_cast<const char*>(it.data.data_ptr()), static_cast<size_t>(it.data.numel()) * it.data.element_size());
  return out;
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::string bytes = serialize_safetensors(tensors, metadata);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) fail(tmp, std::string("write failed: ") + std::strerror(errno));
  }
  std::filesystem::rename(tmp, path);
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
      if (unique.insert(file.get<std::string>()).second) files.push_back((fs::path(dir) / file.get<std::string>()).string());
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
