// Communicator over MPI for CPU tensors.
//
// Note [Communication thread]: every collective runs on one dedicated thread, in the order callers
// issued them. Callers (the autograd hooks of GradientBucketer among them) only enqueue, so reduction
// overlaps the backward pass, and the order on the wire is the issue order on every rank. MPI is
// initialised with MPI_THREAD_MULTIPLE because the watchdog may call MPI_Abort from its own thread
// while the communication thread is blocked inside a collective.
#pragma once

#include <mpi.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include "dist/communicator.h"
#include "dist/watchdog.h"

namespace vtb::dist {

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(CommunicatorOptions options);
  ~MpiCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }
  c10::Device device() const override { return c10::Device(c10::kCPU); }

  std::shared_ptr<Work> allreduce_async(at::Tensor t, ReduceOp op) override;
  void broadcast(at::Tensor& t, int root) override;
  at::Tensor allgather(const at::Tensor& t) override;
  std::shared_ptr<Work> reduce_scatter_async(at::Tensor t, at::Tensor out, ReduceOp op) override;
  void barrier() override;

 private:
  // Enqueues `body` as collective `op` on the communication thread; the future completes after it ran.
  std::shared_future<void> submit(const char* op, const at::Tensor& t, std::function<void()> body);
  void run();

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
  Watchdog watchdog_;

  struct Task {
    CollectiveRecord record;
    std::function<void()> body;
    std::promise<void> done;
  };
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> queue_;
  uint64_t next_seq_ = 1;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace vtb::dist
