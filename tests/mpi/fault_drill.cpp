// Fault drills: a real multi-rank job that goes wrong in one way, so a test can check the job ends
// with the documented message within the deadline instead of hanging.
//
//   mpirun -np 2 fault_drill <mode> <timeout_s>
//   modes: param-mismatch  rank 1 builds a differently shaped parameter
//          skip-collective rank 1 skips the 4th allreduce and goes on with other work
//          kill-rank       rank 1 is killed with SIGKILL before the 4th allreduce
//          stop-rank       rank 1 is stopped with SIGSTOP (a hung process) before the 4th allreduce
#include <signal.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "dist/exit_codes.h"
#include "dist/gradient_bucketer.h"
#include "dist/world.h"
#include "launch/logging.h"

using namespace vtb;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: fault_drill param-mismatch|skip-collective|kill-rank|stop-rank TIMEOUT_S\n");
    return kExitUsage;
  }
  const std::string mode = argv[1];
  const auto& w = dist::init_world(&argc, &argv);
  setup_logging(w.rank, "info", /*all_ranks=*/true);
  torch::set_num_threads(1);
  auto comm = dist::make_communicator("cpu", {std::atof(argv[2])});

  if (mode == "param-mismatch") {
    torch::Tensor w1 = torch::zeros({w.rank == 1 ? 5 : 4, 8}, torch::requires_grad());
    torch::Tensor w2 = torch::zeros({8}, torch::requires_grad());
    try {
      dist::GradientBucketer bucketer({{"adapter.proj.weight", w1}, {"adapter.proj.bias", w2}}, *comm);
    } catch (const dist::PeerMismatchError& e) {
      spdlog::error("{}", e.what());  // what vtb's main does for this error
      comm.reset();
      dist::finalize_world();
      return kExitPeerMismatch;
    }
    spdlog::error("the mismatch went unnoticed");
    return kExitError;
  }

  for (int step = 1; step <= 6; ++step) {
    if (w.rank == 1 && step == 4) {
      if (mode == "kill-rank") raise(SIGKILL);
      if (mode == "stop-rank") raise(SIGSTOP);
      if (mode == "skip-collective") {
        spdlog::warn("skipping allreduce {} and doing something else", step);
        std::this_thread::sleep_for(std::chrono::hours(1));
      }
    }
    torch::Tensor t = torch::ones({1 << 16});
    comm->allreduce(t, dist::ReduceOp::Sum);
    spdlog::info("step {} allreduce done", step);
  }
  spdlog::error("drill '{}' finished although rank 1 misbehaved", mode);
  return kExitError;
}
