// NumPy .npy files (format 1.0), for commands whose output people load with numpy.load.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

namespace vtb {

// Writes a contiguous float32, float64 or int64 CPU tensor, C order, little-endian.
void write_npy(const std::string& path, const at::Tensor& t);

}  // namespace vtb
