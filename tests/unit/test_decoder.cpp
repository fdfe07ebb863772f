// DecoderLM: KV-cache decoding equals the full forward, causality, padded batches, LoRA starting equal
// to the base, merge equal to unmerged, fused LoRA equal to its PEFT-style separate form, gradients only
// on LoRA, and Hugging Face save/load round trips.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <array>
#include <vector>

#include "compat/bf16_autocast.h"
#include "model/attention.h"
#include "model/decoder_lm.h"

namespace vtb::model {
namespace {

DecoderConfig tiny(const std::string& family) {
  DecoderConfig c;
  c.family = family;
  c.vocab = 53;
  c.hidden = 32;
  c.intermediate = 64;
  c.layers = 2;
  c.heads = 4;
  c.kv_heads = family == "gemma" ? 1 : 2;
  c.head_dim = family == "gemma" ? 12 : 8;
  c.tie_embeddings = family == "gemma";
  return c;
}

LoraConfig lora(LoraLayout layout) {
  LoraConfig l;
  l.rank = 4;
  l.alpha = 8;
  l.layout = layout;
  return l;
}

// Gives every LoRA B random values, so adapters change the output.
void randomize_lora(DecoderLM& lm) {
  torch::NoGradGuard no_grad;
  for (auto& p : lm->named_parameters())
    if (is_lora_parameter(p.key())) p.value().normal_(0, 0.2);
}

void copy_base(DecoderLM& from, DecoderLM& to) {
  torch::NoGradGuard no_grad;
  auto src = from->named_parameters();
  for (auto& p : to->named_parameters())
    if (!is_lora_parameter(p.key())) p.value().copy_(src[p.key()]);
}

double max_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

class Families : public ::testing::TestWithParam<std::string> {};

TEST_P(Families, KvCacheDecodingEqualsFullForward) {
  torch::manual_seed(0);
  DecoderLM lm(tiny(GetParam()), lora(LoraLayout::Fused));
  randomize_lora(lm);
  lm->eval();
  torch::NoGradGuard no_grad;
  at::Tensor ids = torch::randint(0, 53, {2, 9}, torch::kLong);
  at::Tensor full = lm->forward(ids);

  KVCache cache = lm->new_cache();
  std::vector<at::Tensor> steps;
  // A 4-token prefix, then one token at a time.
  for (auto [start, len] : std::vector<std::pair<int64_t, int64_t>>{{0, 4}, {4, 1}, {5, 1}, {6, 1}, {7, 1}, {8, 1}}) {
    at::Tensor chunk = ids.narrow(1, start, len);
    at::Tensor pos = torch::arange(start, start + len, torch::kLong).expand({2, len});
    steps.push_back(lm->logits(lm->hidden_states(lm->embed(chunk), pos, at::Tensor(), &cache)));
  }
  EXPECT_EQ(cache.length(), 9);
  EXPECT_LE(max_diff(torch::cat(steps, 1), full), 1e-5);
}

TEST_P(Families, LogitsAtTDoNotDependOnLaterTokens) {
  torch::manual_seed(1);
  DecoderLM lm(tiny(GetParam()));
  lm->eval();
  torch::NoGradGuard no_grad;
  at::Tensor a = torch::randint(0, 53, {1, 10}, torch::kLong);
  at::Tensor b = a.clone();
  b.narrow(1, 6, 4).random_(0, 53);
  at::Tensor la = lm->forward(a), lb = lm->forward(b);
  EXPECT_TRUE(torch::equal(la.narrow(1, 0, 6), lb.narrow(1, 0, 6)));
  EXPECT_GT(max_diff(la.narrow(1, 6, 4), lb.narrow(1, 6, 4)), 1e-3);
}

TEST_P(Families, PaddedBatchEqualsEachExampleAlone) {
  torch::manual_seed(2);
  DecoderLM lm(tiny(GetParam()));
  lm->eval();
  torch::NoGradGuard no_grad;
  const std::vector<int64_t> lengths{7, 3, 5};
  at::Tensor ids = torch::zeros({3, 7}, torch::kLong);
  at::Tensor valid = torch::zeros({3, 7}, torch::kBool);
  std::vector<at::Tensor> alone;
  for (int64_t b = 0; b < 3; ++b) {
    at::Tensor x = torch::randint(1, 53, {1, lengths[b]}, torch::kLong);
    ids[b].narrow(0, 0, lengths[b]).copy_(x[0]);
    valid[b].narrow(0, 0, lengths[b]).fill_(true);
    alone.push_back(lm->forward(x)[0]);
  }
  at::Tensor pos = torch::arange(7, torch::kLong).expand({3, 7});
  at::Tensor batched = lm->logits(lm->hidden_states(lm->embed(ids), pos, valid));
  for (int64_t b = 0; b < 3; ++b)
    EXPECT_LE(max_diff(batched[b].narrow(0, 0, lengths[b]), alone[b]), 1e-5) << "example " << b;
}

TEST_P(Families, FreshLoraEqualsBaseExactly) {
  for (const auto& [name, layout] : kLoraLayouts) {
    torch::manual_seed(3);
    DecoderLM base(tiny(GetParam()));
    DecoderLM tuned(tiny(GetParam()), lora(layout));
    copy_base(base, tuned);
    torch::NoGradGuard no_grad;
    at::Tensor ids = torch::randint(0, 53, {2, 6}, torch::kLong);
    EXPECT_TRUE(torch::equal(base->forward(ids), tuned->forward(ids))) << name;
  }
}

TEST_P(Families, MergedEqualsUnmergedAndUnmergeRestoresTheBase) {
  for (const auto& [name, layout] : kLoraLayouts) {
    torch::manual_seed(4);
    DecoderLM lm(tiny(GetParam()), lora(layout));
    randomize_lora(lm);
    torch::NoGradGuard no_grad;
    at::Tensor ids = torch::randint(0, 53, {2, 6}, torch::kLong);
    at::Tensor before = lm->forward(ids);
    at::Tensor q_before = lm->model->layers[0]->as<DecoderLayer>()->self_attn->q_proj->weight.clone();
    lm->merge_lora();
    at::Tensor merged = lm->forward(ids);
    EXPECT_LE(max_diff(merged, before), 1e-5) << name;
    EXPECT_GT(max_diff(lm->model->layers[0]->as<DecoderLayer>()->self_attn->q_proj->weight, q_before), 1e-4);
    lm->unmerge_lora();
    EXPECT_LE(max_diff(lm->model->layers[0]->as<DecoderLayer>()->self_attn->q_proj->weight, q_before), 1e-6);
    EXPECT_LE(max_diff(lm->forward(ids), before), 1e-5) << name;
  }
}

TEST_P(Families, FusedLoraEqualsSeparateAdaptersSharingA) {
  // Note [LoRA layouts]: q, k, v get the fused A and their own rows of B; gate, up likewise.
  torch::manual_seed(5);
  DecoderLM fused(tiny(GetParam()), lora(LoraLayout::Fused));
  randomize_lora(fused);
  DecoderLM separate(tiny(GetParam()), lora(LoraLayout::Separate));
  copy_base(fused, separate);
  torch::NoGradGuard no_grad;
  for (int64_t i = 0; i < 2; ++i) {
    auto* f = fused->model->layers[i]->as<DecoderLayer>();
    auto* s = separate->model->layers[i]->as<DecoderLayer>();
    int64_t row = 0;
    for (auto& ad : s->self_attn->qkv.separate) {
      ad->A.copy_(f->self_attn->qkv.fused->A);
      ad->B.copy_(f->self_attn->qkv.fused->B.narrow(0, row, ad->B.size(0)));
      row += ad->B.size(0);
    }
    EXPECT_EQ(row, f->self_attn->qkv.fused->B.size(0));
    s->self_attn->o_lora->A.copy_(f->self_attn->o_lora->A);
    s->self_attn->o_lora->B.copy_(f->self_attn->o_lora->B);
    row = 0;
    for (auto& ad : s->mlp->gate_up.separate) {
      ad->A.copy_(f->mlp->gate_up.fused->A);
      ad->B.copy_(f->mlp->gate_up.fused->B.narrow(0, row, ad->B.size(0)));
      row += ad->B.size(0);
    }
    s->mlp->down_lora->A.copy_(f->mlp->down_lora->A);
    s->mlp->down_lora->B.copy_(f->mlp->down_lora->B);
  }
  at::Tensor ids = torch::randint(0, 53, {2, 6}, torch::kLong);
  EXPECT_LE(max_diff(fused->forward(ids), separate->forward(ids)), 1e-5);
}

TEST_P(Families, OnlyLoraGetsGradientsWhenTheBaseIsFrozen) {
  torch::manual_seed(6);
  DecoderLM lm(tiny(GetParam()), lora(LoraLayout::Fused));
  randomize_lora(lm);
  lm->freeze_base();
  at::Tensor ids = torch::randint(0, 53, {2, 6}, torch::kLong);
  lm->forward(ids).logsumexp(-1).mean().backward();
  int lora_with_grad = 0;
  for (auto& p : lm->named_parameters()) {
    if (is_lora_parameter(p.key())) {
      EXPECT_TRUE(p.value().grad().defined()) << p.key();
      lora_with_grad += p.value().grad().defined() && p.value().grad().abs().sum().item<double>() > 0;
    } else {
      EXPECT_FALSE(p.value().grad().defined()) << p.key();
    }
  }
  EXPECT_EQ(lora_with_grad, 2 * 4 * 2);  // 2 layers × 4 adapters (qkv, o, gate_up, down) × (A, B)
}

TEST_P(Families, HuggingFaceFolderRoundTrip) {
  torch::manual_seed(7);
  DecoderLM lm(tiny(GetParam()), lora(LoraLayout::Fused));
  randomize_lora(lm);
  torch::NoGradGuard no_grad;
  at::Tensor ids = torch::randint(0, 53, {2, 6}, torch::kLong);
  const std::string dir = ::testing::TempDir() + "vtb_hf_" + GetParam();

  save_hf_decoder(lm, dir, /*merge_lora=*/false);  // the base alone
  DecoderLM base(tiny(GetParam()));
  copy_base(lm, base);
  EXPECT_TRUE(torch::equal(load_hf_decoder(dir, {})->forward(ids), base->forward(ids)));

  save_hf_decoder(lm, dir, /*merge_lora=*/true);  // LoRA merged in
  EXPECT_LE(max_diff(load_hf_decoder(dir, {})->forward(ids), lm->forward(ids)), 1e-5);
  EXPECT_FALSE(lm->lora_merged());
}

TEST(LoraCount, MatchesTheModulesAndThePaper) {
  for (const auto& [name, layout] : kLoraLayouts) {
    for (std::set<std::string> targets : {std::set<std::string>{"q", "k", "v", "o", "gate", "up", "down"},
                                          std::set<std::string>{"q", "v"}, std::set<std::string>{"k", "up", "down"}}) {
      for (const std::string family : {"gemma", "llama"}) {
        LoraConfig l = lora(layout);
        l.targets = targets;
        DecoderLM lm(tiny(family), l);
        int64_t counted = 0;
        for (auto& p : lm->named_parameters())
          if (is_lora_parameter(p.key())) counted += p.value().numel();
        EXPECT_EQ(lora_parameter_count(tiny(family), l), counted) << name << " " << family;
      }
    }
  }
  DecoderConfig gemma2b;  // the defaults are Gemma-1 2B
  EXPECT_EQ(gemma2b.parameter_count(), 2506172416);
  LoraConfig paper;
  paper.rank = 32;
  EXPECT_EQ(lora_parameter_count(gemma2b, paper), 35684352);  // the paper's 35.68 M (fused, NeMo layout)
  paper.layout = LoraLayout::Separate;
  EXPECT_EQ(lora_parameter_count(gemma2b, paper), 39223296);  // 39.2 M, one adapter per projection (PEFT)
}

TEST_P(Families, ActivationCheckpointingGivesTheSameGradients) {
  auto grads = [&](bool checkpointing) {
    torch::manual_seed(8);
    LoraConfig l = lora(LoraLayout::Fused);
    l.dropout = 0.3;  // the recomputation must replay the same dropout masks
    DecoderLM lm(tiny(GetParam()), l);
    randomize_lora(lm);
    lm->freeze_base();
    lm->set_activation_checkpointing(checkpointing);
    lm->train();
    at::Tensor ids = torch::randint(0, 53, {2, 6}, torch::kLong);
    torch::manual_seed(9);
    lm->forward(ids).logsumexp(-1).mean().backward();
    std::vector<at::Tensor> g;
    for (auto& p : lm->named_parameters())
      if (is_lora_parameter(p.key())) g.push_back(p.value().grad().clone());
    return g;
  };
  const auto plain = grads(false), checkpointed = grads(true);
  ASSERT_EQ(plain.size(), checkpointed.size());
  for (size_t i = 0; i < plain.size(); ++i) EXPECT_LE(max_diff(plain[i], checkpointed[i]), 1e-6) << i;
}

// Note [Frozen weights in bf16]: under bf16 autocast, frozen projections stored in bf16 give the same logits and
// LoRA gradients bit for bit as float32-stored ones, whether the weights were exact in bf16 (then the embedding
// is stored in bf16 too) or not (then it stays float32); norms stay float32 either way.
TEST_P(Families, FrozenWeightsStoredInBf16GiveTheSameBitsUnderAutocast) {
  for (const bool bf16_checkpoint : {false, true}) {
    auto run = [&](bool store_bf16, DecoderLMImpl::FrozenStorage* stored) {
      torch::manual_seed(8);
      DecoderLM lm(tiny(GetParam()), lora(LoraLayout::Fused));
      randomize_lora(lm);
      lm->freeze_base();
      if (bf16_checkpoint) {  // as a checkpoint published in bf16: every frozen value exact in bf16
        torch::NoGradGuard no_grad;
        for (auto& p : lm->named_parameters())
          if (!p.value().requires_grad()) p.value().copy_(p.value().to(torch::kBFloat16));
      }
      if (store_bf16) *stored = lm->store_frozen(torch::kBFloat16);
      for (auto& p : lm->named_parameters()) {
        const bool norm = p.key().find("norm") != std::string::npos;
        const bool embedding = p.key().find("embed_tokens") != std::string::npos;
        const bool narrow = store_bf16 && !p.value().requires_grad() && !norm && (!embedding || bf16_checkpoint);
        EXPECT_EQ(p.value().scalar_type(), narrow ? torch::kBFloat16 : torch::kFloat) << p.key();
      }
      at::Tensor ids = torch::randint(0, 53, {2, 7}, torch::kLong);
      at::Tensor logits;
      {
        compat::Bf16Autocast autocast(torch::kCPU, true);
        logits = lm->forward(ids);
      }
      logits.to(torch::kFloat).logsumexp(-1).mean().backward();
      std::vector<at::Tensor> out{logits.detach()};
      for (auto& p : lm->named_parameters())
        if (p.value().requires_grad()) out.push_back(p.value().grad().clone());
      return out;
    };
    DecoderLMImpl::FrozenStorage stored;
    const auto a = run(false, nullptr), b = run(true, &stored);
    EXPECT_EQ(stored.embedding, bf16_checkpoint);
    EXPECT_LT(stored.bytes_after, stored.bytes_before);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i)
      EXPECT_TRUE(at::equal(a[i], b[i])) << "tensor " << i << " bf16 checkpoint " << bf16_checkpoint;
  }
}

// attention() (scaled_dot_product_attention, the CPU flash kernel here) equals the reference softmax path within
// 1e-6 of the largest output, and its gradients within 1e-5 of the largest, in float32, with causal masks and
// right padding, for the head sizes vtb's configs use.
TEST(Attention, FusedKernelOnCpuEqualsTheReference) {
  torch::manual_seed(0);
  for (const auto& [B, H, T, d] :
       std::vector<std::array<int64_t, 4>>{{2, 4, 33, 16}, {4, 8, 300, 64}, {2, 8, 200, 256}}) {
    at::Tensor q = torch::randn({B, H, T, d}).requires_grad_(), k = torch::randn({B, H, T, d}).requires_grad_(),
               v = torch::randn({B, H, T, d}).requires_grad_();
    const at::Tensor causal = torch::ones({T, T}, torch::kBool).tril();
    const at::Tensor lengths = torch::full({B}, T / 2 + 3, torch::kLong).index_fill_(0, torch::tensor({0}), T);
    const at::Tensor valid = torch::arange(T).unsqueeze(0) < lengths.unsqueeze(1);
    const at::Tensor allowed = (causal.unsqueeze(0) & valid.unsqueeze(1)).unsqueeze(1);  // [B, 1, T, T]
    const at::Tensor weights = torch::randn({B, H, T, d});  // a loss that weighs every output differently
    auto run = [&](bool fused) {
      for (auto* t : {&q, &k, &v}) t->mutable_grad() = at::Tensor();
      at::Tensor out = fused ? attention(q, k, v, allowed)
                             : attention_reference(q, k, v, allowed, 1.0 / std::sqrt(static_cast<double>(d)));
      (out * weights).sum().backward();
      return std::vector<at::Tensor>{out.detach(), q.grad().clone(), k.grad().clone(), v.grad().clone()};
    };
    const auto fused = run(true), reference = run(false);
    const char* names[] = {"output", "dq", "dk", "dv"};
    for (size_t i = 0; i < fused.size(); ++i) {
      const double scale = reference[i].abs().max().item<double>();
      EXPECT_LE(max_diff(fused[i], reference[i]), (i == 0 ? 1e-6 : 1e-5) * scale)
          << names[i] << " T " << T << " d " << d;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(GemmaAndLlama, Families, ::testing::Values("gemma", "llama"));

}  // namespace
}  // namespace vtb::model
