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
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <array>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

// The LoRA of a group of projections that read the same input (q, k, v; gate, up), under either layout
// (Note [LoRA layouts]): fused, one adapter named `fused_name` whose B rows are the targeted projections'
// rows in group order; separate, one adapter "<target>_lora" per targeted projection. Forward, merging and
// export all go through it, so the row bookkeeping is written once.
class LoraGroup {
 public:
  struct Projection {
    const char* target;  // its lora.targets name: "q", "gate", ...
    int64_t out;         // its output width
  };
  LoraGroup() = default;
  // Registers the adapters on `owner` (input width `in`), in group order; none when no projection is targeted.
  LoraGroup(torch::nn::Module& owner, const LoraConfig& lora, int64_t in, std::vector<Projection> projections,
            const std::string& fused_name);

  // outputs[i] += projection i's LoRA update of x (outputs in group order; untargeted ones unchanged).
  void add_updates(const at::Tensor& x, const std::vector<at::Tensor*>& outputs);
  // Adds (sign +1) or subtracts (-1) each targeted projection's update to its base weight, bases in group order.
  void apply_to_weights(const std::vector<torch::nn::Linear*>& bases, double sign) const;
  // Projection i's adapter as PEFT holds it: A and its rows of B; undefined tensors when i is not targeted.
  std::pair<at::Tensor, at::Tensor> peft_adapter(size_t i) const;

  LoraAdapter fused{nullptr};         // fused layout: the group's one adapter, or null
  std::vector<LoraAdapter> separate;  // separate layout: per projection, null when not targeted

 private:
  std::vector<int64_t> rows_;  // fused: projection i's first row of B; -1 when not covered
  std::vector<int64_t> outs_;
};

// Adds (sign +1) or subtracts (-1) `delta` rows [row, row + base's rows) to `base`'s weight (merging LoRA).
void add_delta_rows(torch::nn::Linear& base, const at::Tensor& delta, int64_t row, double sign);

}  // namespace vtb::model
