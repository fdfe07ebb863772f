#include "dist/mpi_communicator.h"

#include <ATen/ATen.h>
#include <c10/util/BFloat16.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <climits>
#include <stdexcept>
#include <thread>

#include "compat/aten_threads.h"
#include "dist/world.h"

namespace vtb::dist {
namespace {

void check_mpi(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, text, &len);
  throw std::runtime_error(std::string("MPI ") + what + " failed on rank " + std::to_string(world().rank) + ": " +
                           std::string(text, static_cast<size_t>(len)));
}

// MPI has no bfloat16: reduce it as 16-bit words with a user op that adds in float and rounds back.
void bf16_sum(void* in, void* inout, int* len, MPI_Datatype*) {
  auto* a = static_cast<const c10::BFloat16*>(in);
  auto* b = static_cast<c10::BFloat16*>(inout);
  for (int i = 0; i < *len; ++i) b[i] = c10::BFloat16(static_cast<float>(a[i]) + static_cast<float>(b[i]));
}

MPI_Op bf16_sum_op() {
  static MPI_Op op = [] {
    MPI_Op created;
    MPI_Op_create(&bf16_sum, /*commute=*/1, &created);
    return created;
  }();
  return op;
}

MPI_Datatype mpi_type(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return MPI_FLOAT;
    case at::kDouble:
      return MPI_DOUBLE;
    case at::kLong:
      return MPI_INT64_T;
    case at::kBFloat16:
      return MPI_UINT16_T;
    default:
      throw std::invalid_argument(std::string("MPI communicator: unsupported dtype ") + dtype_name(t) +
                                  " (supported: float32, float64, bfloat16, int64)");
  }
}

// Waits for a non-blocking MPI call without spinning a core: MPI's blocking waits busy-poll, and on CPU
// ranks the communication thread shares its cores with the backward pass it overlaps. Polls hot for
// ~200 polls (short waits end there), then sleeps between polls, backing off to 200 us.
void wait_without_spinning(MPI_Request& request, const char* what) {
  int done = 0;
  auto sleep = std::chrono::microseconds(10);
  for (int polls = 0;; ++polls) {
    check_mpi(MPI_Test(&request, &done, MPI_STATUS_IGNORE), what);
    if (done) return;
    if (polls < 200) continue;
    std::this_thread::sleep_for(sleep);
    sleep = std::min(sleep * 2, std::chrono::microseconds(200));
  }
}

// Note [Rendezvous before allreduce]: a blocking MPI_Allreduce (or reduce-scatter) spins while it waits for
// the slowest rank, stealing the core from backward (measured: overlapped sync 43 ms slower than syncing
// after backward, 2 ranks on 2 cores). Meeting first in a sleeping Ibarrier leaves only the transfer itself
// spinning. (MPI_Iallreduce alone was worse: Open MPI progresses it only inside MPI_Test.)
void rendezvous(MPI_Comm comm) {
  MPI_Request request;
  check_mpi(MPI_Ibarrier(comm, &request), "Ibarrier");
  wait_without_spinning(request, "Ibarrier");
}

MPI_Op mpi_sum(at::ScalarType t) { return t == at::kBFloat16 ? bf16_sum_op() : MPI_SUM; }

void check_tensor(const at::Tensor& t, const char* op) {
  if (!t.defined()) throw std::invalid_argument(std::string(op) + ": undefined tensor");
  if (!t.device().is_cpu())
    throw std::invalid_argument(std::string(op) + ": the MPI communicator takes CPU tensors; got a tensor on " +
                                t.device().str() + " (GPU tensors go through the NCCL communicator)");
  if (!t.is_contiguous()) throw std::invalid_argument(std::string(op) + ": tensor must be contiguous");
  mpi_type(t.scalar_type());
}

void check_avg(const at::Tensor& t, ReduceOp op) {
  if (op == ReduceOp::Avg && !at::isFloatingType(t.scalar_type()))
    throw std::invalid_argument(std::string("Avg reduction needs a floating-point tensor, got ") +
                                dtype_name(t.scalar_type()));
}

int checked_count(int64_t n, const char* op) {
  if (n > INT_MAX)
    throw std::invalid_argument(std::string(op) + ": " + std::to_string(n) + " elements exceed MPI's int count");
  return static_cast<int>(n);
}

class MpiWork final : public Work {
 public:
  explicit MpiWork(std::shared_future<void> f) : f_(std::move(f)) {}
  void wait() override { f_.get(); }

 private:
  std::shared_future<void> f_;
};

}  // namespace

