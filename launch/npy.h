// NumPy .npy files (format 1.0), for commands whose output people load with numpy.load.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

namespace vtb {

// Writes a contiguous float32, float64 or int64 CPU tensor, C order, little-endian.
void write_npy(const std::string& path, const at::Tensor& t);

// Reads a float32 or float64 .npy (format 1.0 or 2.0, C order, little-endian) as float32; errors name `path`.
at::Tensor read_npy(const std::string& path);

}  // namespace vtb
