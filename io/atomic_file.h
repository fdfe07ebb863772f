// Writing an output file whole or not at all: every file vtb writes outside a checkpoint (results, exports,
// safetensors, .npy, logs rewritten on resume) goes through here, so a full disk or a read-only mount is an
// error naming the file and the cause, never a 0-byte file and an exit 0.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

namespace vtb::io {

struct WriteError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Writes `bytes` to `path`.tmp, flushes it to the disk (fsync), renames it over `path`. On any failure
// removes the .tmp, leaves an existing `path` as it was, and throws WriteError: "<path>: cannot write:
// No space left on device".
inline void write_file_atomically(const std::string& path, std::string_view bytes) {
  const std::string tmp = path + ".tmp";
  auto fail = [&](int fd) {
    const int error = errno;
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw WriteError(path + ": cannot write: " + std::strerror(error));
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(-1);
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail(fd);
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) fail(fd);
  if (::close(fd) != 0) fail(-1);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail(-1);
}

}  // namespace vtb::io
