// Where this process stands among the ranks of a job: rank, world size, and its place on its node.
#pragma once

#include <string>
#include <vector>

namespace vtb::dist {

struct World {
  int rank = 0;                    // MPI_COMM_WORLD rank
  int size = 1;                    // MPI_COMM_WORLD size
  int local_rank = 0;              // rank among the processes sharing this node (MPI_COMM_TYPE_SHARED)
  int local_size = 1;              // processes on this node
  std::string host;                // this node's host name
  std::vector<std::string> hosts;  // the host of every rank, by rank
  int thread_level = 0;            // MPI thread support provided (MPI_THREAD_*)

  bool is_root() const { return rank == 0; }
};

// Initialises MPI (requesting MPI_THREAD_MULTIPLE: the communication thread and the watchdog call MPI
// beside the main thread) and finds this rank's place. Safe to call once per process; later calls
// return the same World. Throws when the launcher's local rank (OMPI_COMM_WORLD_LOCAL_RANK,
// SLURM_LOCALID) disagrees with MPI's view of the node, which means ranks were placed unexpectedly.
const World& init_world(int* argc, char*** argv);

// The World of init_world; a single-rank World when MPI was never initialised (tools, unit tests).
const World& world();

// Finalises MPI if init_world initialised it. Call once at the end of main.
void finalize_world();

// The ranks other than `w.rank`, grouped by host: "rank 1 on node2", "ranks 2-3 on node1, ranks 4-7 on
// node2" (at most 8 hosts, then a count). What a message about a collective names as the peers it waited on.
std::string peers_text(const World& w);

// Ends every rank of the job now: prints `why` on this rank, then MPI_Abort(exit_code). Never returns.
// When the launcher set VTB_ABORT_NOTICE (vtb-run does), the first rank to abort on a node also writes
// its exit code and `why` to that file first: the launcher ends the job from it when MPI_Abort cannot
// reach a lost node (Note [Ending a job across a lost link], launch/vtb-run).
[[noreturn]] void abort_job(const std::string& why, int exit_code);

// Intra-op threads for this rank: the CPUs this process may run on, divided by the number of ranks on
// this node whose CPU sets overlap it (so `mpirun --bind-to core` gives each rank its own cores, an
// unbound launch splits the node). At least 1. Collective over the node's ranks: call on every rank.
int default_intra_op_threads();

// Launcher-provided local rank: OMPI_COMM_WORLD_LOCAL_RANK, else SLURM_LOCALID, else -1.
int launcher_local_rank();

}  // namespace vtb::dist
