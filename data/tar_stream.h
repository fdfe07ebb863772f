// Tar shards read and written one member at a time through libarchive: nothing is extracted to disk, and
// only the member being read is in memory.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

struct archive;

namespace vtb::data {

// A shard that cannot be read as it should. `reason` groups problems for data.on_error = skip, like
// AudioError's ("truncated shard", "member missing", ...); the message names the shard file and member.
struct ShardError : std::runtime_error {
  ShardError(std::string reason, const std::string& message) : std::runtime_error(message), reason(std::move(reason)) {}
  std::string reason;
};

// No audio member is this large (≈ 9 hours of 16-bit 16 kHz PCM): a bigger one is a broken header or a
// memory bomb, refused before it is read.
constexpr int64_t kMaxMemberBytes = int64_t{1} << 30;

class TarReader {
 public:
  explicit TarReader(const std::string& path);  // throws ShardError naming the file
  ~TarReader();
  TarReader(const TarReader&) = delete;
  TarReader& operator=(const TarReader&) = delete;

  // Moves to the next regular member; false at the end of the archive. The current member's data, unread,
  // is skipped (a seek in an uncompressed tar: no bytes of it are read).
  bool next();
  const std::string& name() const { return name_; }  // "./" prefixes removed
  int64_t size() const { return size_; }
  int64_t ordinal() const { return ordinal_; }  // 0 for the first regular member
  const std::string& path() const { return path_; }

  // The current member's bytes; ShardError when it is larger than `limit` or the archive ends inside it.
  std::string read(int64_t limit = kMaxMemberBytes);

 private:
  std::string path_, name_;
  int64_t size_ = 0, ordinal_ = -1;
  archive* a_ = nullptr;
};

// Writes a POSIX tar to `path` + ".tmp" and renames it to `path` on close(): a shard is whole or absent.
class TarWriter {
 public:
  explicit TarWriter(const std::string& path);
  ~TarWriter();  // an unclosed writer removes its .tmp file
  TarWriter(const TarWriter&) = delete;
  TarWriter& operator=(const TarWriter&) = delete;

  void add(const std::string& name, const std::string& bytes);
  void close();

 private:
  std::string path_;
  archive* a_ = nullptr;
};

// The lines of a text file, gzip-compressed or plain (libarchive tells them apart by content).
std::vector<std::string> read_text_lines(const std::string& path);

// Writes `text` gzip-compressed to `path`, whole or not at all.
void write_gzip_file(const std::string& path, const std::string& text);

// Shell-style numeric brace ranges, as WebDataset, Lhotse and NeMo write shard lists: "audio_{0..3}.tar" →
// audio_0.tar … audio_3.tar; "{000..010}" keeps the zero padding; NeMo's "_OP_0..3_CL_" is the same range.
// Several ranges multiply. A pattern without braces is itself.
std::vector<std::string> expand_braces(const std::string& pattern);

}  // namespace vtb::data
