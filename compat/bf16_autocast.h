// bfloat16 autocast as a C++ scope guard (LibTorch has none of its own; the at::autocast calls it makes
// changed form across 2.x, so they live here).
#pragma once

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>

#include "compat/torch_version.h"

namespace vtb::compat {

// bfloat16 autocast on `device` (CPU or CUDA) for the scope of the guard, like Python's
// torch.autocast(device, bfloat16); does nothing when `enabled` is false.
class Bf16Autocast {
 public:
  Bf16Autocast(c10::DeviceType device, bool enabled) : device_(device), enabled_(enabled) {
    if (!enabled_) return;
    previous_ = at::autocast::is_autocast_enabled(device_);
    previous_dtype_ = at::autocast::get_autocast_dtype(device_);
    at::autocast::set_autocast_dtype(device_, at::kBFloat16);
    at::autocast::set_autocast_enabled(device_, true);
    at::autocast::increment_nesting();
  }
  ~Bf16Autocast() {
    if (!enabled_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(device_, previous_);
    at::autocast::set_autocast_dtype(device_, previous_dtype_);
  }
  Bf16Autocast(const Bf16Autocast&) = delete;
  Bf16Autocast& operator=(const Bf16Autocast&) = delete;

 private:
  c10::DeviceType device_;
  bool enabled_;
  bool previous_ = false;
  at::ScalarType previous_dtype_ = at::kHalf;
};

}  // namespace vtb::compat
