// One training job per run folder.
//
// Note [One job per run folder]: two trainings writing one run folder corrupt each other without an error
// (metrics.jsonl gets both runs' rows, `latest` names a step the other job pruned, one job's final
// checkpoint is the other's). Rank 0 holds an advisory flock(2) on <run.dir>/.lock for the job's life:
//  1. open (create) the file and try LOCK_EX | LOCK_NB;
//  2. on success write "host pid" into it (who holds it, for the refusal message) and keep the descriptor;
//  3. on EWOULDBLOCK read that line and refuse, naming the holder.
// The kernel drops the lock when the holder's process ends, however it ends (SIGKILL, node reboot for a
// local disk; for a shared one, the file system's lock recovery), so a killed or requeued job leaves no stale
// lock and its successor starts at once. flock is honoured across nodes on Lustre (mounted with -o flock),
// GPFS and NFSv4 (Linux maps it to a byte-range lock there); where a file system refuses it (ENOLCK,
// EOPNOTSUPP) the job goes on unlocked with a warning.
#pragma once

#include <stdexcept>
#include <string>

namespace vtb::ckpt {

struct RunFolderBusy : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class RunFolderLock {
 public:
  // Takes the lock on `run_dir` (created if missing) or throws RunFolderBusy naming the holder's host and PID.
  static RunFolderLock acquire(const std::string& run_dir, const std::string& host);
  RunFolderLock(RunFolderLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  RunFolderLock& operator=(RunFolderLock&&) = delete;
  RunFolderLock(const RunFolderLock&) = delete;
  ~RunFolderLock();

  static std::string file(const std::string& run_dir) { return run_dir + "/.lock"; }

 private:
  explicit RunFolderLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace vtb::ckpt
