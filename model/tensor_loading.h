// Loading named tensors into a model so that a file which does not fit is described in one error: every
// missing, mis-shaped, unexpected and non-finite tensor listed, so the user fixes the file (or the config) in one go.
// Used for Hugging Face LLM folders, pretrained encoders and checkpoints.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace vtb::model {

class TensorLoad {
 public:
  // `what` opens the error: which file, and what it was expected to fit.
  explicit TensorLoad(std::string what) : what_(std::move(what)) {}

  // The settings behind the model's sizes, e.g. ("encoder.ff_dim", 128): a wrong shape then names each
  // setting whose value is a size the file disagrees with ("encoder.ff_dim = 128 here, the file has 256").
  void name_sizes(std::vector<std::pair<std::string, int64_t>> sizes) { sizes_ = std::move(sizes); }

  // Copies `source` into `target` when it is defined (undefined: missing), has `target`'s shape and only
  // finite values.
  void copy(const std::string& name, at::Tensor target, const at::Tensor& source);
  // The source's names that no copy() asked for are unexpected, except those `ignore` accepts.
  void check_unexpected(const std::vector<std::string>& source_names,
                        const std::function<bool(const std::string&)>& ignore = {});
  // Throws std::runtime_error listing every problem (with counts), when there is one.
  void finish() const;

 private:
  std::string what_;
  std::vector<std::pair<std::string, int64_t>> sizes_;
  std::set<std::string> asked_;
  std::vector<std::string> missing_, mismatched_, unexpected_, non_finite_;
};

}  // namespace vtb::model
