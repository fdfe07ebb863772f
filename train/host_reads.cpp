#include "train/host_reads.h"

#include <ATen/record_function.h>

#include <cstring>
#include <stdexcept>

namespace vtb::train {
namespace {

// The operators that copy a device value to the host by themselves: .item() is _local_scalar_dense; the
// others size their output by data on the device.
constexpr const char* kReadingOps[] = {
    "aten::_local_scalar_dense", "aten::nonzero",    "aten::masked_select", "aten::_unique", "aten::_unique2",
    "aten::unique_consecutive",  "aten::unique_dim", "aten::is_nonzero",    "aten::equal"};

struct Counts {
  bool active = false;
  at::CallbackHandle handle = 0;
  int64_t reads = 0, implicit = 0;
  std::map<std::string, int64_t> ops;
};
thread_local Counts counts;

std::unique_ptr<at::ObserverContext> on_op(const at::RecordFunction& fn) {
  const char* name = fn.name();
  for (const char* op : kReadingOps)
    if (std::strcmp(name, op) == 0) {
      ++counts.implicit;
      ++counts.ops[name];
      break;
    }
  return nullptr;
}

}  // namespace

at::Tensor read_to_host(const at::Tensor& t) {
  if (counts.active) ++counts.reads;
  return t.to(at::kCPU);
}

HostReadCounter::HostReadCounter() {
  if (counts.active) throw std::logic_error("HostReadCounter: one at a time per thread");
  counts = Counts{};
  counts.active = true;
  counts.handle = at::addThreadLocalCallback(at::RecordFunctionCallback(on_op).scopes({at::RecordScope::FUNCTION}));
}

HostReadCounter::~HostReadCounter() {
  at::removeCallback(counts.handle);
  counts.active = false;
}

int64_t HostReadCounter::reads() const { return counts.reads; }
int64_t HostReadCounter::implicit_reads() const { return counts.implicit; }
const std::map<std::string, int64_t>& HostReadCounter::ops() const { return counts.ops; }

void HostReadCounter::reset() {
  counts.reads = counts.implicit = 0;
  counts.ops.clear();
}

}  // namespace vtb::train
