#include "dist/communicator.h"

#include <ATen/ATen.h>

#include <cstring>
#include <stdexcept>

#include "dist/mpi_communicator.h"
#ifdef VTB_WITH_CUDA
#include "dist/nccl_communicator.h"
#endif

namespace vtb::dist {

std::string dtype_name(c10::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return "float32";
    case at::kDouble:
      return "float64";
    case at::kHalf:
      return "float16";
    case at::kBFloat16:
      return "bfloat16";
    case at::kLong:
      return "int64";
    case at::kInt:
      return "int32";
    case at::kByte:
      return "uint8";
    case at::kBool:
      return "bool";
    default:
      return at::toString(t);
  }
}

void check_reduce_scatter_shapes(const at::Tensor& t, const at::Tensor& out, int ranks) {
  if (!t.defined() || !out.defined()) throw std::invalid_argument("reduce_scatter: undefined tensor");
  if (t.numel() % ranks != 0)
    throw std::invalid_argument("reduce_scatter: " + std::to_string(t.numel()) + " elements do not split evenly over " +
                                std::to_string(ranks) + " ranks");
  if (out.numel() != t.numel() / ranks || out.scalar_type() != t.scalar_type())
    throw std::invalid_argument("reduce_scatter: the output holds " + std::to_string(out.numel()) + " " +
                                dtype_name(out.scalar_type()) + " elements; one rank's chunk is " +
                                std::to_string(t.numel() / ranks) + " " + dtype_name(t.scalar_type()));
}

at::Tensor Communicator::reduce_scatter(const at::Tensor& t, ReduceOp op) {
  at::Tensor out = at::empty({t.numel() / size()}, t.options());
  reduce_scatter_async(t, out, op)->wait();
  return out;
}

std::vector<bool> any_rank(Communicator& comm, const std::vector<bool>& mine) {
  at::Tensor counts = at::zeros({static_cast<int64_t>(mine.size())}, at::kLong);
  for (size_t i = 0; i < mine.size(); ++i) counts[static_cast<int64_t>(i)] = mine[i] ? 1 : 0;
  counts = counts.to(comm.device());
  comm.allreduce(counts, ReduceOp::Sum);
  counts = counts.cpu();
  std::vector<bool> out;
  for (size_t i = 0; i < mine.size(); ++i) out.push_back(counts[static_cast<int64_t>(i)].item<int64_t>() > 0);
  return out;
}

std::vector<std::string> allgather_strings(Communicator& comm, const std::string& mine) {
  // Strings travel as int64 words (the Communicator's dtypes are numeric): first agree on the longest,
  // then gather every rank's bytes zero-padded to it.
  at::Tensor lengths =
      comm.allgather(at::full({1}, static_cast<int64_t>(mine.size()), at::kLong).to(comm.device())).cpu();
  const int64_t words = (lengths.max().item<int64_t>() + 7) / 8;
  at::Tensor packed = at::zeros({words}, at::kLong);
  std::memcpy(packed.data_ptr(), mine.data(), mine.size());
  at::Tensor all = comm.allgather(packed.to(comm.device())).cpu();
  std::vector<std::string> out;
  const auto* bytes = static_cast<const char*>(all.data_ptr());
  for (int r = 0; r < comm.size(); ++r)
    out.emplace_back(bytes + r * words * 8, static_cast<size_t>(lengths[r][0].item<int64_t>()));
  return out;
}

std::unique_ptr<Communicator> make_communicator(const std::string& device, CommunicatorOptions options) {
  if (device == "cpu") return std::make_unique<MpiCommunicator>(options);
  if (device == "cuda") {
#ifdef VTB_WITH_CUDA
    return make_nccl_communicator(options);
#else
    throw std::runtime_error(
        "device 'cuda' needs the NCCL communicator, but this vtb was built without CUDA (VTB_WITH_CUDA=OFF). "
        "Rebuild against a CUDA LibTorch with NCCL available, or run with device = cpu.");
#endif
  }
  throw std::invalid_argument("unknown device '" + device + "' (expected cpu or cuda)");
}

}  // namespace vtb::dist
