// main() for GoogleTest programs run under mpirun: every rank runs every test; the job fails if any
// rank failed. A collective that hangs because ranks diverged is ended by the watchdog (60 s).
#include <gtest/gtest.h>
#include <mpi.h>
#include <torch/torch.h>

#include "dist/world.h"
#include "tests/mpi/mpi_main.h"

namespace vtb::testing {
namespace {
std::unique_ptr<dist::Communicator> g_comm;
}
dist::Communicator& comm() { return *g_comm; }
}  // namespace vtb::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const auto& w = vtb::dist::init_world(&argc, &argv);
  torch::set_num_threads(1);
  vtb::testing::g_comm = vtb::dist::make_communicator("cpu", {/*timeout_s=*/60});
  if (w.rank != 0) {  // one rank's progress is enough; failures on any rank still print
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int failed = RUN_ALL_TESTS();
  int any_failed = 0;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (failed) std::fprintf(stderr, "rank %d: tests FAILED\n", w.rank);
  vtb::testing::g_comm.reset();
  vtb::dist::finalize_world();
  return any_failed;
}
