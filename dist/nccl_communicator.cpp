#include "dist/nccl_communicator.h"

#include <ATen/ATen.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <spdlog/spdlog.h>

#include <stdexcept>

#include "dist/exit_codes.h"
#include "dist/watchdog.h"
#include "dist/world.h"

namespace vtb::dist {
namespace {

void check_nccl(ncclResult_t r, const char* what) {
  if (r != ncclSuccess)
    throw std::runtime_error(std::string("NCCL ") + what + " failed on rank " + std::to_string(world().rank) + ": " +
                             ncclGetErrorString(r) + " (set NCCL_DEBUG=INFO for details)");
}

void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    throw std::runtime_error(std::string("CUDA ") + what + " failed on rank " + std::to_string(world().rank) + ": " +
                             cudaGetErrorString(e));
}

ncclDataType_t nccl_type(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return ncclFloat32;
    case at::kDouble:
      return ncclFloat64;
    case at::kLong:
      return ncclInt64;
    case at::kBFloat16:
      return ncclBfloat16;
    default:
      throw std::invalid_argument(std::string("NCCL communicator: unsupported dtype ") + dtype_name(t));
  }
}

ncclRedOp_t nccl_op(ReduceOp op) { return op == ReduceOp::Avg ? ncclAvg : ncclSum; }

// A CUDA event shared by the Work handle and the watchdog's probe; destroyed when both let go.
using SharedEvent = std::shared_ptr<CUevent_st>;

class NcclWork final : public Work {
 public:
  explicit NcclWork(SharedEvent done) : done_(std::move(done)) {}
  void wait() override {
    check_cuda(cudaStreamWaitEvent(c10::cuda::getCurrentCUDAStream().stream(), done_.get(), 0), "StreamWaitEvent");
  }

 private:
  SharedEvent done_;
};

class NcclCommunicator final : public Communicator {
 public:
  explicit NcclCommunicator(CommunicatorOptions options)
      : rank_(world().rank),
        size_(world().size),
        watchdog_(std::make_unique<Watchdog>(
            "nccl", world().rank, options.timeout_s,
            [this](const CollectiveRecord&, const std::string& message) { abort_and_end_job(message); },
            [this] { return async_error(); })) {
    const int devices = c10::cuda::device_count();
    if (devices == 0) throw std::runtime_error("NCCL communicator: no CUDA device visible on " + world().host);
    c10::cuda::set_device(static_cast<c10::DeviceIndex>(world().local_rank % devices));
    ncclUniqueId id;
    if (rank_ == 0) check_nccl(ncclGetUniqueId(&id), "GetUniqueId");
    MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
    check_nccl(ncclCommInitRank(&comm_, size_, id, rank_), "CommInitRank");
    stream_ = c10::cuda::getStreamFromPool(/*isHighPriority=*/true);
  }

