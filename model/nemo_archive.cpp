#include "model/nemo_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <yaml-cpp/yaml.h>

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

template <typename Buffer>
void read_member(archive* a, archive_entry* entry, const std::string& what, int64_t limit, Buffer& out) {
  if (archive_entry_size_is_set(entry) && archive_entry_size(entry) > limit)
    throw NemoArchiveError(what + " is " + std::to_string(archive_entry_size(entry)) + " bytes, more than the " +
                           std::to_string(limit) + " allowed");
  if (archive_entry_size_is_set(entry)) out.reserve(static_cast<size_t>(archive_entry_size(entry)));
  char chunk[1 << 16];
  for (;;) {
    const la_ssize_t n = archive_read_data(a, chunk, sizeof chunk);
    if (n < 0) throw NemoArchiveError(what + ": " + archive_message(a));
    if (n == 0) break;
    if (static_cast<int64_t>(out.size()) + n > limit)
      throw NemoArchiveError(what + " is more than the " + std::to_string(limit) + " bytes allowed");
    out.insert(out.end(), chunk, chunk + n);
  }
}

NemoArchive read_entries(archive* a, const std::string& source, const NemoArchiveLimits& limits) {
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
      read_member(a, entry, what, limits.config_bytes, result.config_yaml);
    } else if (is_weights) {
      read_member(a, entry, what, limits.weights_bytes, result.weights);
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

void flatten(const YAML::Node& node, const std::string& path, std::map<std::string, std::string>& out) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      for (const auto& kv : node)
        flatten(kv.second, path.empty() ? kv.first.Scalar() : path + "." + kv.first.Scalar(), out);
      break;
    case YAML::NodeType::Sequence: {
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
  return read_entries(a.get(), path, limits);
}

NemoArchive parse_nemo_archive(const void* data, size_t size, const std::string& source,
                               const NemoArchiveLimits& limits) {
  ArchivePtr a = new_reader();
  if (archive_read_open_memory(a.get(), data, size) != ARCHIVE_OK)
    throw NemoArchiveError(source + ": " + archive_message(a.get()));
  return read_entries(a.get(), source, limits);
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
  flatten(root, "", out);
  return out;
}

}  // namespace vtb::model
