// A PyTorch state dict saved with torch.save (the zip format, as in a .nemo's model_weights.ckpt), read
// with LibTorch's unpickler: no Python.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

namespace vtb::model {

// Name → tensor in the file's order; an entry that is not a tensor (NeMo stores none) is an error naming
// it, as is a file the unpickler cannot read. `source` names the bytes in errors.
std::vector<std::pair<std::string, at::Tensor>> read_torch_state_dict(const std::vector<char>& bytes,
                                                                      const std::string& source);

}  // namespace vtb::model
