// GradientBucketer over real ranks: its averaged gradients equal a plain per-tensor allreduce bit for
// bit, with and without gradient accumulation, with parameters unused on some ranks; in scatter mode
// (dist.zero = 2) each rank's pieces are its chunk of those averages; buckets launch during backward, in
// bucket order; mismatched parameters fail on every rank with the same message.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "dist/gradient_bucketer.h"
#include "tests/mpi/forwarding_communicator.h"
#include "tests/mpi/mpi_main.h"

namespace vtb::dist {
namespace {

using vtb::testing::comm;

// An MLP of 6 Linear layers (~0.4 MiB of float32 parameters): with a 64 KiB first bucket and 128 KiB
// buckets it makes more than 3 buckets.
torch::nn::Sequential make_mlp() {
  torch::manual_seed(1234);  // the same initial weights on every rank, as after a broadcast
  return torch::nn::Sequential(torch::nn::Linear(64, 128), torch::nn::Tanh(), torch::nn::Linear(128, 128),
                               torch::nn::Tanh(), torch::nn::Linear(128, 192), torch::nn::Tanh(),
                               torch::nn::Linear(192, 128), torch::nn::Tanh(), torch::nn::Linear(128, 64),
                               torch::nn::Tanh(), torch::nn::Linear(64, 10));
}

NamedTensors named(torch::nn::Module& m) {
  NamedTensors out;
  for (const auto& p : m.named_parameters()) out.emplace_back(p.key(), p.value());
  return out;
}

// Rank- and micro-step-specific data, so every rank's gradient differs.
torch::Tensor batch(int micro) {
  torch::manual_seed(100 + 10 * comm().rank() + micro);
  return torch::randn({16, 64});
}

// The reference: local backward passes (accumulating in .grad), then one plain allreduce per tensor.
std::vector<torch::Tensor> reference_grads(int micro_steps, bool skip_last_layer_on_rank1) {
  auto mlp = make_mlp();
  for (int m = 0; m < micro_steps; ++m) {
    torch::Tensor x = batch(m);
    torch::Tensor y =
        (skip_last_layer_on_rank1 && comm().rank() == 1) ? mlp->forward(x).sum() : mlp->forward(x).pow(2).mean();
    y.backward();
  }
  std::vector<torch::Tensor> grads;
  for (auto& p : mlp->parameters()) {
    torch::Tensor g = p.grad().defined() ? p.grad().clone() : torch::zeros_like(p);
    comm().allreduce(g, ReduceOp::Avg);
    grads.push_back(g);
  }
  return grads;
}

// Backward over `micro_steps` micro-batches through `bucketer`, synchronising on the last.
void run_micro_steps(torch::nn::Sequential& mlp, GradientBucketer& bucketer, int micro_steps,
                     bool skip_last_layer_on_rank1) {
  for (int m = 0; m < micro_steps; ++m) {
    bucketer.prepare(/*sync=*/m == micro_steps - 1);
    torch::Tensor x = batch(m);
    torch::Tensor y =
        (skip_last_layer_on_rank1 && comm().rank() == 1) ? mlp->forward(x).sum() : mlp->forward(x).pow(2).mean();
    y.backward();
  }
  bucketer.finish();
}

// The same through the bucketer.
std::vector<torch::Tensor> bucketed_grads(int micro_steps, bool skip_last_layer_on_rank1, size_t* buckets = nullptr) {
  auto mlp = make_mlp();
  GradientBucketer bucketer(named(*mlp), comm(), BucketOptions{64 << 10, 128 << 10});
  if (buckets) *buckets = bucketer.bucket_count();
  run_micro_steps(mlp, bucketer, micro_steps, skip_last_layer_on_rank1);
  std::vector<torch::Tensor> grads;
  for (auto& p : mlp->parameters()) grads.push_back(p.grad().clone());
  return grads;
}

// Scatter mode (dist.zero = 2): this rank's piece of every bucket, and the .grad left on the parameters.
std::vector<torch::Tensor> scattered_pieces(int micro_steps, bool skip_last_layer_on_rank1,
                                            std::vector<std::vector<size_t>>& bucket_params, size_t& grads_left) {
  auto mlp = make_mlp();
  BucketOptions options{64 << 10, 128 << 10};
  options.scatter = true;
  GradientBucketer bucketer(named(*mlp), comm(), options);
  run_micro_steps(mlp, bucketer, micro_steps, skip_last_layer_on_rank1);
  grads_left = 0;
  for (auto& p : mlp->parameters()) grads_left += p.grad().defined() ? 1 : 0;
  std::vector<torch::Tensor> pieces;
  for (size_t b = 0; b < bucketer.bucket_count(); ++b) {
    bucket_params.push_back(bucketer.bucket_params(b));
    pieces.push_back(bucketer.gradient_piece(b).clone());
  }
  return pieces;
}

// Two ranks: a + b has one rounding whatever the message layout, so bucketed and per-tensor results
// must be bit-identical. With more ranks MPI picks its reduction algorithm (and so the summation order)
// by message size, which differs between a bucket and a single tensor: equal up to rounding only.
void expect_bit_identical(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    if (comm().size() == 2) {
      EXPECT_TRUE(torch::equal(a[i], b[i]))
          << "tensor " << i << " max abs diff " << (a[i] - b[i]).abs().max().item<double>();
    } else {
      EXPECT_TRUE(torch::allclose(a[i], b[i], 1e-6, 1e-9)) << "tensor " << i;
    }
  }
}

TEST(GradientBucketer, EqualsPlainAllreduceBitForBit) {
  size_t buckets = 0;
  const auto got = bucketed_grads(1, false, &buckets);
  EXPECT_GE(buckets, 3u);
  expect_bit_identical(got, reference_grads(1, false));
}

TEST(GradientBucketer, EqualsPlainAllreduceWithGradientAccumulation) {
  expect_bit_identical(bucketed_grads(3, false), reference_grads(3, false));
}

// Note [Scattered buckets]: each rank's pieces are its chunk of the reference averages laid out as the buckets
// (parameters flattened in bucket order, zero-padded to size() equal chunks); no rank keeps a .grad.
TEST(GradientBucketer, ScatterModeHoldsThisRanksChunkOfTheAverageOnly) {
  for (int micro_steps : {1, 3}) {
    std::vector<std::vector<size_t>> bucket_params;
    size_t grads_left = 0;
    const auto got = scattered_pieces(micro_steps, /*skip_last_layer_on_rank1=*/true, bucket_params, grads_left);
    const auto reference = reference_grads(micro_steps, true);
    EXPECT_EQ(grads_left, 0u) << "parameters still holding a full gradient";
    ASSERT_GE(got.size(), 3u);
    std::vector<torch::Tensor> expected;
    for (size_t b = 0; b < got.size(); ++b) {
      std::vector<torch::Tensor> flat;
      for (size_t i : bucket_params[b]) flat.push_back(reference[i].reshape({-1}));
      const torch::Tensor bucket = torch::cat(flat);
      const int64_t k = (bucket.numel() + comm().size() - 1) / comm().size();
      ASSERT_EQ(got[b].numel(), k) << "bucket " << b;
      const torch::Tensor padded = torch::cat({bucket, torch::zeros({k * comm().size() - bucket.numel()})});
      expected.push_back(padded.narrow(0, comm().rank() * k, k));
    }
    expect_bit_identical(got, expected);
  }
}

// Ranks compute different losses (rank 1 a plain sum), as ranks drawing batches of different sources do.
TEST(GradientBucketer, DifferentLossesPerRank) {
  expect_bit_identical(bucketed_grads(2, true), reference_grads(2, true));
}

TEST(GradientBucketer, ParametersWithoutGradientOnSomeRanks) {
  // A "speech" branch used only on even ranks, like the encoder on a text-only batch.
  auto build = [] {
    torch::manual_seed(7);
    return std::make_pair(torch::nn::Linear(32, 32), torch::nn::Linear(32, 32));
  };
  auto run = [&](bool bucketed) {
    auto [shared, speech] = build();
    NamedTensors params;
    for (const auto& p : shared->named_parameters()) params.emplace_back("shared." + p.key(), p.value());
    for (const auto& p : speech->named_parameters()) params.emplace_back("speech." + p.key(), p.value());
    std::unique_ptr<GradientBucketer> bucketer;
    if (bucketed) bucketer = std::make_unique<GradientBucketer>(params, comm(), BucketOptions{4096, 4096});
    if (bucketer) bucketer->prepare(true);
    torch::manual_seed(comm().rank());
    torch::Tensor x = torch::randn({4, 32});
    torch::Tensor h = comm().rank() % 2 == 0 ? speech->forward(x) : x;
    shared->forward(h).pow(2).sum().backward();
    std::vector<torch::Tensor> grads;
    if (bucketer) {
      bucketer->finish();
      EXPECT_EQ(bucketer->unused_in_last_step(), comm().rank() % 2 == 0 ? 0u : 2u);
    }
    for (auto& [name, p] : params) {
      torch::Tensor g = p.grad().defined() ? p.grad().clone() : torch::zeros_like(p);
      if (!bucketed) comm().allreduce(g, ReduceOp::Avg);
      grads.push_back(g);
    }
    return grads;
  };
  expect_bit_identical(run(true), run(false));
}

// Later steps: .grad is then a view into the buckets and backward accumulates into it in place.
// Zeroing through the bucketer, or setting gradients to none, must both give the reference again.
TEST(GradientBucketer, LaterStepsWithZeroedOrResetGradients) {
  for (bool set_to_none : {false, true}) {
    auto mlp = make_mlp();
    GradientBucketer bucketer(named(*mlp), comm(), BucketOptions{64 << 10, 128 << 10});
    for (int step = 0; step < 3; ++step) {
      if (set_to_none) {
        for (auto& p : mlp->parameters()) p.mutable_grad() = torch::Tensor();
      } else {
        bucketer.zero_grad();
      }
      for (int m = 0; m < 2; ++m) {
        bucketer.prepare(m == 1);
        mlp->forward(batch(m)).pow(2).mean().backward();
      }
      bucketer.finish();
    }
    std::vector<torch::Tensor> got;
    for (auto& p : mlp->parameters()) got.push_back(p.grad().clone());
    expect_bit_identical(got, reference_grads(2, false));  // same weights and data every step
  }
}

TEST(GradientBucketer, AgreesWithAnIndependentAverageOfGatheredGradients) {
  // Second reference that does not use allreduce: gather every rank's local gradient and average here.
  auto mlp = make_mlp();
  mlp->forward(batch(0)).pow(2).mean().backward();
  std::vector<torch::Tensor> expected;
  for (auto& p : mlp->parameters()) {
    torch::Tensor all = comm().allgather(p.grad().contiguous());
    expected.push_back(comm().size() == 2 ? (all[0] + all[1]) / 2 : all.sum(0) / comm().size());
  }
  const auto got = bucketed_grads(1, false);
  for (size_t i = 0; i < got.size(); ++i) {
    if (comm().size() == 2) {
      EXPECT_TRUE(torch::equal(got[i], expected[i])) << "tensor " << i;  // a+b is exact-order-free
    } else {
      EXPECT_TRUE(torch::allclose(got[i], expected[i], 1e-6, 1e-7)) << "tensor " << i;
    }
  }
}

// Records when allreduces are issued relative to the end of backward.
class RecordingCommunicator final : public vtb::testing::ForwardingCommunicator {
 public:
  using ForwardingCommunicator::ForwardingCommunicator;
  std::shared_ptr<Work> allreduce_async(at::Tensor t, ReduceOp op) override {
    issued.push_back({t.numel(), backward_done});
    return inner_.allreduce_async(t, op);
  }
  std::shared_ptr<Work> reduce_scatter_async(at::Tensor t, at::Tensor out, ReduceOp op) override {
    issued.push_back({t.numel(), backward_done});
    return inner_.reduce_scatter_async(t, out, op);
  }

