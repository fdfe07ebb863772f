// The LibTorch versions vtb builds against, checked once for every file that includes a compat/ header. vtb
// builds against LibTorch >= 2.7 (the PyPI wheel, C++11 ABI; cmake/VtbTorch.cmake refuses older): Debian's
// 1.13 is no longer supported, since it needs C++17 where 2.x headers need C++20 and its autograd hooks
// differ. Every call whose form depends on the LibTorch version lives under compat/.
#pragma once

#include <torch/version.h>

static_assert(TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 7),
              "vtb needs LibTorch 2.7 or newer");
