// Collectives over real MPI ranks, every element compared against exactly computable expectations.
#include <gtest/gtest.h>
#include <mpi.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <set>
#include <thread>

#include "dist/collective_check.h"
#include "dist/world.h"
#include "tests/mpi/forwarding_communicator.h"
#include "tests/mpi/mpi_main.h"

namespace vtb::dist {
namespace {

using vtb::testing::comm;

TEST(World, AgreesWithTheLauncher) {
  const World& w = world();
  EXPECT_EQ(w.size, std::atoi(std::getenv("OMPI_COMM_WORLD_SIZE")));
  EXPECT_EQ(w.rank, std::atoi(std::getenv("OMPI_COMM_WORLD_RANK")));
  EXPECT_EQ(w.local_rank, std::atoi(std::getenv("OMPI_COMM_WORLD_LOCAL_RANK")));
  EXPECT_EQ(w.local_size, std::atoi(std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE")));
  EXPECT_EQ(w.thread_level, MPI_THREAD_MULTIPLE);
  EXPECT_GE(default_intra_op_threads(), 1);
}

TEST(Collectives, EveryOpEveryDtypeExact) {
  const std::vector<int64_t> sizes{0, 1, 7, 1000, (1 << 18) + 3};
  const auto checks = check_collectives(comm(), sizes);
  std::set<std::string> covered;
  for (const auto& c : checks) {
    EXPECT_EQ(c.wrong, 0) << c.op << " " << c.dtype << " " << c.elements << " elements";
    covered.insert(c.op + " " + c.dtype);
  }
  // 4 dtypes × (allreduce_sum, broadcast, allgather, reduce_scatter_sum) + 3 float dtypes × 2 averages.
  EXPECT_EQ(covered.size(), 22u);
  EXPECT_EQ(checks.size(), 22u * sizes.size());
}

// A communicator that corrupts one element of every allreduce result on rank 0: the check must see it.
class CorruptingCommunicator final : public vtb::testing::ForwardingCommunicator {
 public:
  using ForwardingCommunicator::ForwardingCommunicator;
  std::shared_ptr<Work> allreduce_async(at::Tensor t, ReduceOp op) override {
    inner_.allreduce_async(t, op)->wait();
    if (rank() == 0 && t.numel() > 0) t.view(-1)[0].add_(1);
    struct Done final : Work {
      void wait() override {}
    };
    return std::make_shared<Done>();
  }
};

TEST(Collectives, CheckDetectsAWrongElement) {
  CorruptingCommunicator bad(comm());
  for (const auto& c : check_collectives(bad, {5})) {
    const bool corrupted = comm().rank() == 0 && c.op.rfind("allreduce", 0) == 0;
    EXPECT_EQ(c.wrong, corrupted ? 1 : 0) << c.op << " " << c.dtype;
  }
}

TEST(Collectives, AsyncAllreducesCompleteInIssueOrder) {
  std::vector<at::Tensor> ts;
  std::vector<std::shared_ptr<Work>> works;
  for (int i = 0; i < 8; ++i) {
    ts.push_back(torch::full({1000 + i}, static_cast<double>(i + comm().rank()), torch::kDouble));
    works.push_back(comm().allreduce_async(ts.back(), ReduceOp::Sum));
  }
  const int n = comm().size();
  for (int i = 0; i < 8; ++i) {
    works[i]->wait();
    EXPECT_TRUE(
        torch::equal(ts[i], torch::full({1000 + i}, static_cast<double>(n * i + n * (n - 1) / 2), torch::kDouble)));
  }
}

TEST(Collectives, BadArgumentsAreErrorsBeforeAnyCommunication) {
  at::Tensor strided = torch::zeros({4, 4}).t();
  EXPECT_THROW(comm().allreduce(strided, ReduceOp::Sum), std::invalid_argument);
  at::Tensor ints = torch::zeros({4}, torch::kLong);
  EXPECT_THROW(comm().allreduce(ints, ReduceOp::Avg), std::invalid_argument);
  at::Tensor halves = torch::zeros({4}, torch::kHalf);
  EXPECT_THROW(comm().allreduce(halves, ReduceOp::Sum), std::invalid_argument);
  EXPECT_THROW(comm().reduce_scatter(torch::zeros({comm().size() * 3 + 1}), ReduceOp::Sum), std::invalid_argument);
  at::Tensor x = torch::zeros({2});
  EXPECT_THROW(comm().broadcast(x, comm().size()), std::invalid_argument);
  comm().barrier();  // still in step with the other ranks
}

TEST(Collectives, BarrierWaitsForTheLastRank) {
  using clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC: one clock for all ranks of this host
  std::this_thread::sleep_for(std::chrono::milliseconds(100 * comm().rank()));
  const double entered = std::chrono::duration<double>(clock::now().time_since_epoch()).count();
  comm().barrier();
  const double left = std::chrono::duration<double>(clock::now().time_since_epoch()).count();
  at::Tensor times = comm().allgather(torch::tensor({entered, left}, torch::kDouble));
  const double last_entry = times.select(1, 0).max().item<double>();
  EXPECT_GE(left, last_entry);
}

TEST(Collectives, AllgatherStrings) {
  const std::string mine(static_cast<size_t>(comm().rank() * 5), static_cast<char>('a' + comm().rank()));
  const auto all = allgather_strings(comm(), mine);
  ASSERT_EQ(all.size(), static_cast<size_t>(comm().size()));
  for (int r = 0; r < comm().size(); ++r)
    EXPECT_EQ(all[r], std::string(static_cast<size_t>(r * 5), static_cast<char>('a' + r)));
}

// The NCCL backend through the same element-wise check, where every rank has a GPU of its own: NCCL
// refuses two ranks of one communicator on one device, so a 1-GPU machine runs this at -np 1 only
// (scripts/gpu-check.sh does). Every rank sees the same answer, so all skip or none.
TEST(Nccl, EveryOpEveryDtypeExact) {
#ifndef VTB_WITH_CUDA
  GTEST_SKIP() << "this vtb was built without CUDA (VTB_WITH_CUDA=OFF)";
#endif
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device on this machine";
  if (static_cast<int>(torch::cuda::device_count()) < world().local_size)
    GTEST_SKIP() << "NCCL needs one GPU per rank: " << world().local_size << " ranks on this node, "
                 << torch::cuda::device_count() << " GPU(s)";
  auto nccl = make_communicator("cuda", CommunicatorOptions{60});
  EXPECT_EQ(nccl->backend(), "nccl");
  for (const auto& c : check_collectives(*nccl, {0, 1, 7, 1000, (1 << 18) + 3}))
    EXPECT_EQ(c.wrong, 0) << "nccl " << c.op << " " << c.dtype << " " << c.elements << " elements";
}

}  // namespace
}  // namespace vtb::dist
