#include "model/nemo_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

namespace vtb::model {
namespace {

using ArchivePtr = std::unique_ptr<archive, decltype(&archive_read_free)>;

ArchivePtr new_reader() {
  ArchivePtr a(archive_read_new(), &archive_read_free);
  if (!a) throw NemoArchiveError("cannot allocate an archive reader");
  // NeMo writes plain tar ("w:"); older releases gzip ("w:gz"). Nothing else is accepted.
  archive_read_support_filter_gzip(a.get());
  archive_read_support_format_tar(a.get());
  return a;
}

std::string archive_message(archive* a) {
  const char* m = archive_error_string(a);
  return m != nullptr ? m : "unknown error";
}

// "./model_config.yaml" → "model_config.yaml"; a name that is absolute or climbs out ("../x") is refused:
// vtb never extracts, but a member with such a name is not one NeMo writes.
std::string member_name(const char* raw, const std::string& source) {
  std::string name = raw != nullptr ? raw : "";
  while (name.rfind("./", 0) == 0) name.erase(0, 2);
  std::stringstream parts(name);
  std::string part;
  bool climbs = !name.empty() && name.front() == '/';
  while (std::getline(parts, part, '/')) climbs = climbs || part == "..";
  if (climbs) throw NemoArchiveError(source + ": member '" + name + "' is outside the archive (absolute or ../)");
  return name;
}

// Memory the kernel could give this process now (MemAvailable), or -1 when it does not say.
int64_t available_memory() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  int64_t kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024;
  return -1;
}

// Compressed archives may inflate this much and no more: model weights barely compress (≈1.1×), a config
// ≈5×; 100× is a decompression bomb.
constexpr int64_t kMaxInflation = 100;

// The most a member may hold, and why: the caller's limit, the archive's own size (an uncompressed member
// cannot be larger than its archive; a compressed one not 100× larger), and the memory available now —
// all checked against the header's size before a byte is allocated.
std::pair<int64_t, std::string> member_bound(archive* a, int64_t limit, int64_t archive_bytes) {
  std::pair<int64_t, std::string> bound{limit, "allowed for it"};
  const bool compressed = archive_filter_count(a) > 1;  // the "none" filter is always there
  if (archive_bytes > 0) {
    const int64_t by_archive = compressed ? kMaxInflation * archive_bytes : archive_bytes;
    if (by_archive < bound.first)
      bound = {by_archive, compressed ? "100× the compressed archive: a decompression bomb"
                                      : "the size of the whole archive: the header is forged or corrupt"};
  }
  const int64_t memory = available_memory();
  if (memory >= 0 && memory < bound.first) bound = {memory, "the memory available on this machine now"};
  return bound;
}

template <typename Buffer>
void read_member(archive* a, archive_entry* entry, const std::string& what, int64_t limit, int64_t archive_bytes,
                 Buffer& out) {
  const auto [bound, why] = member_bound(a, limit, archive_bytes);
  limit = bound;
  if (archive_entry_size_is_set(entry) && archive_entry_size(entry) > limit)
    throw NemoArchiveError(what + " declares " + std::to_string(archive_entry_size(entry)) + " bytes, more than " +
                           std::to_string(limit) + " (" + why + ")");
  if (archive_entry_size_is_set(entry)) out.reserve(static_cast<size_t>(archive_entry_size(entry)));
  char chunk[1 << 16];
  for (;;) {
    const la_ssize_t n = archive_read_data(a, chunk, sizeof chunk);
    if (n < 0) throw NemoArchiveError(what + ": " + archive_message(a));
    if (n == 0) break;
    if (static_cast<int64_t>(out.size()) + n > limit)
      throw NemoArchiveError(what + " is more than " + std::to_string(limit) + " bytes (" + why + ")");
    out.insert(out.end(), chunk, chunk + n);
  }
}

NemoArchive read_entries(archive* a, const std::string& source, const NemoArchiveLimits& limits,
                         int64_t archive_bytes) {
  NemoArchive result;
  bool have_config = false, have_weights = false;
  archive_entry* entry = nullptr;
  int64_t members = 0;
  for (;;) {
    const int r = archive_read_next_header(a, &entry);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
      throw NemoArchiveError(source + ": not a readable .nemo (tar) archive: " + archive_message(a));
    if (++members > limits.members)
      throw NemoArchiveError(source + ": more than " + std::to_string(limits.members) + " members");
    const std::string name = member_name(archive_entry_pathname(entry), source);
    const bool regular = archive_entry_filetype(entry) == AE_IFREG;
    const bool is_config = name == "model_config.yaml", is_weights = name == "model_weights.ckpt";
    if ((is_config || is_weights) && !regular)
      throw NemoArchiveError(source + ": member " + name + " is not a regular file (a link or a device)");
    if (is_config || is_weights) {
      bool& seen = is_config ? have_config : have_weights;
      if (seen) throw NemoArchiveError(source + ": member " + name + " appears twice");
      seen = true;
    }
    const std::string what = source + ": member " + name;
    if (is_config) {
      read_member(a, entry, what, limits.config_bytes, archive_bytes, result.config_yaml);
    } else if (is_weights) {
      read_member(a, entry, what, limits.weights_bytes, archive_bytes, result.weights);
    } else {
      if (regular) result.other_members.push_back(name);
      if (archive_read_data_skip(a) != ARCHIVE_OK) throw NemoArchiveError(what + ": " + archive_message(a));
    }
  }
  if (!have_config || !have_weights)
    throw NemoArchiveError(source + ": not a NeMo model archive: it has no " +
                           (have_config ? "model_weights.ckpt" : "model_config.yaml") +
                           " (a model-parallel .nemo, with mp_rank_* folders, is not supported)");
  return result;
}

// YAML aliases share nodes: a 1.6 KB document of nested aliases is 10⁹ paths once flattened. Nothing NeMo
// writes comes near these bounds.
constexpr int64_t kMaxYamlVisits = 1'000'000;
constexpr int kMaxYamlDepth = 64;

struct FlattenBudget {
  std::string source;
  int64_t visits = 0;
};

void flatten(const YAML::Node& node, const std::string& path, std::map<std::string, std::string>& out,
             FlattenBudget& budget, int depth) {
  if (++budget.visits > kMaxYamlVisits || depth > kMaxYamlDepth)
    throw NemoArchiveError(budget.source + ": more than " +
                           (depth > kMaxYamlDepth ? std::to_string(kMaxYamlDepth) + " levels of nesting"
                                                  : std::to_string(kMaxYamlVisits) + " values") +
                           " once its aliases are expanded (at '" + path + "'); not a model config, refused");
  switch (node.Type()) {
    case YAML::NodeType::Map:
      for (const auto& kv : node)
        flatten(kv.second, path.empty() ? kv.first.Scalar() : path + "." + kv.first.Scalar(), out, budget, depth + 1);
      break;
    case YAML::NodeType::Sequence: {
      if ((budget.visits += static_cast<int64_t>(node.size())) > kMaxYamlVisits)
        throw NemoArchiveError(budget.source + ": more than " + std::to_string(kMaxYamlVisits) +
                               " values once its aliases are expanded (at '" + path +
                               "'); not a model config, refused");
      std::string text = "[";
      for (size_t i = 0; i < node.size(); ++i) {
        if (!node[i].IsScalar()) return;  // e.g. a list of layer configs: not a setting vtb compares
        text += (i ? ", " : "") + node[i].Scalar();
      }
      out[path] = text + "]";
      break;
    }
    case YAML::NodeType::Scalar:
      out[path] = node.Scalar();
      break;
    default:
      out[path] = "null";
  }
}

}  // namespace

