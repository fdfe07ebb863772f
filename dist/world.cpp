#include "dist/world.h"

#include <mpi.h>
#include <sched.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <utility>
#include <vector>

namespace vtb::dist {
namespace {

World g_world;
bool g_we_initialised_mpi = false;
std::once_flag g_init_once;

int env_int(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return -1;
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  return (end != nullptr && *end == '\0' && x >= 0) ? static_cast<int>(x) : -1;
}

std::string host_name() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown-host";
  return buf;
}

void find_place(World& w) {
  MPI_Comm_rank(MPI_COMM_WORLD, &w.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &w.size);
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, w.rank, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &w.local_rank);
  MPI_Comm_size(node, &w.local_size);
  MPI_Comm_free(&node);
  w.host = host_name();
  // Every rank's host, for messages that name peers: fixed-size names, one allgather at start.
  constexpr int kName = 256;
  std::vector<char> mine(kName, '\0'), all(static_cast<size_t>(kName) * w.size, '\0');
  w.host.copy(mine.data(), kName - 1);
  MPI_Allgather(mine.data(), kName, MPI_CHAR, all.data(), kName, MPI_CHAR, MPI_COMM_WORLD);
  for (int r = 0; r < w.size; ++r) w.hosts.emplace_back(all.data() + static_cast<size_t>(r) * kName);

  // The launcher's view must match MPI's: a mismatch means ranks were not placed the way the
  // launcher reports (e.g. several job steps sharing a node), and one-GPU-per-rank would collide.
  const int launcher = launcher_local_rank();
  int bad = (launcher >= 0 && launcher != w.local_rank) ? 1 : 0;
  int any_bad = 0;
  MPI_Allreduce(&bad, &any_bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (any_bad != 0) {
    throw std::runtime_error(
        "rank " + std::to_string(w.rank) + " on " + w.host + ": the launcher says local rank " +
        std::to_string(launcher) + " (OMPI_COMM_WORLD_LOCAL_RANK / SLURM_LOCALID) but MPI counts " +
        std::to_string(w.local_rank) + " of " + std::to_string(w.local_size) +
        " on this node. Launch one job step per node set (mpirun or srun --mpi=pmix), not nested launchers.");
  }
}

}  // namespace

int launcher_local_rank() {
  int r = env_int("OMPI_COMM_WORLD_LOCAL_RANK");
  return r >= 0 ? r : env_int("SLURM_LOCALID");
}

const World& init_world(int* argc, char*** argv) {
  std::call_once(g_init_once, [&] {
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) {
      MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &g_world.thread_level);
      g_we_initialised_mpi = true;
    } else {
      MPI_Query_thread(&g_world.thread_level);
    }
    // Errors in MPI calls come back as codes we turn into messages, instead of MPI's default abort.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    find_place(g_world);
  });
  return g_world;
}

const World& world() { return g_world; }

void finalize_world() {
  int finalised = 0;
  MPI_Finalized(&finalised);
  if (g_we_initialised_mpi && !finalised) MPI_Finalize();
}

std::string peers_text(const World& w) {
  // Hosts in the order of their first rank; each host's other ranks as ranges.
  std::vector<std::pair<std::string, std::vector<int>>> by_host;
  for (int r = 0; r < static_cast<int>(w.hosts.size()); ++r) {
    if (r == w.rank) continue;
    auto it = std::find_if(by_host.begin(), by_host.end(), [&](const auto& h) { return h.first == w.hosts[r]; });
    if (it == by_host.end()) it = by_host.insert(by_host.end(), {w.hosts[r], {}});
    it->second.push_back(r);
  }
  if (by_host.empty()) return "no other rank";
  constexpr size_t kMaxHosts = 8;
  std::string text;
  for (size_t h = 0; h < std::min(by_host.size(), kMaxHosts); ++h) {
    const auto& ranks = by_host[h].second;
    std::string list;
    for (size_t i = 0; i < ranks.size();) {
      size_t j = i;
      while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
      list += (list.empty() ? "" : ",") + std::to_string(ranks[i]) + (j > i ? "-" + std::to_string(ranks[j]) : "");
      i = j + 1;
    }
    text += (text.empty() ? "" : ", ") + std::string(ranks.size() == 1 ? "rank " : "ranks ") + list + " on " +
            by_host[h].first;
  }
  if (const size_t more = by_host.size() - std::min(by_host.size(), kMaxHosts); more > 0)
    text += " and " + std::to_string(more) + (more == 1 ? " more host" : " more hosts");
  return text;
}

namespace {

// Note [Ending a job across a lost link]
// MPI_Abort asks the launcher to kill every rank. When a link or a node is gone, mpirun's order to the
// daemon on the far side is a TCP segment that is never acknowledged: mpirun waits for TCP's
// retransmission timeout (net.ipv4.tcp_retries2, about 15 minutes by default; keepalives do not run while
// data is unacknowledged), long after every vtb rank has ended on its own watchdog. So the first rank to
// abort on a node leaves a notice where the launcher on that node looks (VTB_ABORT_NOTICE, set by
// vtb-run), and vtb-run ends mpirun a grace period later with the rank's exit code. Srun needs no notice:
// slurmstepd reports each task's exit to srun, which ends the step (--kill-on-bad-exit).
void leave_abort_notice(const std::string& why, int exit_code) {
  const char* path = std::getenv("VTB_ABORT_NOTICE");
  if (path == nullptr || *path == '\0') return;
  const std::string tmp = std::string(path) + "." + std::to_string(getpid());
  if (FILE* f = std::fopen(tmp.c_str(), "w")) {
    std::fprintf(f, "%d\n%s\n", exit_code, why.c_str());
    std::fclose(f);
    [[maybe_unused]] const int linked = link(tmp.c_str(), path);  // fails when one exists: the first stays
    unlink(tmp.c_str());
  }
}

}  // namespace

void abort_job(const std::string& why, int exit_code) {
  leave_abort_notice(why, exit_code);
  spdlog::critical("{}", why);
  spdlog::default_logger()->flush();
  std::fflush(stdout);
  std::fflush(stderr);
  int initialised = 0, finalised = 0;
  MPI_Initialized(&initialised);
  MPI_Finalized(&finalised);
  if (initialised && !finalised) MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);
}

int default_intra_op_threads() {
  cpu_set_t mine;
  CPU_ZERO(&mine);
  if (sched_getaffinity(0, sizeof mine, &mine) != 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return std::max(1L, n / std::max(1, g_world.local_size));
  }
  const int my_cpus = CPU_COUNT(&mine);
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised || g_world.local_size <= 1) return std::max(1, my_cpus);

  // Count the ranks on this node whose CPU sets overlap ours: they share our cores.
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_world.rank, MPI_INFO_NULL, &node);
  std::vector<cpu_set_t> all(static_cast<size_t>(g_world.local_size));
  MPI_Allgather(&mine, sizeof mine, MPI_BYTE, all.data(), sizeof mine, MPI_BYTE, node);
  MPI_Comm_free(&node);
  int sharing = 0;
  for (auto& other : all) {
    cpu_set_t both;
    CPU_AND(&both, &mine, &other);
    if (CPU_COUNT(&both) > 0) ++sharing;
  }
  return std::max(1, my_cpus / std::max(1, sharing));
}

}  // namespace vtb::dist
