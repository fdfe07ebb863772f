// plan_buckets: reverse registration order, first bucket small, caps respected, kinds never mixed.
#include <gtest/gtest.h>

#include "dist/gradient_bucketer.h"

namespace vtb::dist {
namespace {

std::vector<TensorFootprint> footprints(std::initializer_list<size_t> bytes, const std::string& kind = "float32@cpu") {
  std::vector<TensorFootprint> out;
  for (size_t b : bytes) out.push_back({b, kind});
  return out;
}

TEST(PlanBuckets, ReverseOrderFirstBucketSmall) {
  // Ten 100-byte tensors, first bucket 250 B, others 400 B: [9 8] [7 6 5 4] [3 2 1 0].
  BucketOptions o{250, 400};
  const auto plan = plan_buckets(footprints({100, 100, 100, 100, 100, 100, 100, 100, 100, 100}), o);
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[0], (std::vector<size_t>{9, 8}));
  EXPECT_EQ(plan[1], (std::vector<size_t>{7, 6, 5, 4}));
  EXPECT_EQ(plan[2], (std::vector<size_t>{3, 2, 1, 0}));
}

TEST(PlanBuckets, OversizedTensorGetsItsOwnBucket) {
  BucketOptions o{100, 100};
  const auto plan = plan_buckets(footprints({10, 500, 10}), o);
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[0], (std::vector<size_t>{2}));
  EXPECT_EQ(plan[1], (std::vector<size_t>{1}));
  EXPECT_EQ(plan[2], (std::vector<size_t>{0}));
}

TEST(PlanBuckets, KindsAreNeverMixed) {
  std::vector<TensorFootprint> t = footprints({10, 10, 10, 10});
  t[1].kind = "bfloat16@cpu";
  const auto plan = plan_buckets(t, BucketOptions{1000, 1000});
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[0], (std::vector<size_t>{3, 2}));
  EXPECT_EQ(plan[1], (std::vector<size_t>{1}));
  EXPECT_EQ(plan[2], (std::vector<size_t>{0}));
}

TEST(PlanBuckets, EveryTensorExactlyOnceAndCapsHold) {
  std::vector<TensorFootprint> t;
  for (size_t i = 0; i < 200; ++i) t.push_back({(i * 37) % 1000 + 1, "float32@cpu"});
  const BucketOptions o{1500, 4000};
  const auto plan = plan_buckets(t, o);
  std::vector<int> seen(t.size(), 0);
  for (size_t b = 0; b < plan.size(); ++b) {
    size_t bytes = 0;
    for (size_t i : plan[b]) {
      ++seen[i];
      bytes += t[i].bytes;
    }
    if (plan[b].size() > 1) {
      EXPECT_LE(bytes, b == 0 ? o.first_bucket_bytes : o.bucket_bytes) << "bucket " << b;
    }
  }
  for (size_t i = 0; i < t.size(); ++i) EXPECT_EQ(seen[i], 1) << "tensor " << i;
}

TEST(PlanBuckets, Empty) { EXPECT_TRUE(plan_buckets({}, BucketOptions{}).empty()); }

}  // namespace
}  // namespace vtb::dist
