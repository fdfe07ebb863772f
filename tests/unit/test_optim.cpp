// AdamW against LibTorch's own torch::optim::AdamW (an independent implementation), gradient clipping
// against torch::nn::utils::clip_grad_norm_, and the schedule against its formula.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "optim/adamw.h"

namespace vtb::optim {
namespace {

TEST(AdamW, MatchesLibTorchsAdamWOverTwentySteps) {
  torch::manual_seed(0);
  std::vector<at::Tensor> mine{torch::randn({5, 7}, torch::requires_grad()), torch::randn({7}, torch::requires_grad())};
  std::vector<at::Tensor> theirs{mine[0].detach().clone().requires_grad_(), mine[1].detach().clone().requires_grad_()};
  AdamW ours({{"w", mine[0]}, {"b", mine[1]}}, AdamWOptions{0.9, 0.98, 1e-8, 1e-2});
  // LibTorch: the matrix decays, the bias does not (our default groups).
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<at::Tensor>{theirs[0]},
                      std::make_unique<torch::optim::AdamWOptions>(
                          torch::optim::AdamWOptions(1e-3).betas({0.9, 0.98}).eps(1e-8).weight_decay(1e-2)));
  groups.emplace_back(std::vector<at::Tensor>{theirs[1]},
                      std::make_unique<torch::optim::AdamWOptions>(
                          torch::optim::AdamWOptions(1e-3).betas({0.9, 0.98}).eps(1e-8).weight_decay(0)));
  torch::optim::AdamW reference(groups, torch::optim::AdamWOptions(1e-3));
  for (int step = 1; step <= 20; ++step) {
    const double lr = 1e-3 * (step % 3 + 1);
    for (auto& g : reference.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    for (size_t i = 0; i < 2; ++i) {
      at::Tensor g = torch::randn(mine[i].sizes());
      mine[i].mutable_grad() = g.clone();
      theirs[i].mutable_grad() = g.clone();
    }
    ours.step(lr);
    reference.step();
  }
  for (size_t i = 0; i < 2; ++i)
    EXPECT_TRUE(torch::allclose(mine[i], theirs[i], 1e-6, 1e-7)) << (mine[i] - theirs[i]).abs().max().item<double>();
  EXPECT_EQ(ours.state().at("w").step, 20);
  EXPECT_TRUE(ours.decays("w"));
  EXPECT_FALSE(ours.decays("b"));
}

TEST(AdamW, DecayGroups) {
  EXPECT_TRUE(default_decays("encoder.layers.0.feed_forward1.linear1.weight", torch::zeros({4, 4})));
  EXPECT_FALSE(default_decays("encoder.layers.0.feed_forward1.linear1.bias", torch::zeros({4})));
  EXPECT_FALSE(default_decays("encoder.layers.0.norm_out.weight", torch::zeros({4})));
  EXPECT_FALSE(default_decays("encoder.layers.0.self_attn.pos_bias_u", torch::zeros({8, 16})));
}

TEST(ClipGradNorm, MatchesLibTorch) {
  torch::manual_seed(1);
  std::vector<at::Tensor> a{torch::randn({30}, torch::requires_grad()), torch::randn({4, 4}, torch::requires_grad())};
  std::vector<at::Tensor> b{a[0].detach().clone().requires_grad_(), a[1].detach().clone().requires_grad_()};
  for (size_t i = 0; i < 2; ++i) {
    at::Tensor g = torch::randn(a[i].sizes()) * 3;
    a[i].mutable_grad() = g.clone();
    b[i].mutable_grad() = g.clone();
  }
  const double norm = clip_grad_norm(a, 1.0);
  const double theirs = torch::nn::utils::clip_grad_norm_(b, 1.0);
  EXPECT_NEAR(norm, theirs, 1e-4);
  for (size_t i = 0; i < 2; ++i) EXPECT_TRUE(torch::allclose(a[i].grad(), b[i].grad(), 1e-5, 1e-7));
  a[0].grad()[0] = std::nan("");
  EXPECT_FALSE(std::isfinite(clip_grad_norm(a, 1.0)));
}

TEST(Schedule, WarmupThenCosineToTheFloor) {
  EXPECT_DOUBLE_EQ(warmup_cosine(1, 1e-4, 1e-6, 100, 1100), 1e-6);
  EXPECT_DOUBLE_EQ(warmup_cosine(50, 1e-4, 1e-6, 100, 1100), 5e-5);
  EXPECT_DOUBLE_EQ(warmup_cosine(100, 1e-4, 1e-6, 100, 1100), 1e-4);
  EXPECT_NEAR(warmup_cosine(600, 1e-4, 1e-6, 100, 1100), 1e-6 + (1e-4 - 1e-6) * 0.5, 1e-15);  // half way: cos = 0
  EXPECT_DOUBLE_EQ(warmup_cosine(1100, 1e-4, 1e-6, 100, 1100), 1e-6);
  EXPECT_DOUBLE_EQ(warmup_cosine(5000, 1e-4, 1e-6, 100, 1100), 1e-6);
}

}  // namespace
}  // namespace vtb::optim
