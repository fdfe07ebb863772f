// Sharded AdamW (dist.zero = 1 and 2, Note [Optimizer shards]): the plan covers every element exactly once and
// balances the ranks; the ranks' sharded updates put together equal the unsharded update bit for bit, from
// .grad or from gradient pieces; and
// moments saved over one world size come back element for element over another, through real checkpoint
// files (Note [Re-sharding the optimizer]) — checked against the moments themselves, not a saved output.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <map>

#include "ckpt/layout.h"
#include "optim/adamw.h"
#include "optim/sharding.h"
#include "train/training_state.h"

namespace vtb {
namespace {

namespace fs = std::filesystem;
using optim::AdamW;
using optim::ShardLayout;

const std::vector<int64_t> kNumel{7, 15, 11, 4, 30};
const std::vector<std::vector<size_t>> kBuckets{{4, 3}, {2}, {1, 0}};  // reverse order, as the bucketer plans

std::vector<std::pair<std::string, at::Tensor>> make_params() {
  torch::manual_seed(1);
  return {{"a.weight", torch::randn({7})},
          {"b.weight", torch::randn({3, 5})},
          {"c.bias", torch::randn({11})},
          {"d.weight", torch::randn({2, 2})},
          {"e.weight", torch::randn({5, 6})}};
}

TEST(ShardPlan, EveryElementOnceAndBalanced) {
  for (int world : {1, 2, 3, 4, 7}) {
    std::map<size_t, std::vector<int>> owner;  // param → owner of each element
    for (size_t i = 0; i < kNumel.size(); ++i) owner[i].assign(static_cast<size_t>(kNumel[i]), -1);
    std::vector<int64_t> owned;
    for (int r = 0; r < world; ++r) {
      const ShardLayout layout = optim::plan_shards(kNumel, kBuckets, world, r);
      owned.push_back(layout.owned());
      for (const auto& p : layout.mine)
        for (int64_t e = p.offset; e < p.offset + p.length; ++e) {
          ASSERT_EQ(owner[p.param][static_cast<size_t>(e)], -1) << "element owned twice";
          owner[p.param][static_cast<size_t>(e)] = r;
        }
    }
    for (const auto& [param, owners] : owner)
      for (int o : owners) ASSERT_GE(o, 0) << "world " << world << ": an element of param " << param << " unowned";
    // Each rank holds at most ceil(bucket / world) of every bucket: within one element per bucket of 1/world.
    const int64_t total = 7 + 15 + 11 + 4 + 30;
    for (int64_t n : owned) EXPECT_LE(n, total / world + static_cast<int64_t>(kBuckets.size())) << "world " << world;
  }
  // Hand-computed for 2 ranks: bucket {e (30), d (4)} has 34 elements, 17 each: rank 1 owns e[17:30) and d[0:4).
  const ShardLayout r1 = optim::plan_shards(kNumel, kBuckets, 2, 1);
  ASSERT_GE(r1.mine.size(), 2u);
  EXPECT_EQ(r1.mine[0].param, 4u);
  EXPECT_EQ(r1.mine[0].offset, 17);
  EXPECT_EQ(r1.mine[0].length, 13);
  EXPECT_EQ(r1.mine[1].param, 3u);
  EXPECT_EQ(r1.mine[1].offset, 0);
  EXPECT_EQ(r1.mine[1].length, 4);
  EXPECT_EQ(r1.mine[1].at, 13);
}

// Rank `layout.rank`'s piece of every bucket of `grads`, as a reduce-scatter of the bucket hands it (dist.zero =
// 2): the bucket's parameters flattened in bucket order, zero-padded to world pieces, piece `rank`.
std::vector<at::Tensor> bucket_pieces(const std::vector<at::Tensor>& grads, const ShardLayout& layout) {
  std::vector<at::Tensor> out;
  for (size_t b = 0; b < layout.buckets.size(); ++b) {
    std::vector<at::Tensor> flat;
    for (size_t i : layout.buckets[b]) flat.push_back(grads[i].reshape({-1}));
    const int64_t k = layout.piece_numel[b];
    const at::Tensor bucket = torch::cat(flat);
    const at::Tensor padded = torch::cat({bucket, torch::zeros({k * layout.world - bucket.numel()})});
    out.push_back(padded.narrow(0, layout.rank * k, k).clone());
  }
  return out;
}

// Twelve steps: every rank's sharded update, stitched together, equals one unsharded AdamW bit for bit,
// whether the ranks read the gradients from .grad (dist.zero = 1) or from their bucket pieces (2).
void expect_ranks_together_equal_the_whole_update(bool from_pieces) {
  const int world = 3;
  auto whole_params = make_params();
  for (auto& [n, p] : whole_params) p.requires_grad_();
  AdamW whole(whole_params, {});
  std::vector<std::vector<std::pair<std::string, at::Tensor>>> rank_params;
  std::vector<std::unique_ptr<AdamW>> ranks;
  std::vector<ShardLayout> layouts;
  for (int r = 0; r < world; ++r) {
    auto ps = make_params();
    for (auto& [n, p] : ps) p.requires_grad_();
    rank_params.push_back(ps);
    ranks.push_back(std::make_unique<AdamW>(ps, optim::AdamWOptions{}));
    layouts.push_back(optim::plan_shards(kNumel, kBuckets, world, r));
    ranks.back()->shard(layouts.back());
  }
  for (int step = 1; step <= 12; ++step) {
    std::vector<at::Tensor> grads;
    for (size_t i = 0; i < whole_params.size(); ++i) {
      const at::Tensor g = grads.emplace_back(torch::randn(whole_params[i].second.sizes()));
      whole_params[i].second.mutable_grad() = g.clone();
      if (!from_pieces)
        for (int r = 0; r < world; ++r) rank_params[r][i].second.mutable_grad() = g.clone();
    }
    whole.step(1e-2);
    for (int r = 0; r < world; ++r) {
      if (from_pieces) {
        ranks[r]->step(1e-2, bucket_pieces(grads, layouts[r]));
      } else {
        ranks[r]->step(1e-2);
      }
    }
    // The all-gather: each element from the rank that owns it.
    torch::NoGradGuard no_grad;
    for (int r = 0; r < world; ++r)
      for (const auto& p : layouts[r].mine)
        for (int q = 0; q < world; ++q)
          rank_params[q][p.param]
              .second.view({-1})
              .narrow(0, p.offset, p.length)
              .copy_(rank_params[r][p.param].second.view({-1}).narrow(0, p.offset, p.length));
  }
  for (int r = 0; r < world; ++r)
    for (size_t i = 0; i < whole_params.size(); ++i)
      EXPECT_TRUE(torch::equal(rank_params[r][i].second, whole_params[i].second)) << whole_params[i].first;
}

TEST(ShardedAdamW, RanksTogetherEqualTheWholeUpdate) { expect_ranks_together_equal_the_whole_update(false); }

TEST(ShardedAdamW, RanksTogetherEqualTheWholeUpdateFromGradientPieces) {
  expect_ranks_together_equal_the_whole_update(true);
}

// Moments as a checkpoint of `world` ranks (sharded when zero) holds them, written through write_training_state.
void save_moments(const std::string& folder, const std::map<std::string, at::Tensor>& m,
                  const std::map<std::string, at::Tensor>& v, int world, bool zero) {
  fs::remove_all(folder);
  fs::create_directories(folder);
  auto params = make_params();
  for (int r = 0; r < world; ++r) {
    train::TrainingSnapshot snap;
    snap.rank = r;
    snap.world = world;
    snap.rng = torch::zeros({4}, torch::kLong);
    snap.zero = zero ? 1 : 0;
    if (zero) {
      for (const auto& p : optim::plan_shards(kNumel, kBuckets, world, r).mine) {
        const std::string& name = params[p.param].first;
        snap.optim.push_back({name, m.at(name).view({-1}).narrow(0, p.offset, p.length).clone(),
                              v.at(name).view({-1}).narrow(0, p.offset, p.length).clone(), 5, p.offset});
      }
    } else if (r == 0) {
      for (const auto& [name, t] : params) snap.optim.push_back({name, m.at(name), v.at(name), 5, 0});
    }
    train::write_training_state(folder, snap);
  }
}

// The restored moments of every rank of `world` hold exactly the original elements.
void expect_restored(const std::string& folder, const std::map<std::string, at::Tensor>& m,
                     const std::map<std::string, at::Tensor>& v, int world, bool zero) {
  for (int r = 0; r < world; ++r) {
    AdamW opt(make_params(), {});
    if (zero) opt.shard(optim::plan_shards(kNumel, kBuckets, world, r));
    train::restore_optimizer_state(folder, opt);
    for (size_t i = 0; i < opt.params().size(); ++i) {
      const auto& [name, p] = opt.params()[i];
      const optim::ShardPiece* piece = zero ? opt.piece(i) : nullptr;
      if (zero && piece == nullptr) {
        EXPECT_EQ(opt.state().count(name), 0u);
        continue;
      }
      const int64_t offset = piece ? piece->offset : 0, length = piece ? piece->length : p.numel();
      const optim::ParamState& s = opt.state().at(name);
      EXPECT_EQ(s.step, 5);
      EXPECT_TRUE(torch::equal(s.exp_avg.reshape({-1}), m.at(name).view({-1}).narrow(0, offset, length)))
          << folder << " rank " << r << " " << name;
      EXPECT_TRUE(torch::equal(s.exp_avg_sq.reshape({-1}), v.at(name).view({-1}).narrow(0, offset, length)));
      if (!zero) EXPECT_EQ(s.exp_avg.sizes(), p.sizes());
    }
  }
}

// Moments to save: random, so every element is told apart from its neighbours.
void random_moments(std::map<std::string, at::Tensor>& m, std::map<std::string, at::Tensor>& v) {
  for (const auto& [name, p] : make_params()) {
    m[name] = torch::randn(p.sizes());
    v[name] = torch::rand(p.sizes());
  }
}

TEST(ShardedAdamW, MomentsSurviveAnyReshardingElementForElement) {
  std::map<std::string, at::Tensor> m, v;
  random_moments(m, v);
  const std::string root = (fs::temp_directory_path() / "vtb_test_optimizer_shards").string();
  save_moments(root + "/w2", m, v, 2, true);      // saved by 2 ranks, sharded
  expect_restored(root + "/w2", m, v, 3, true);   // 2 → 3
  expect_restored(root + "/w2", m, v, 2, true);   // 2 → 2
  expect_restored(root + "/w2", m, v, 1, false);  // 2 → dist.zero = 0
  save_moments(root + "/w3", m, v, 3, true);
  expect_restored(root + "/w3", m, v, 2, true);  // 3 → 2
  save_moments(root + "/z0", m, v, 2, false);    // unsharded → sharded over 3
  expect_restored(root + "/z0", m, v, 3, true);
  fs::remove_all(root);
}

TEST(ShardedAdamW, AMissingShardIsAnError) {
  std::map<std::string, at::Tensor> m, v;
  random_moments(m, v);
  const std::string folder = (fs::temp_directory_path() / "vtb_test_optimizer_shards_missing").string();
  save_moments(folder, m, v, 3, true);
  save_moments(folder + ".other", m, v, 2, true);
  fs::copy_file(folder + ".other/rank_1.h5", ckpt::rank_file(folder, 1), fs::copy_options::overwrite_existing);
  AdamW opt(make_params(), {});
  EXPECT_THROW(train::restore_optimizer_state(folder, opt), std::runtime_error);
  fs::remove_all(folder);
  fs::remove_all(folder + ".other");
}

}  // namespace
}  // namespace vtb
