// The CUDA path, from the same binary a GPU node runs. Without a GPU (or without VTB_WITH_CUDA) each test
// that needs one is skipped with the reason; the build checks run everywhere.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/Context.h>

#include <filesystem>

#include "ckpt/hdf5_io.h"
#include "compat/bf16_autocast.h"
#include "model/attention.h"
#include "tests/unit/tiny_speech_lm.h"

namespace vtb {
namespace {

// Skips the calling test unless a CUDA device can run it.
#define VTB_REQUIRE_GPU()                                                                              \
  do {                                                                                                 \
    if (!cuda_built()) GTEST_SKIP() << "this vtb was built without CUDA (VTB_WITH_CUDA=OFF)";          \
    if (!torch::cuda::is_available())                                                                  \
      GTEST_SKIP() << "no CUDA device on this machine (the CPU path of the same binary runs instead)"; \
  } while (0)

constexpr bool cuda_built() {
#ifdef VTB_WITH_CUDA
  return true;
#else
  return false;
#endif
}

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(torch::kCPU, torch::kDouble) - b.to(torch::kCPU, torch::kDouble)).abs().max().item<double>();
}

// With VTB_WITH_CUDA the binary must carry LibTorch's CUDA backend even where no GPU is: linked
// with --no-as-needed, libtorch_cuda registers the CUDA hooks when it loads. Without it a GPU node would
// report "no CUDA" however many GPUs it has.
TEST(CudaBuild, CudaBackendIsLinkedIntoTheBinary) {
  if (!cuda_built()) GTEST_SKIP() << "this vtb was built without CUDA (VTB_WITH_CUDA=OFF)";
  EXPECT_TRUE(at::detail::getCUDAHooks().isBuilt()) << "libtorch_cuda's hooks are not registered";
  EXPECT_GE(torch::cuda::device_count(), 0);  // answers (0 here) instead of throwing
}

model::SpeechBatch tiny_batch() {
  model::SpeechBatch b;
  b.ids = torch::tensor({{2, 10, 7, 11, 12, 7, 13, 14, 15}, {2, 20, 21, 22, 23, 0, 0, 0, 0}}, torch::kLong);
  b.lengths = torch::tensor({9, 5}, torch::kLong);
  b.loss_mask = torch::tensor({{0, 0, 0, 0, 0, 0, 0, 1, 1}, {0, 0, 0, 1, 1, 0, 0, 0, 0}}, torch::kBool);
  b.features = torch::randn({2, 20, 30});
  b.feature_lengths = torch::tensor({30, 17}, torch::kLong);
  return b;
}

model::SpeechBatch to(const model::SpeechBatch& b, const c10::Device& d) {
  return {b.ids.to(d), b.lengths.to(d), b.loss_mask.to(d), b.features.to(d), b.feature_lengths.to(d)};
}

// Device placement: the same weights and batch give the same loss and gradients on GPU (float32, TF32
// off) as on CPU, so moving the model is all a GPU run changes.
TEST(CudaPath, SpeechLMLossAndGradientsOnGpuEqualCpu) {
  VTB_REQUIRE_GPU();
  at::globalContext().setAllowTF32CuBLAS(false);
  torch::manual_seed(3);
  model::SpeechLM cpu(vtb::testing::tiny_speech_lm_config());
  cpu->freeze_llm_base();
  cpu->eval();  // no dropout: the two devices draw different streams
  torch::manual_seed(3);
  model::SpeechLM gpu(vtb::testing::tiny_speech_lm_config());
  gpu->freeze_llm_base();
  gpu->eval();
  gpu->to(torch::kCUDA);
  const model::SpeechBatch batch = tiny_batch();
  model::LossOutput a = cpu->loss(batch);
  model::LossOutput b = gpu->loss(to(batch, torch::kCUDA));
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_NEAR(a.loss.item<double>(), b.loss.item<double>(), 1e-5);
  a.loss.backward();
  b.loss.backward();
  auto pc = cpu->named_parameters(), pg = gpu->named_parameters();
  for (size_t i = 0; i < pc.size(); ++i) {
    if (!pc[i].value().requires_grad()) continue;
    ASSERT_TRUE(pg[i].value().grad().defined()) << pg[i].key();
    EXPECT_LE(max_abs_diff(pc[i].value().grad(), pg[i].value().grad()), 1e-4) << pc[i].key();
  }
}

