// AdamW against LibTorch's own torch::optim::AdamW (an independent implementation), gradient clipping
// against torch::nn::utils::clip_grad_norm_, and the schedule against its formula.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "optim/adamw.h"

namespace vtb::optim {
namespace {

class FusedOrNot : public ::testing::TestWithParam<AdamWOptions::Fused> {};

TEST_P(FusedOrNot, MatchesLibTorchsAdamWOverTwentySteps) {
  torch::manual_seed(0);
  std::vector<at::Tensor> mine{torch::randn({5, 7}, torch::requires_grad()), torch::randn({7}, torch::requires_grad())};
  std::vector<at::Tensor> theirs{mine[0].detach().clone().requires_grad_(), mine[1].detach().clone().requires_grad_()};
  AdamW ours({{"w", mine[0]}, {"b", mine[1]}}, AdamWOptions{0.9, 0.98, 1e-8, 1e-2, GetParam()});
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

INSTANTIATE_TEST_SUITE_P(AdamW, FusedOrNot, ::testing::Values(AdamWOptions::Fused::On, AdamWOptions::Fused::Off),
                         [](const auto& info) {
                           return info.param == AdamWOptions::Fused::On ? "fused" : "written_out";
                         });

// Distance in units in the last place between float32 tensors of one shape, element-wise (signs handled).
at::Tensor ulps(const at::Tensor& a, const at::Tensor& b) {
  auto ordered = [](const at::Tensor& x) {
    const at::Tensor bits = x.contiguous().view(torch::kInt).to(torch::kLong);
    return torch::where(bits < 0, -(bits + (int64_t{1} << 31)), bits);
  };
  return (ordered(a) - ordered(b)).abs();
}

// Note [Fused AdamW]: from the same parameters, moments and gradients, one fused update lands within 1 ulp of
// the written-out one on every element of both moments and of the parameters, where a parameter's ulp is that
// of the larger of its value before and after the update (p − step rounds in the kernel's own order; where the
// two nearly cancel, a result near zero counts many of its own ulps for one rounding of the operands); at steps
// 1..12, with and without weight decay, for whole tensors and for pieces of them (what dist.zero hands it).
TEST(AdamW, FusedUpdateEqualsTheWrittenOutOneWithinOneUlp) {
  torch::manual_seed(4);
  const std::vector<int64_t> shapes{4099, 64 * 33, 31};
  std::vector<std::pair<std::string, at::Tensor>> a, b;
  for (size_t i = 0; i < shapes.size(); ++i) {
    const at::Tensor p = torch::randn({shapes[i]});
    a.emplace_back("p" + std::to_string(i) + (i == 1 ? ".pos_bias_u" : ""), p.clone().view({-1, 1}));
    b.emplace_back(a.back().first, p.clone().view({-1, 1}));
  }
  AdamWOptions written_out{0.9, 0.98, 1e-8, 0.1, AdamWOptions::Fused::Off}, fused = written_out;
  fused.fused = AdamWOptions::Fused::On;
  for (const bool pieces : {false, true}) {
    AdamW reference(a, written_out), ours(b, fused);
    if (pieces) {
      ShardLayout layout;
      layout.zero = 1;
      for (size_t k = 0; k < shapes.size(); ++k)
        layout.mine.push_back({k, static_cast<int64_t>(7 * k + 3) % (shapes[k] / 2), shapes[k] / 2, 0, 0});
      reference.shard(layout);
      ours.shard(layout);
    }
    int64_t worst[3] = {0, 0, 0}, differing[3] = {0, 0, 0}, elements = 0;
    for (int step = 1; step <= 12; ++step) {
      for (size_t k = 0; k < shapes.size(); ++k) {
        const at::Tensor g = torch::randn({shapes[k], 1}) * 1e-2;
        a[k].second.mutable_grad() = g.clone();
        b[k].second.mutable_grad() = g.clone();
      }
      const double lr = 1e-3 * step;
      std::vector<at::Tensor> before;
      for (const auto& named : a) before.push_back(named.second.detach().clone());
      reference.step(lr);
      ours.step(lr);
      for (size_t k = 0; k < shapes.size(); ++k) {
        ParamState &r = reference.state().at(a[k].first), &o = ours.state().at(b[k].first);
        ASSERT_EQ(o.step, r.step);
        // The parameter's difference in ulps of max(|before|, |after|): 0 or 1 when within one rounding.
        const at::Tensor scale = torch::maximum(before[k].abs(), a[k].second.detach().abs());
        const at::Tensor ulp = torch::nextafter(scale, torch::full_like(scale, INFINITY)) - scale;
        const at::Tensor d[3] = {((a[k].second - b[k].second).abs() / ulp).ceil().to(torch::kLong),
                                 ulps(r.exp_avg, o.exp_avg), ulps(r.exp_avg_sq, o.exp_avg_sq)};
        for (int i = 0; i < 3; ++i) {
          worst[i] = std::max(worst[i], d[i].max().item<int64_t>());
          differing[i] += d[i].ne(0).sum().item<int64_t>();
        }
        elements += d[0].numel();
        // The next update starts from the same state.
        b[k].second.detach().copy_(a[k].second);
        o.exp_avg.copy_(r.exp_avg);
        o.exp_avg_sq.copy_(r.exp_avg_sq);
      }
    }
    const char* what[3] = {"parameter", "exp_avg", "exp_avg_sq"};
    for (int i = 0; i < 3; ++i) {
      EXPECT_LE(worst[i], 1) << what[i] << (pieces ? ", pieces" : ", whole tensors");
      std::printf("fused AdamW (%s): %lld of %lld %s elements differ from the written-out update, by <= %lld ulp\n",
                  pieces ? "pieces" : "whole tensors", static_cast<long long>(differing[i]),
                  static_cast<long long>(elements), what[i], static_cast<long long>(worst[i]));
    }
  }
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