NemoArchive read_nemo_archive(const std::string& path, const NemoArchiveLimits& limits) {
  ArchivePtr a = new_reader();
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 20) != ARCHIVE_OK)
    throw NemoArchiveError(path + ": cannot read it as a .nemo (tar) archive: " + archive_message(a.get()));
  std::error_code error;
  const auto bytes = std::filesystem::file_size(path, error);
  return read_entries(a.get(), path, limits, error ? -1 : static_cast<int64_t>(bytes));
}

NemoArchive parse_nemo_archive(const void* data, size_t size, const std::string& source,
                               const NemoArchiveLimits& limits) {
  ArchivePtr a = new_reader();
  if (archive_read_open_memory(a.get(), data, size) != ARCHIVE_OK)
    throw NemoArchiveError(source + ": " + archive_message(a.get()));
  return read_entries(a.get(), source, limits, static_cast<int64_t>(size));
}

std::map<std::string, std::string> flatten_yaml(const std::string& text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw NemoArchiveError(source + ": not valid YAML: " + e.what());
  }
  if (!root.IsMap()) throw NemoArchiveError(source + ": not a YAML mapping");
  std::map<std::string, std::string> out;
  FlattenBudget budget{source};
  flatten(root, "", out, budget, 0);
  return out;
}

}  // namespace vtb::model