MpiCommunicator::MpiCommunicator(CommunicatorOptions options)
    : rank_(world().rank), size_(world().size), watchdog_("mpi", world().rank, options.timeout_s) {
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised) throw std::logic_error("MpiCommunicator: call vtb::dist::init_world() first");
  check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "Comm_dup");
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  if (world().thread_level < MPI_THREAD_MULTIPLE)
    spdlog::warn(
        "MPI provides thread level {} < MPI_THREAD_MULTIPLE; the watchdog may not be able to end a "
        "hung job cleanly",
        world().thread_level);
  thread_ = std::thread([this] {
    compat::run_aten_serially_on_this_thread();  // Note [One OpenMP team]
    run();
  });
}

MpiCommunicator::~MpiCommunicator() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  int finalised = 0;
  MPI_Finalized(&finalised);
  if (!finalised) MPI_Comm_free(&comm_);
}

std::shared_future<void> MpiCommunicator::submit(const char* op, const at::Tensor& t, std::function<void()> body) {
  Task task;
  task.record.op = op;
  task.record.dtype = t.defined() ? dtype_name(t.scalar_type()) : "none";
  task.record.bytes = t.defined() ? t.numel() * t.element_size() : 0;
  task.body = std::move(body);
  std::shared_future<void> f = task.done.get_future().share();
  {
    std::lock_guard<std::mutex> lock(mu_);
    task.record.seq = next_seq_++;
    queue_.push_back(std::move(task));
  }
  cv_.notify_one();
  return f;
}

void MpiCommunicator::run() {
  for (;;) {
    Task task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and all issued collectives ran
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    const uint64_t ticket = watchdog_.start(task.record);
    try {
      task.body();
      task.done.set_value();
    } catch (...) {
      task.done.set_exception(std::current_exception());
    }
    watchdog_.finish(ticket);
  }
}

std::shared_ptr<Work> MpiCommunicator::allreduce_async(at::Tensor t, ReduceOp op) {
  check_tensor(t, "allreduce");
  check_avg(t, op);
  auto body = [this, t, op]() mutable {
    const MPI_Datatype type = mpi_type(t.scalar_type());
    char* data = static_cast<char*>(t.data_ptr());
    const int64_t chunk = INT_MAX;
    for (int64_t done = 0; done < t.numel(); done += chunk) {
      const int n = static_cast<int>(std::min<int64_t>(chunk, t.numel() - done));
      rendezvous(comm_);
      check_mpi(MPI_Allreduce(MPI_IN_PLACE, data + done * t.element_size(), n, type, mpi_sum(t.scalar_type()), comm_),
                "Allreduce");
    }
    if (op == ReduceOp::Avg) t.div_(size_);
  };
  return std::make_shared<MpiWork>(submit("allreduce", t, std::move(body)));
}

void MpiCommunicator::broadcast(at::Tensor& t, int root) {
  check_tensor(t, "broadcast");
  if (root < 0 || root >= size_)
    throw std::invalid_argument("broadcast: root " + std::to_string(root) + " out of range");
  at::Tensor target = t;
  submit("broadcast", t, [this, target, root] {
    const int n = checked_count(target.numel(), "broadcast");
    check_mpi(MPI_Bcast(target.data_ptr(), n, mpi_type(target.scalar_type()), root, comm_), "Bcast");
  }).get();
}

at::Tensor MpiCommunicator::allgather(const at::Tensor& t) {
  check_tensor(t, "allgather");
  std::vector<int64_t> shape{size_};
  shape.insert(shape.end(), t.sizes().begin(), t.sizes().end());
  at::Tensor out = at::empty(shape, t.options());
  submit("allgather", t, [this, t, out] {
    const int n = checked_count(t.numel(), "allgather");
    const MPI_Datatype type = mpi_type(t.scalar_type());
    check_mpi(MPI_Allgather(t.data_ptr(), n, type, out.data_ptr(), n, type, comm_), "Allgather");
  }).get();
  return out;
}

std::shared_ptr<Work> MpiCommunicator::reduce_scatter_async(at::Tensor t, at::Tensor out, ReduceOp op) {
  check_tensor(t, "reduce_scatter");
  check_tensor(out, "reduce_scatter");
  check_avg(t, op);
  check_reduce_scatter_shapes(t, out, size_);
  auto body = [this, t, out, op]() mutable {
    const int n = checked_count(out.numel(), "reduce_scatter");
    rendezvous(comm_);
    check_mpi(MPI_Reduce_scatter_block(t.data_ptr(), out.data_ptr(), n, mpi_type(t.scalar_type()),
                                       mpi_sum(t.scalar_type()), comm_),
              "Reduce_scatter_block");
    if (op == ReduceOp::Avg) out.div_(size_);
  };
  return std::make_shared<MpiWork>(submit("reduce_scatter", t, std::move(body)));
}

void MpiCommunicator::barrier() {
  submit("barrier", at::Tensor(), [this] { check_mpi(MPI_Barrier(comm_), "Barrier"); }).get();
}

}  // namespace vtb::dist
