#include "data/tar_stream.h"

#include <archive.h>
#include <archive_entry.h>

#include <filesystem>
#include <regex>

namespace vtb::data {
namespace {

std::string message(archive* a) {
  const char* m = archive_error_string(a);
  return m != nullptr ? m : "unknown error";
}

}  // namespace

TarReader::TarReader(const std::string& path) : path_(path), a_(archive_read_new()) {
  if (a_ == nullptr) throw ShardError("unreadable shard", path + ": cannot allocate an archive reader");
  archive_read_support_format_tar(a_);
  archive_read_support_format_gnutar(a_);
  // Block size of 1 MiB: few large sequential reads, what a parallel file system serves well. Uncompressed
  // tars also get seeks for skipped members (archive_read_open_filename supports them).
  if (archive_read_open_filename(a_, path.c_str(), 1 << 20) != ARCHIVE_OK) {
    const std::string why = message(a_);
    archive_read_free(a_);
    a_ = nullptr;
    throw ShardError(std::filesystem::exists(path) ? "unreadable shard" : "shard missing",
                     path + ": cannot open the shard: " + why);
  }
}

TarReader::~TarReader() {
  if (a_ != nullptr) archive_read_free(a_);
}

bool TarReader::next() {
  for (;;) {
    archive_entry* entry = nullptr;
    const int r = archive_read_next_header(a_, &entry);
    if (r == ARCHIVE_EOF) return false;
    if (r < ARCHIVE_WARN)
      throw ShardError("truncated shard", path_ + ": cannot read the member after '" + name_ + "' (#" +
                                              std::to_string(ordinal_) + "): " + message(a_));
    if (archive_entry_filetype(entry) != AE_IFREG) continue;  // directories, links: not members
    const char* raw = archive_entry_pathname(entry);
    name_ = raw != nullptr ? raw : "";
    while (name_.rfind("./", 0) == 0) name_.erase(0, 2);
    size_ = archive_entry_size_is_set(entry) ? archive_entry_size(entry) : -1;
    ++ordinal_;
    return true;
  }
}

std::string TarReader::read(int64_t limit) {
  const std::string what = path_ + ": member '" + name_ + "' (#" + std::to_string(ordinal_) + ")";
  if (size_ > limit)
    throw ShardError("member too large", what + " is " + std::to_string(size_) + " bytes, more than the " +
                                             std::to_string(limit) + " allowed for one example");
  // A large declared size is checked against the shard file before the buffer is reserved; an ordinary
  // member is not, so that reading it costs no metadata lookup (what shards are for).
  if (size_ > (int64_t{64} << 20)) {
    std::error_code error;
    const auto file_bytes = std::filesystem::file_size(path_, error);
    if (!error && size_ > static_cast<int64_t>(file_bytes))
      throw ShardError("truncated shard", what + " declares " + std::to_string(size_) + " bytes, more than the " +
                                              std::to_string(file_bytes) + " of the whole shard file");
  }
  std::string out;
  if (size_ > 0) out.reserve(static_cast<size_t>(size_));
  char chunk[1 << 16];
  for (;;) {
    const la_ssize_t n = archive_read_data(a_, chunk, sizeof chunk);
    if (n < 0) throw ShardError("truncated shard", what + ": " + message(a_));
    if (n == 0) break;
    if (static_cast<int64_t>(out.size()) + n > limit)
      throw ShardError("member too large", what + " is more than the " + std::to_string(limit) + " bytes allowed");
    out.append(chunk, static_cast<size_t>(n));
  }
  if (size_ >= 0 && static_cast<int64_t>(out.size()) != size_)
    throw ShardError("truncated shard", what + ": the archive ends after " + std::to_string(out.size()) + " of its " +
                                            std::to_string(size_) + " bytes");
  return out;
}

TarWriter::TarWriter(const std::string& path) : path_(path), a_(archive_write_new()) {
  if (a_ == nullptr) throw ShardError("unwritable shard", path + ": cannot allocate an archive writer");
  archive_write_set_format_pax_restricted(a_);  // ustar unless a name needs pax: what Python's tarfile reads
  if (archive_write_open_filename(a_, (path + ".tmp").c_str()) != ARCHIVE_OK) {
    const std::string why = message(a_);
    archive_write_free(a_);
    a_ = nullptr;
    throw ShardError("unwritable shard", path + ".tmp: cannot write: " + why);
  }
}

TarWriter::~TarWriter() {
  if (a_ == nullptr) return;
  archive_write_free(a_);
  std::error_code ignored;
  std::filesystem::remove(path_ + ".tmp", ignored);
}

void TarWriter::add(const std::string& name, const std::string& bytes) {
  archive_entry* entry = archive_entry_new();
  archive_entry_set_pathname(entry, name.c_str());
  archive_entry_set_size(entry, static_cast<la_int64_t>(bytes.size()));
  archive_entry_set_filetype(entry, AE_IFREG);
  archive_entry_set_perm(entry, 0644);
  archive_entry_set_mtime(entry, 0, 0);  // reproducible shards: the same input writes the same bytes
  const int r = archive_write_header(a_, entry);
  archive_entry_free(entry);
  if (r != ARCHIVE_OK || archive_write_data(a_, bytes.data(), bytes.size()) != static_cast<la_ssize_t>(bytes.size()))
    throw ShardError("unwritable shard", path_ + ": cannot add '" + name + "': " + message(a_));
}

void TarWriter::close() {
  if (archive_write_close(a_) != ARCHIVE_OK)
    throw ShardError("unwritable shard", path_ + ".tmp: cannot finish: " + message(a_));
  archive_write_free(a_);
  a_ = nullptr;
  std::filesystem::rename(path_ + ".tmp", path_);
}

std::vector<std::string> read_text_lines(const std::string& path) {
  archive* a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_format_raw(a);
  archive_read_support_format_empty(a);
  std::vector<std::string> lines;
  std::string text;
  try {
    archive_entry* entry = nullptr;
    if (archive_read_open_filename(a, path.c_str(), 1 << 20) != ARCHIVE_OK)
      throw ShardError(std::filesystem::exists(path) ? "unreadable shard" : "shard missing",
                       path + ": cannot open: " + message(a));
    const int r = archive_read_next_header(a, &entry);
    if (r == ARCHIVE_OK) {
      char chunk[1 << 16];
      for (;;) {
        const la_ssize_t n = archive_read_data(a, chunk, sizeof chunk);
        if (n < 0) throw ShardError("truncated shard", path + ": " + message(a));
        if (n == 0) break;
        text.append(chunk, static_cast<size_t>(n));
        if (text.size() > static_cast<size_t>(kMaxMemberBytes))
          throw ShardError("member too large", path + ": more than " + std::to_string(kMaxMemberBytes) +
                                                   " bytes of text once decompressed; split the shard");
      }
    } else if (r != ARCHIVE_EOF) {
      throw ShardError("unreadable shard", path + ": " + message(a));
    }
  } catch (...) {
    archive_read_free(a);
    throw;
  }
  archive_read_free(a);
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

void write_gzip_file(const std::string& path, const std::string& text) {
  archive* a = archive_write_new();
  archive_write_add_filter_gzip(a);
  archive_write_set_format_raw(a);
  archive_write_set_filter_option(a, "gzip", "timestamp", nullptr);  // reproducible bytes: no mtime in the header
  const std::string tmp = path + ".tmp";
  archive_entry* entry = archive_entry_new();
  archive_entry_set_pathname(entry, "data");
  archive_entry_set_filetype(entry, AE_IFREG);
  archive_entry_set_size(entry, static_cast<la_int64_t>(text.size()));
  const bool ok = archive_write_open_filename(a, tmp.c_str()) == ARCHIVE_OK &&
                  archive_write_header(a, entry) == ARCHIVE_OK &&
                  archive_write_data(a, text.data(), text.size()) == static_cast<la_ssize_t>(text.size()) &&
                  archive_write_close(a) == ARCHIVE_OK;
  const std::string why = ok ? "" : message(a);
  archive_entry_free(entry);
  archive_write_free(a);
  if (!ok) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw ShardError("unwritable shard", path + ": cannot write: " + why);
  }
  std::filesystem::rename(tmp, path);
}

std::vector<std::string> expand_braces(const std::string& pattern) {
  static const std::regex range(R"(\{(\d+)\.\.(\d+)\}|_OP_(\d+)\.\.(\d+)_CL_)");
  std::smatch m;
  if (!std::regex_search(pattern, m, range)) return {pattern};
  const bool nemo = m[3].matched;
  const std::string first = nemo ? m[3].str() : m[1].str(), last = nemo ? m[4].str() : m[2].str();
  const long lo = std::stol(first), hi = std::stol(last);
  if (hi < lo || hi - lo > 10'000'000)
    throw std::invalid_argument("'" + pattern + "': the range " + first + ".." + last + " is empty or absurd");
  const size_t width = first.size() > 1 && first[0] == '0' ? first.size() : 0;  // {000..010}: keep the padding
  std::vector<std::string> out;
  for (long i = lo; i <= hi; ++i) {
    std::string number = std::to_string(i);
    if (number.size() < width) number.insert(0, width - number.size(), '0');
    for (auto& rest : expand_braces(m.suffix().str())) out.push_back(m.prefix().str() + number + rest);
  }
  return out;
}

}  // namespace vtb::data
