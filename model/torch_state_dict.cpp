#include "model/torch_state_dict.h"

#include <caffe2/serialize/in_memory_adapter.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/unpickler.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string_view>

#include "model/pickle_rewrite.h"

namespace vtb::model {

std::vector<std::pair<std::string, at::Tensor>> read_torch_state_dict(const std::vector<char>& bytes,
                                                                      const std::string& source) {
  // torch.save's zip format starts "PK\3\4"; the legacy format (before PyTorch 1.6) is not read.
  if (bytes.size() < 4 || bytes[0] != 'P' || bytes[1] != 'K' || bytes[2] != 3 || bytes[3] != 4)
    throw std::runtime_error(source + ": not a torch.save zip file (PyTorch ≥ 1.6); re-save it with torch.save");
  c10::IValue value;
  try {
    caffe2::serialize::PyTorchStreamReader zip(
        std::make_shared<caffe2::serialize::MemoryReadAdapter>(bytes.data(), bytes.size()));
    const auto [pickle, pickle_size] = zip.getRecord("data.pkl");
    const std::string plain = plain_dicts(std::string_view(static_cast<const char*>(pickle.get()), pickle_size));
    size_t offset = 0;
    auto reader = [&](char* buffer, size_t n) {
      n = std::min(n, plain.size() - offset);
      std::memcpy(buffer, plain.data() + offset, n);
      offset += n;
      return n;
    };
    auto read_record = [&](const std::string& key) { return std::get<0>(zip.getRecord("data/" + key)); };
    auto no_classes = [&](const c10::QualifiedName& name) -> c10::StrongTypePtr {
      throw std::runtime_error("it holds an object of class " + name.qualifiedName() + ", not only tensors");
    };
    torch::jit::Unpickler unpickler(reader, no_classes, nullptr, read_record, at::Device(at::kCPU));
    value = unpickler.parse_ivalue();
  } catch (const PickleError& e) {
    throw std::runtime_error(source + ": data.pkl: " + e.what());
  } catch (const c10::Error& e) {
    throw std::runtime_error(source + ": LibTorch cannot read it: " + e.what_without_backtrace());
  }
  if (!value.isGenericDict()) throw std::runtime_error(source + ": holds a " + value.tagKind() + ", not a state dict");
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& item : value.toGenericDict()) {
    if (!item.key().isString()) throw std::runtime_error(source + ": a state dict key is not a string");
    const std::string name = item.key().toStringRef();
    if (!item.value().isTensor())
      throw std::runtime_error(source + ": " + name + " is a " + item.value().tagKind() + ", not a tensor");
    tensors.emplace_back(name, item.value().toTensor());
  }
  return tensors;
}

}  // namespace vtb::model