// The fused kernel (scaled_dot_product_attention) equals the reference softmax attention on every query
// that has a key to attend to (causal + right padding: every query has one).
TEST(CudaPath, FusedAttentionEqualsTheReference) {
  VTB_REQUIRE_GPU();
  torch::manual_seed(0);
  const int64_t B = 2, H = 4, T = 33, d = 64;
  at::Tensor q = torch::randn({B, H, T, d}), k = torch::randn({B, H, T, d}), v = torch::randn({B, H, T, d});
  at::Tensor causal = torch::ones({T, T}, torch::kBool).tril();
  at::Tensor valid = torch::arange(T).unsqueeze(0) < torch::tensor({T, 20}).unsqueeze(1);  // [B, T]
  at::Tensor allowed = (causal.unsqueeze(0) & valid.unsqueeze(1)).unsqueeze(1);            // [B, 1, T, T]
  at::Tensor expected = model::attention_reference(q, k, v, allowed, 1.0 / std::sqrt(static_cast<double>(d)));
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    at::Tensor got = model::attention(q.to(torch::kCUDA, dtype), k.to(torch::kCUDA, dtype), v.to(torch::kCUDA, dtype),
                                      allowed.to(torch::kCUDA));
    EXPECT_LE(max_abs_diff(got, expected), dtype == torch::kFloat ? 1e-4 : 3e-2) << at::toString(dtype);
  }
}

// bf16 autocast on `device` inside the guard, float32 after it, nested guards restore the outer state.
void expect_autocast_covers_its_scope_only(c10::DeviceType device) {
  const auto options = torch::TensorOptions().device(device);
  at::Tensor a = torch::randn({8, 8}, options), b = torch::randn({8, 8}, options);
  {
    compat::Bf16Autocast outer(device, true);
    EXPECT_EQ(at::matmul(a, b).scalar_type(), torch::kBFloat16);
    {
      compat::Bf16Autocast inner(device, true);
      EXPECT_EQ(at::matmul(a, b).scalar_type(), torch::kBFloat16);
    }
    EXPECT_EQ(at::matmul(a, b).scalar_type(), torch::kBFloat16) << "the inner guard switched the outer off";
  }
  EXPECT_EQ(at::matmul(a, b).scalar_type(), torch::kFloat);
  compat::Bf16Autocast off(device, false);
  EXPECT_EQ(at::matmul(a, b).scalar_type(), torch::kFloat);
}

TEST(CudaPath, Bf16AutocastCoversItsScopeOnly) {
  VTB_REQUIRE_GPU();
  expect_autocast_covers_its_scope_only(at::kCUDA);
}

// run.precision = bf16 on CPU uses the same guard.
TEST(Bf16Autocast, CoversItsScopeOnlyOnCpu) { expect_autocast_covers_its_scope_only(at::kCPU); }

// The GPU generator's state survives a checkpoint file: restored, dropout draws the same masks again
// (what makes a CUDA resume bit-exact with dropout on).
TEST(CudaPath, GeneratorStateThroughHdf5RestoresDropout) {
  VTB_REQUIRE_GPU();
  const c10::Device gpu(torch::kCUDA, 0);
  at::Generator g = at::globalContext().defaultGenerator(gpu);
  const auto path = std::filesystem::temp_directory_path() / "vtb_cuda_rng.h5";
  {
    ckpt::Hdf5Writer out(path.string());
    out.write("/rng/cuda", g.get_state().to(torch::kLong));
    out.close();
  }
  at::Tensor x = torch::ones({4096}, gpu);
  at::Tensor first = torch::dropout(x, 0.5, /*train=*/true);
  at::Tensor second = torch::dropout(x, 0.5, /*train=*/true);
  EXPECT_FALSE(torch::equal(first, second)) << "two draws should differ";
  g.set_state(ckpt::Hdf5Reader(path.string()).read("/rng/cuda").to(torch::kByte));
  EXPECT_TRUE(torch::equal(torch::dropout(x, 0.5, true), first));
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace vtb