  struct Issue {
    int64_t numel;
    bool after_backward;
  };
  std::vector<Issue> issued;
  bool backward_done = false;
};

// Allreduces, or in scatter mode reduce-scatters of the buckets padded to size() pieces.
TEST(GradientBucketer, LaunchesEveryBucketDuringBackwardInBucketOrder) {
  for (bool scatter : {false, true}) {
    RecordingCommunicator rec(comm());
    auto mlp = make_mlp();
    BucketOptions options{64 << 10, 128 << 10};
    options.scatter = scatter;
    GradientBucketer bucketer(named(*mlp), rec, options);
    bucketer.prepare(true);
    mlp->forward(batch(0)).pow(2).mean().backward();
    rec.backward_done = true;
    bucketer.finish();
    ASSERT_EQ(rec.issued.size(), bucketer.bucket_count());
    for (size_t b = 0; b < rec.issued.size(); ++b) {
      EXPECT_FALSE(rec.issued[b].after_backward) << "bucket " << b << " was launched only after backward";
      const int64_t numel = static_cast<int64_t>(bucketer.bucket_bytes(b) / 4);
      const int64_t launched = scatter ? bucketer.gradient_piece(b).numel() * comm().size() : numel;
      EXPECT_EQ(rec.issued[b].numel, launched) << "bucket " << b << ", scatter " << scatter;
      EXPECT_LT(launched - numel, comm().size()) << "bucket " << b;
    }
    // The first bucket holds the last layer's parameters: backward produces them first.
    EXPECT_EQ(bucketer.bucket_names(0).front(), "10.bias");
  }
}

TEST(GradientBucketer, NonSyncingMicroStepsDoNotCommunicate) {
  RecordingCommunicator rec(comm());
  auto mlp = make_mlp();
  GradientBucketer bucketer(named(*mlp), rec, BucketOptions{64 << 10, 128 << 10});
  const size_t after_construction = rec.issued.size();
  bucketer.prepare(false);
  mlp->forward(batch(0)).pow(2).mean().backward();
  EXPECT_EQ(rec.issued.size(), after_construction);
  EXPECT_THROW(bucketer.finish(), std::logic_error);
}

TEST(ParameterCheck, MismatchFailsOnEveryRankNamingTheFirstDifference) {
  NamedTensors params{{"encoder.w", torch::zeros({4, 4})},
                      {"adapter.w", torch::zeros({comm().rank() == 1 ? 3 : 2, 8})},
                      {"lora.a", torch::zeros({2})}};
  try {
    verify_same_parameters(comm(), params);
    FAIL() << "rank " << comm().rank() << " did not see the mismatch";
  } catch (const PeerMismatchError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("parameter #1: 'adapter.w float32 [2, 8]' on rank 0 vs 'adapter.w float32 [3, 8]' on rank 1"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("Ranks differing from rank 0: 1."), std::string::npos) << m;
  }
}

TEST(ParameterCheck, SameParametersPass) {
  NamedTensors params{{"a", torch::zeros({4, 4})}, {"b", torch::zeros({2}, torch::kBFloat16)}};
  EXPECT_NO_THROW(verify_same_parameters(comm(), params));
}

}  // namespace
}  // namespace vtb::dist
