// Watchdog: fires once, past the deadline and not before, with a message naming op, sequence number,
// dtype, bytes and elapsed time; finished and probed-done collectives never fire.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "dist/watchdog.h"
#include "dist/world.h"

namespace vtb::dist {
namespace {

using namespace std::chrono_literals;

TEST(Watchdog, FiresPastDeadlineWithAMessageForPeople) {
  std::atomic<int> fired{0};
  std::string message;
  CollectiveRecord seen;
  Watchdog w("mpi", 3, 0.2, [&](const CollectiveRecord& r, const std::string& m) {
    seen = r;
    message = m;
    ++fired;
  });
  const auto start = std::chrono::steady_clock::now();
  w.start({42, "allreduce", "float32", 4u << 20});
  while (fired == 0 && std::chrono::steady_clock::now() - start < 5s) std::this_thread::sleep_for(5ms);
  const double after = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(fired, 1);
  EXPECT_GE(after, 0.2);
  EXPECT_LT(after, 1.0);
  EXPECT_EQ(seen.seq, 42u);
  for (const char* part : {"rank 3", "allreduce #42", "float32", "4.0 MiB", "backend mpi", "dist.timeout_s = 0.2"})
    EXPECT_NE(message.find(part), std::string::npos) << part << " missing from: " << message;
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(fired, 1) << "the watchdog fires once";
}

TEST(Watchdog, FinishedCollectivesNeverFire) {
  std::atomic<int> fired{0};
  Watchdog w("mpi", 0, 0.1, [&](const CollectiveRecord&, const std::string&) { ++fired; });
  for (int i = 0; i < 20; ++i) {
    const uint64_t t = w.start({static_cast<uint64_t>(i), "barrier", "none", 0});
    std::this_thread::sleep_for(10ms);
    w.finish(t);
  }
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(fired, 0);
}

TEST(Watchdog, ProbedCollectiveRetiresWhenDone) {
  std::atomic<int> fired{0};
  std::atomic<bool> done{false};
  Watchdog w("nccl", 0, 0.3, [&](const CollectiveRecord&, const std::string&) { ++fired; });
  w.start({1, "allreduce", "bfloat16", 128}, [&] { return done.load(); });
  std::this_thread::sleep_for(100ms);
  done = true;
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(fired, 0);
}

// A backend's asynchronous error (NCCL's ncclCommGetAsyncError) ends the job long before the deadline,
// naming the collective in flight; with nothing in flight the probe is not consulted.
TEST(Watchdog, AsyncErrorEndsTheJobBeforeTheDeadline) {
  std::atomic<int> fired{0}, probed{0};
  std::atomic<bool> broken{false};
  std::string message;
  Watchdog w(
      "nccl", 1, 30.0,
      [&](const CollectiveRecord&, const std::string& m) {
        message = m;
        ++fired;
      },
      [&]() -> std::string {
        ++probed;
        return broken ? "remote process exited or there was a network error" : "";
      });
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(probed, 0) << "no collective in flight: nothing to probe";
  const auto start = std::chrono::steady_clock::now();
  w.start({7, "allreduce", "bfloat16", 2u << 20}, [] { return false; });
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(fired, 0);
  EXPECT_GT(probed, 0);
  broken = true;
  while (fired == 0 && std::chrono::steady_clock::now() - start < 5s) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(fired, 1);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 2.0);
  for (const char* part : {"rank 1", "nccl reported an error", "allreduce #7", "2.0 MiB", "network error"})
    EXPECT_NE(message.find(part), std::string::npos) << part << " missing from: " << message;
}

// The peers a timeout names: the other ranks grouped by host in rank order, consecutive ranks as ranges.
TEST(PeersText, GroupsOtherRanksByHost) {
  World w;
  w.rank = 0;
  w.hosts = {"node1", "node2"};
  EXPECT_EQ(peers_text(w), "rank 1 on node2");
  w.rank = 2;
  w.hosts = {"a", "a", "a", "a", "b", "b", "b", "a"};
  EXPECT_EQ(peers_text(w), "ranks 0-1,3,7 on a, ranks 4-6 on b");
  w.rank = 0;
  w.hosts = {"h0"};
  EXPECT_EQ(peers_text(w), "no other rank");
  w.hosts.clear();
  for (int h = 0; h < 10; ++h) w.hosts.push_back("n" + std::to_string(h));
  EXPECT_EQ(peers_text(w),
            "rank 1 on n1, rank 2 on n2, rank 3 on n3, rank 4 on n4, rank 5 on n5, rank 6 on n6, "
            "rank 7 on n7, rank 8 on n8 and 1 more host");
}

TEST(FormatBytes, Units) {
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(64u << 20), "64.0 MiB");
}

}  // namespace
}  // namespace vtb::dist
