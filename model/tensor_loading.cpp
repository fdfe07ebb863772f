#include "model/tensor_loading.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <sstream>
#include <stdexcept>

namespace vtb::model {

void TensorLoad::copy(const std::string& name, at::Tensor target, const at::Tensor& source) {
  asked_.insert(name);
  if (!source.defined()) return missing_.push_back(name);
  if (source.sizes() != target.sizes()) {
    std::ostringstream m;
    m << name << " (file " << source.sizes() << ", model " << target.sizes() << ")";
    if (source.dim() == target.dim()) {
      std::string sep = ": ";
      for (int64_t d = 0; d < target.dim(); ++d) {
        if (source.size(d) == target.size(d)) continue;
        for (const auto& [setting, value] : sizes_)
          if (value == target.size(d)) {
            m << sep << setting << " = " << value << " here, the file has " << source.size(d);
            sep = "; ";
          }
      }
    }
    return mismatched_.push_back(m.str());
  }
  if (source.is_floating_point()) {  // a NaN weight would make every output NaN, silently
    const int64_t bad = source.numel() - at::isfinite(source).sum().item<int64_t>();
    if (bad > 0) {
      std::ostringstream m;
      m << name << " (" << bad << " of " << source.numel() << " values)";
      return non_finite_.push_back(m.str());
    }
  }
  c10::AutoGradMode no_grad(false);
  target.copy_(source);
}

void TensorLoad::check_unexpected(const std::vector<std::string>& source_names,
                                  const std::function<bool(const std::string&)>& ignore) {
  for (const auto& name : source_names)
    if (!asked_.count(name) && !(ignore && ignore(name))) unexpected_.push_back(name);
}

void TensorLoad::finish() const {
  if (missing_.empty() && mismatched_.empty() && unexpected_.empty() && non_finite_.empty()) return;
  std::ostringstream m;
  m << what_;
  auto list = [&m](const char* kind, const std::vector<std::string>& names) {
    if (names.empty()) return;
    m << "\n  " << kind << " (" << names.size() << "):";
    for (const auto& n : names) m << "\n    " << n;
  };
  list("missing", missing_);
  list("wrong shape", mismatched_);
  list("unexpected", unexpected_);
  list("NaN or infinite values", non_finite_);
  throw std::runtime_error(m.str());
}

}  // namespace vtb::model
