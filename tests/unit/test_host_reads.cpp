// HostReadCounter (train/host_reads.h) sees what it is there to catch: an .item(), a boolean mask's nonzero()
// and read_to_host, on this thread only, and nothing for work that stays on the tensors' device.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <thread>

#include "train/host_reads.h"

namespace vtb::train {
namespace {

TEST(HostReads, CountsItemNonzeroAndReadToHost) {
  const at::Tensor x = torch::randn({16});
  HostReadCounter counter;
  at::Tensor y = (x * 2).exp().sum();  // stays where it is: nothing read
  EXPECT_EQ(counter.reads(), 0);
  EXPECT_EQ(counter.implicit_reads(), 0);
  (void)y.item<double>();
  EXPECT_EQ(counter.implicit_reads(), 1);
  EXPECT_EQ(counter.ops().at("aten::_local_scalar_dense"), 1);
  (void)x.index({x.gt(0)});  // boolean indexing sizes its output by a count on the device
  EXPECT_EQ(counter.ops().at("aten::nonzero"), 1);
  (void)read_to_host(y);
  EXPECT_EQ(counter.reads(), 1);
  counter.reset();
  EXPECT_EQ(counter.reads() + counter.implicit_reads(), 0);
}

TEST(HostReads, OtherThreadsAreNotCounted) {
  HostReadCounter counter;
  std::thread([] { (void)torch::ones({3}).sum().item<double>(); }).join();
  EXPECT_EQ(counter.implicit_reads(), 0);
}

TEST(HostReads, NothingCountedOnceTheCounterIsGone) {
  { HostReadCounter counter; }
  HostReadCounter again;  // one at a time: the first is gone
  (void)read_to_host(torch::ones({1}));
  EXPECT_EQ(again.reads(), 1);
}

}  // namespace
}  // namespace vtb::train
