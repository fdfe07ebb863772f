#include "ckpt/commit.h"

#include <ATen/ATen.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace vtb::ckpt {
namespace {

namespace fs = std::filesystem;

void fsync_path(const fs::path& p) {
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;  // best effort: some file systems refuse directory fds
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

std::string checkpoint_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step_%08lld", static_cast<long long>(step));
  return buf;
}

std::string commit_checkpoint(dist::Communicator& comm, const std::string& run_dir, int64_t step, int keep_last,
                              const std::function<void(const std::string& folder)>& write) {
  const fs::path run(run_dir);
  const fs::path final_dir = run / checkpoint_name(step);
  const fs::path tmp_dir = run / (checkpoint_name(step) + ".tmp");
  // 1.
  std::string error;
  if (comm.rank() == 0) {
    try {
      fs::create_directories(run);
      fs::remove_all(tmp_dir);
      fs::create_directories(tmp_dir);
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  if (dist::any_rank(comm, !error.empty()))
    throw std::runtime_error("checkpoint " + tmp_dir.string() + ": rank 0 could not prepare the folder" +
                             (error.empty() ? "" : ": " + error));
  // 2.
  try {
    write(tmp_dir.string());
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (dist::any_rank(comm, !error.empty()))
    throw std::runtime_error("checkpoint step " + std::to_string(step) + " not committed: writing failed on " +
                             (error.empty() ? "another rank" : "rank " + std::to_string(comm.rank()) + ": " + error));
  // 3.
  if (comm.rank() == 0) {
    try {
      for (const auto& f : fs::directory_iterator(tmp_dir)) fsync_path(f.path());
      fsync_path(tmp_dir);
      fs::remove_all(final_dir);  // a step committed before, e.g. by a run that went back in time
      fs::rename(tmp_dir, final_dir);
      {
        std::ofstream latest(run / "latest.tmp");
        latest << checkpoint_name(step) << "\n";
        latest.flush();
        if (!latest) throw std::runtime_error("cannot write " + (run / "latest.tmp").string());
      }
      fsync_path(run / "latest.tmp");
      fs::rename(run / "latest.tmp", run / "latest");
      fsync_path(run);
      std::vector<fs::path> committed;
      for (const auto& e : fs::directory_iterator(run)) {
        const std::string name = e.path().filename().string();
        if (e.is_directory() && name.rfind("step_", 0) == 0 && name.find(".tmp") == std::string::npos)
          committed.push_back(e.path());
      }
      std::sort(committed.begin(), committed.end());
      for (size_t i = 0; keep_last > 0 && i + static_cast<size_t>(keep_last) < committed.size(); ++i)
        fs::remove_all(committed[i]);
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  // 4.
  if (dist::any_rank(comm, !error.empty()))
    throw std::runtime_error("checkpoint step " + std::to_string(step) + ": commit failed on rank 0" +
                             (error.empty() ? "" : ": " + error));
  return final_dir.string();
}

std::string latest_checkpoint(const std::string& run_dir) {
  const fs::path latest = fs::path(run_dir) / "latest";
  if (!fs::exists(latest)) return "";
  std::ifstream in(latest);
  std::string name;
  std::getline(in, name);
  // Only a committed folder of this run: step_ and 8 digits, no path (`../other/step_N` would resume another
  // run's checkpoint and prune into it).
  const bool well_formed =
      name.size() >= 13 && name.rfind("step_", 0) == 0 && name.find_first_not_of("0123456789", 5) == std::string::npos;
  if (!well_formed)
    throw std::runtime_error(
        latest.string() + " names '" + name + "', which is not a checkpoint of this run folder " +
        "(step_ and 8 or more digits); `latest` may only name a step_N folder beside it. Fix it by hand or " +
        "remove it to start afresh");
  const fs::path dir = fs::path(run_dir) / name;
  if (!fs::is_directory(dir))
    throw std::runtime_error(latest.string() + " names '" + name + "', which is not a checkpoint folder in " + run_dir);
  return dir.string();
}

}  // namespace vtb::ckpt
