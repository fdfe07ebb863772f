// The collectives vtb's ranks use to agree: one interface, an MPI backend for CPU tensors and an NCCL
// backend for CUDA tensors (built with VTB_WITH_CUDA).
//
// Note [Collective order]: like every collective library, a Communicator requires all ranks to issue
// the same collectives in the same order. Each call gets a sequence number (1, 2, ...); the watchdog
// reports it on a timeout, so comparing the last sequence numbers in the ranks' logs shows which rank
// skipped or reordered a call.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <memory>
#include <string>
#include <vector>

namespace vtb::dist {

enum class ReduceOp { Sum, Avg };  // Avg = Sum then divide by size(); floating-point dtypes only

// A collective in flight. wait() returns when its result is in the output tensor (on CUDA: when the
// caller's current stream is ordered after it). Errors raised by the collective are rethrown by wait().
class Work {
 public:
  virtual ~Work() = default;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;  // "mpi" or "nccl"
  virtual c10::Device device() const = 0;   // where its tensors must live

  // In place on `t` (contiguous). Supported dtypes: float32, float64, bfloat16, int64. The communicator keeps
  // `t` alive until the collective is done.
  virtual std::shared_ptr<Work> allreduce_async(at::Tensor t, ReduceOp op) = 0;
  void allreduce(at::Tensor& t, ReduceOp op) { allreduce_async(t, op)->wait(); }

  // In place on every rank from `root`.
  virtual void broadcast(at::Tensor& t, int root) = 0;

  // Returns [size(), ...t.shape]: every rank's tensor, stacked in rank order.
  virtual at::Tensor allgather(const at::Tensor& t) = 0;

  // `t` (contiguous) has size() * k elements; `out` (contiguous, k elements, not overlapping `t`) receives
  // rank r's reduced chunk (elements r*k .. r*k+k-1). Neither may be touched until wait(); the caller may
  // drop them: like allreduce_async, the communicator keeps its tensors alive until the collective is done.
  virtual std::shared_ptr<Work> reduce_scatter_async(at::Tensor t, at::Tensor out, ReduceOp op) = 0;
  // The same, returning rank r's chunk [k].
  at::Tensor reduce_scatter(const at::Tensor& t, ReduceOp op);

  virtual void barrier() = 0;
};

// Throws unless `t` splits into `ranks` equal chunks and `out` has one chunk's elements and t's dtype.
void check_reduce_scatter_shapes(const at::Tensor& t, const at::Tensor& out, int ranks);

// "float32", "bfloat16", "int64", ...: the names people know, for messages and reports.
std::string dtype_name(c10::ScalarType t);

// Every rank's string, in rank order (layouts, parameter lists). Collective.
std::vector<std::string> allgather_strings(Communicator& comm, const std::string& mine);

// For each of this rank's flags, whether any rank set it: one allreduce for them all. Collective.
std::vector<bool> any_rank(Communicator& comm, const std::vector<bool>& mine);
inline bool any_rank(Communicator& comm, bool mine) { return any_rank(comm, std::vector<bool>{mine})[0]; }

struct CommunicatorOptions {
  double timeout_s = 600;  // dist.timeout_s: deadline of every collective (the watchdog)
};

// The backend for `device`: MPI for CPU, NCCL for CUDA (throws if built without VTB_WITH_CUDA).
// Must be called on every rank (NCCL bootstrap is collective). Requires init_world().
std::unique_ptr<Communicator> make_communicator(const std::string& device, CommunicatorOptions options);

}  // namespace vtb::dist
