#include "train/precision.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <vector>

namespace vtb::train {

double matmul_gflops(at::ScalarType dtype, c10::Device device, int64_t n) {
  const at::TensorOptions options = at::TensorOptions().dtype(dtype).device(device);
  const at::Tensor a = at::randn({n, n}, options), b = at::randn({n, n}, options);
  auto once = [&] {
    const auto start = std::chrono::steady_clock::now();
    const at::Tensor c = at::mm(a, b);
    (void)c.sum().item<double>();  // waits for the GPU too
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  once();  // warm-up: packing buffers, kernel selection
  std::vector<double> seconds;
  double spent = 0;
  while (seconds.size() < 3 || (spent < 0.3 && seconds.size() < 50)) spent += seconds.emplace_back(once());
  std::nth_element(seconds.begin(), seconds.begin() + static_cast<std::ptrdiff_t>(seconds.size() / 2), seconds.end());
  return 2.0 * static_cast<double>(n * n * n) / seconds[seconds.size() / 2] / 1e9;
}

PrecisionChoice choose_precision(Precision requested, dist::Communicator& comm) {
  PrecisionChoice choice;
  if (requested != Precision::Auto) {
    choice.bf16 = requested == Precision::Bf16;
    choice.reason = choice.bf16 ? "run.precision = bf16" : "run.precision = fp32";
    return choice;
  }
  at::Tensor measured = at::zeros({2}, at::kDouble);
  if (comm.rank() == 0) {
    const int64_t n = comm.device().is_cuda() ? 4096 : 512;  // ~0.3 GFLOP on CPU: tens of ms even emulated
    measured[0] = matmul_gflops(at::kFloat, comm.device(), n);
    measured[1] = matmul_gflops(at::kBFloat16, comm.device(), n);
  }
  measured = measured.to(comm.device());
  comm.broadcast(measured, 0);
  measured = measured.cpu();
  choice.fp32_gflops = measured[0].item<double>();
  choice.bf16_gflops = measured[1].item<double>();
  choice.bf16 = choice.bf16_gflops >= 2 * choice.fp32_gflops;
  choice.reason = fmt::format(
      "run.precision = auto: a matmul on rank 0's {} runs at {:.1f} GFLOP/s in fp32 and {:.1f} in bf16 ({:.2f}x) → {}",
      comm.device().str(), choice.fp32_gflops, choice.bf16_gflops, choice.bf16_gflops / choice.fp32_gflops,
      choice.bf16 ? "bf16 autocast" : "fp32 (bf16 needs ≥ 2x)");
  return choice;
}

}  // namespace vtb::train
