// run.precision: the dtype the forward and backward compute in. Master weights, gradients and AdamW state
// stay float32 whatever it is; bf16 is an autocast (matmuls and convolutions in bfloat16, reductions, norms
// and the loss in float32), as torch.autocast does.
//
// Note [Choosing the precision]: `auto` takes bf16 only where it pays. CPUs differ by two orders of
// magnitude here — with AMX a bf16 matmul runs ~4x an fp32 one, without it (AVX2, AVX-512 without BF16)
// LibTorch emulates bf16 and it runs ~10x slower — so rank 0 times one square matmul in each dtype on its
// device with the job's thread count, takes bf16 when it is at least 2x as fast (the margin autocast's
// casts and the float32 parts of the step eat), and broadcasts the choice: every rank computes alike.
// fp32 is the default, not auto: on a CPU whose ratio is near 2x (an AMD EPYC with AVX512-BF16 measured
// 2.15-2.17x) a resumed run could measure the other side of it and continue in another precision, which
// breaks the bit-exact resume. Runs that must resume exactly pin fp32 or bf16; configs/paper-3b.ini (for
// GPUs, where bf16 is ~15x fp32) sets auto.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <utility>

#include "dist/communicator.h"

namespace vtb::train {

enum class Precision { Auto, Fp32, Bf16 };
inline constexpr std::array<std::pair<std::string_view, Precision>, 3> kPrecisions{
    {{"auto", Precision::Auto}, {"fp32", Precision::Fp32}, {"bf16", Precision::Bf16}}};

struct PrecisionChoice {
  bool bf16 = false;
  double fp32_gflops = 0, bf16_gflops = 0;  // measured by `auto` (0 otherwise)
  std::string reason;                       // one line for the log
};

// GFLOP/s of an n×n by n×n matmul in `dtype` on `device` (median of timed repetitions after a warm-up).
double matmul_gflops(at::ScalarType dtype, c10::Device device, int64_t n);

// Resolves `requested` for this job (Note [Choosing the precision]). Collective (a broadcast from rank 0).
PrecisionChoice choose_precision(Precision requested, dist::Communicator& comm);

}  // namespace vtb::train
