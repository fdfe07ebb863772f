#include "ckpt/run_lock.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace vtb::ckpt {

RunFolderLock RunFolderLock::acquire(const std::string& run_dir, const std::string& host) {
  std::filesystem::create_directories(run_dir);
  const std::string path = file(run_dir);
  // 1.
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(path + ": cannot open the run folder's lock file: " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    if (error == EWOULDBLOCK) {  // 3.
      std::string holder;
      std::getline(std::ifstream(path), holder);
      ::close(fd);
      throw RunFolderBusy("run.dir " + run_dir + " is in use by another training job (" +
                          (holder.empty() ? std::string("holder unknown") : "host and PID " + holder) + "; its lock " +
                          path +
                          " is held). One job per run folder (Note [One job per run "
                          "folder]): wait for it to end, or give this job another run.dir");
    }
    ::close(fd);
    if (error == ENOLCK || error == EOPNOTSUPP || error == ENOSYS) {
      spdlog::warn("{}: the file system does not support flock ({}); this job runs without the run folder lock", path,
                   std::strerror(error));
      return RunFolderLock(-1);
    }
    throw std::runtime_error(path + ": cannot lock the run folder: " + std::strerror(error));
  }
  // 2.
  const std::string line = host + " " + std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, line.data(), line.size(), 0) != static_cast<ssize_t>(line.size()))
    spdlog::warn("{}: could not record this job's host and PID in the lock file: {}", path, std::strerror(errno));
  return RunFolderLock(fd);
}

RunFolderLock::~RunFolderLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock; the file stays (removing it would race with a waiting job)
}

}  // namespace vtb::ckpt