  ~NcclCommunicator() override {
    watchdog_.reset();  // its thread probes comm_: stop it first
    if (comm_ != nullptr) ncclCommDestroy(comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "nccl"; }
  c10::Device device() const override { return c10::Device(c10::kCUDA, c10::cuda::current_device()); }

  std::shared_ptr<Work> allreduce_async(at::Tensor t, ReduceOp op) override {
    check(t, "allreduce");
    enter(t);
    check_nccl(ncclAllReduce(t.data_ptr(), t.data_ptr(), t.numel(), nccl_type(t.scalar_type()), nccl_op(op), comm_,
                             stream_.stream()),
               "AllReduce");
    return leave("allreduce", t);
  }

  void broadcast(at::Tensor& t, int root) override {
    check(t, "broadcast");
    enter(t);
    check_nccl(
        ncclBroadcast(t.data_ptr(), t.data_ptr(), t.numel(), nccl_type(t.scalar_type()), root, comm_, stream_.stream()),
        "Broadcast");
    leave("broadcast", t)->wait();
  }

  at::Tensor allgather(const at::Tensor& t) override {
    check(t, "allgather");
    std::vector<int64_t> shape{size_};
    shape.insert(shape.end(), t.sizes().begin(), t.sizes().end());
    at::Tensor out = at::empty(shape, t.options());
    enter(t);
    c10::cuda::CUDACachingAllocator::recordStream(out.storage().data_ptr(), stream_);
    check_nccl(
        ncclAllGather(t.data_ptr(), out.data_ptr(), t.numel(), nccl_type(t.scalar_type()), comm_, stream_.stream()),
        "AllGather");
    leave("allgather", t)->wait();
    return out;
  }

  std::shared_ptr<Work> reduce_scatter_async(at::Tensor t, at::Tensor out, ReduceOp op) override {
    check(t, "reduce_scatter");
    check(out, "reduce_scatter");
    check_reduce_scatter_shapes(t, out, size_);
    enter(t);
    c10::cuda::CUDACachingAllocator::recordStream(out.storage().data_ptr(), stream_);
    check_nccl(ncclReduceScatter(t.data_ptr(), out.data_ptr(), out.numel(), nccl_type(t.scalar_type()), nccl_op(op),
                                 comm_, stream_.stream()),
               "ReduceScatter");
    return leave("reduce_scatter", t);
  }

  void barrier() override {
    at::Tensor one = at::ones({1}, at::TensorOptions().dtype(at::kFloat).device(at::kCUDA));
    allreduce(one, ReduceOp::Sum);
    check_cuda(cudaStreamSynchronize(c10::cuda::getCurrentCUDAStream().stream()), "StreamSynchronize");
  }

 private:
  // Note [NCCL abort]: a collective whose peer died never completes, and its kernel keeps the GPU busy,
  // so the process could not even exit cleanly. On a timeout or an asynchronous NCCL error (both found
  // by the watchdog thread): 1. ncclCommAbort frees the kernels and the communicator's resources;
  // 2. abort_job logs the message and MPI_Abort ends every rank of the job.
  void abort_and_end_job(const std::string& message) {
    spdlog::critical("{}", message);
    spdlog::default_logger()->flush();
    if (comm_ != nullptr) ncclCommAbort(comm_);
    comm_ = nullptr;
    abort_job("rank " + std::to_string(rank_) + ": NCCL communicator aborted (ncclCommAbort) after the error above",
              kExitCollectiveTimeout);
  }

  // NCCL's own report of a failure in flight (a peer's process gone, a network error); "" when healthy.
  std::string async_error() {
    if (comm_ == nullptr) return "";
    ncclResult_t state = ncclSuccess;
    if (ncclCommGetAsyncError(comm_, &state) != ncclSuccess) return "ncclCommGetAsyncError itself failed";
    if (state == ncclSuccess || state == ncclInProgress) return "";
    return std::string(ncclGetErrorString(state)) + " (" + ncclGetLastError(comm_) + ")";
  }

  void check(const at::Tensor& t, const char* op) const {
    if (!t.is_cuda()) throw std::invalid_argument(std::string(op) + ": the NCCL communicator takes CUDA tensors");
    if (!t.is_contiguous()) throw std::invalid_argument(std::string(op) + ": tensor must be contiguous");
    nccl_type(t.scalar_type());
  }

  // Orders the communication stream after the caller's stream, and keeps `t` alive for it.
  void enter(const at::Tensor& t) {
    cudaEvent_t ready;
    check_cuda(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming), "EventCreate");
    check_cuda(cudaEventRecord(ready, c10::cuda::getCurrentCUDAStream().stream()), "EventRecord");
    check_cuda(cudaStreamWaitEvent(stream_.stream(), ready, 0), "StreamWaitEvent");
    cudaEventDestroy(ready);  // destruction is deferred by CUDA until the event completes
    c10::cuda::CUDACachingAllocator::recordStream(t.storage().data_ptr(), stream_);
  }

  // Records the end of the collective just enqueued and hands it to the watchdog.
  std::shared_ptr<Work> leave(const char* op, const at::Tensor& t) {
    cudaEvent_t raw;
    check_cuda(cudaEventCreateWithFlags(&raw, cudaEventDisableTiming), "EventCreate");
    SharedEvent done(raw, [](cudaEvent_t e) { cudaEventDestroy(e); });
    check_cuda(cudaEventRecord(raw, stream_.stream()), "EventRecord");
    CollectiveRecord record{next_seq_++, op, dtype_name(t.scalar_type()),
                            static_cast<size_t>(t.numel()) * t.element_size()};
    watchdog_->start(std::move(record), [done] { return cudaEventQuery(done.get()) == cudaSuccess; });
    return std::make_shared<NcclWork>(std::move(done));
  }

  int rank_;
  int size_;
  std::unique_ptr<Watchdog> watchdog_;
  ncclComm_t comm_ = nullptr;
  c10::cuda::CUDAStream stream_ = c10::cuda::getDefaultCUDAStream();
  uint64_t next_seq_ = 1;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(CommunicatorOptions options) {
  return std::make_unique<NcclCommunicator>(options);
}

}  // namespace vtb::dist
