// The checkpoint commit protocol over real ranks: every rank's files land in the committed folder,
// `latest` moves last, old checkpoints are pruned, a failed write on one rank commits nothing anywhere,
// and a stale .tmp folder from a killed job is ignored and replaced.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "ckpt/commit.h"
#include "tests/mpi/mpi_main.h"

namespace vtb::ckpt {
namespace {

namespace fs = std::filesystem;
using vtb::testing::comm;

// One run folder shared by all ranks of this job (rank 0's pid, broadcast).
std::string run_dir(const std::string& name) {
  at::Tensor pid = torch::full({1}, static_cast<int64_t>(getpid()), torch::kLong);
  comm().broadcast(pid, 0);
  return ::testing::TempDir() + "vtb_commit_" + name + "_" + std::to_string(pid.item<int64_t>());
}

void write_rank_file(const std::string& folder, int64_t step) {
  std::ofstream(folder + "/rank_" + std::to_string(comm().rank()) + ".txt") << step;
}

TEST(Commit, EveryRanksFilesLatestAndPruning) {
  const std::string run = run_dir("prune");
  for (int64_t step = 1; step <= 4; ++step)
    commit_checkpoint(comm(), run, step, /*keep_last=*/2, [&](const std::string& f) { write_rank_file(f, step); });
  const std::string latest = latest_checkpoint(run);
  EXPECT_EQ(fs::path(latest).filename(), "step_00000004");
  for (int r = 0; r < comm().size(); ++r) {
    std::ifstream in(latest + "/rank_" + std::to_string(r) + ".txt");
    int64_t step = 0;
    in >> step;
    EXPECT_EQ(step, 4) << "rank " << r;
  }
  EXPECT_FALSE(fs::exists(run + "/step_00000001"));
  EXPECT_FALSE(fs::exists(run + "/step_00000002"));
  EXPECT_TRUE(fs::exists(run + "/step_00000003"));
  comm().barrier();
}

TEST(Commit, AFailedWriteOnOneRankCommitsNothing) {
  const std::string run = run_dir("fail");
  commit_checkpoint(comm(), run, 1, 3, [&](const std::string& f) { write_rank_file(f, 1); });
  try {
    commit_checkpoint(comm(), run, 2, 3, [&](const std::string& f) {
      if (comm().rank() == comm().size() - 1) throw std::runtime_error("disk full");
      write_rank_file(f, 2);
    });
    FAIL() << "rank " << comm().rank() << " did not see the failure";
  } catch (const std::runtime_error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("not committed"), std::string::npos) << m;
    if (comm().rank() == comm().size() - 1) {
      EXPECT_NE(m.find("disk full"), std::string::npos) << m;
    }
  }
  EXPECT_EQ(fs::path(latest_checkpoint(run)).filename(), "step_00000001");
  EXPECT_FALSE(fs::exists(run + "/step_00000002"));
  comm().barrier();
}

TEST(Commit, StaleTmpFolderIsIgnoredThenReplaced) {
  const std::string run = run_dir("stale");
  commit_checkpoint(comm(), run, 5, 3, [&](const std::string& f) { write_rank_file(f, 5); });
  if (comm().rank() == 0) {  // what a job killed in the middle of writing step 6 leaves behind
    fs::create_directories(run + "/step_00000006.tmp");
    std::ofstream(run + "/step_00000006.tmp/rank_0.txt") << "half";
  }
  comm().barrier();
  EXPECT_EQ(fs::path(latest_checkpoint(run)).filename(), "step_00000005");
  commit_checkpoint(comm(), run, 6, 3, [&](const std::string& f) { write_rank_file(f, 6); });
  std::ifstream in(run + "/step_00000006/rank_0.txt");
  std::string content;
  in >> content;
  EXPECT_EQ(content, "6");
  EXPECT_FALSE(fs::exists(run + "/step_00000006.tmp"));
  comm().barrier();
}

}  // namespace
}  // namespace vtb::ckpt
