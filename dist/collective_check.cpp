#include "dist/collective_check.h"

#include <ATen/ATen.h>

namespace vtb::dist {
namespace {

// Element i of rank r: an integer in [-6, 6]. Sums over up to 40 ranks stay exact even in bfloat16.
at::Tensor base(int64_t n, int64_t r, int64_t first = 0) {
  at::Tensor i = at::arange(first, first + n, at::kLong);
  return (i * 7 + r * 3).remainder(13) - 6;
}

// Distinct per rank, for broadcast and allgather; exact in every dtype after the same cast.
at::Tensor tagged(int64_t n, int64_t r) { return base(n, r) * 16 + r; }

int64_t count_wrong(const at::Tensor& got, const at::Tensor& expected) {
  return got.to(at::kCPU).ne(expected).sum().item<int64_t>();
}

}  // namespace

std::vector<CollectiveCheck> check_collectives(Communicator& comm, const std::vector<int64_t>& sizes) {
  const c10::Device device = comm.device();
  const int64_t N = comm.size();
  const int64_t me = comm.rank();
  const int64_t root = N - 1;  // not 0, so a broadcast that ignores root shows
  std::vector<CollectiveCheck> results;

  for (at::ScalarType dtype : {at::kFloat, at::kDouble, at::kBFloat16, at::kLong}) {
    const std::string name = dtype_name(dtype);
    const bool floating = at::isFloatingType(dtype);
    auto on_device = [&](const at::Tensor& t) { return t.to(dtype).to(device).contiguous(); };
    auto exact = [&](const at::Tensor& t) { return t.to(dtype); };

    for (int64_t n : sizes) {
      at::Tensor sum_over_ranks = at::zeros({n}, at::kLong);
      for (int64_t r = 0; r < N; ++r) sum_over_ranks += base(n, r);

      at::Tensor x = on_device(base(n, me));
      comm.allreduce(x, ReduceOp::Sum);
      results.push_back({"allreduce_sum", name, n, count_wrong(x, exact(sum_over_ranks))});

      if (floating) {  // inputs scaled by N so that the average is the exact integer sum
        at::Tensor y = on_device(base(n, me) * N);
        comm.allreduce(y, ReduceOp::Avg);
        results.push_back({"allreduce_avg", name, n, count_wrong(y, exact(sum_over_ranks))});
      }

      at::Tensor b = on_device(tagged(n, me));
      comm.broadcast(b, static_cast<int>(root));
      results.push_back({"broadcast", name, n, count_wrong(b, exact(tagged(n, root)))});

      at::Tensor gathered = comm.allgather(on_device(tagged(n, me)));
      std::vector<at::Tensor> rows;
      for (int64_t r = 0; r < N; ++r) rows.push_back(tagged(n, r));
      results.push_back({"allgather", name, n * N, count_wrong(gathered, exact(at::stack(rows)))});

      // reduce_scatter: N*n elements in, rank `me` keeps elements me*n .. me*n+n-1 reduced.
      at::Tensor chunk_sum = at::zeros({n}, at::kLong);
      for (int64_t r = 0; r < N; ++r) chunk_sum += base(n, r, me * n);
      at::Tensor full = at::cat([&] {
        std::vector<at::Tensor> parts;
        for (int64_t c = 0; c < N; ++c) parts.push_back(base(n, me, c * n));
        return parts;
      }());
      at::Tensor rs = comm.reduce_scatter(on_device(full), ReduceOp::Sum);
      results.push_back({"reduce_scatter_sum", name, n, count_wrong(rs, exact(chunk_sum))});
      if (floating) {
        at::Tensor rs_avg = comm.reduce_scatter(on_device(full * N), ReduceOp::Avg);
        results.push_back({"reduce_scatter_avg", name, n, count_wrong(rs_avg, exact(chunk_sum))});
      }
    }
  }
  return results;
}

}  // namespace vtb::dist
