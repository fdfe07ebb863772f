// LoRA (arXiv 2106.09685): y = W x + (alpha / r) · B A x, with W frozen, A random, B zero, so a fresh
// adapter leaves the model equal to its base.
//
// Note [LoRA layouts]: "separate" puts one adapter on each targeted projection (as PEFT does). "fused"
// follows NeMo, the layout the paper counts (35.68 M on Gemma-2B): one adapter on the concatenated
// q|k|v output (A shared by q, k, v; B rows stacked q, k, v), one on o, one on the concatenated gate|up
// output, one on down. A fused adapter is exactly a set of PEFT adapters: each of q, k, v gets the
// shared A and its own rows of B.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <array>
#include <set>
#include <string>
#include <string_view>
#include <utility>

namespace vtb::model {

enum class LoraLayout { Fused, Separate };  // Note [LoRA layouts]
inline constexpr std::array<std::pair<std::string_view, LoraLayout>, 2> kLoraLayouts{
    {{"fused", LoraLayout::Fused}, {"separate", LoraLayout::Separate}}};

// The projections an adapter can target (lora.targets), in the order a layer applies them.
inline constexpr std::array<const char*, 7> kLoraTargets{"q", "k", "v", "o", "gate", "up", "down"};

struct LoraConfig {
  int64_t rank = 0;  // 0 = no LoRA
  double alpha = 32;
  double dropout = 0;
  LoraLayout layout = LoraLayout::Fused;
  std::set<std::string> targets{"q", "k", "v", "o", "gate", "up", "down"};

  bool enabled() const { return rank > 0; }
  double scale() const { return alpha / static_cast<double>(rank); }
  bool targets_any(std::initializer_list<const char*> names) const;
};

// One adapter: A [r, in] (Kaiming-uniform, as nn.Linear and PEFT), B [out, r] zeros.
class LoraAdapterImpl : public torch::nn::Module {
 public:
  LoraAdapterImpl(int64_t in, int64_t out, const LoraConfig& config);
  // The update (alpha/r)·B·A·dropout(x), shaped [..., out].
  at::Tensor forward(const at::Tensor& x);
  // (alpha/r)·B·A, shaped [out, in]: what merging adds to the base weight.
  at::Tensor delta_weight() const;

  at::Tensor A, B;

 private:
  double scale_;
  double dropout_;
};
TORCH_MODULE(LoraAdapter);

}  // namespace vtb::model
