#include "train/host_reads.h"

#include <ATen/record_function.h>
#ifdef VTB_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif

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
  int inside_fused_adamw = 0;
  std::map<std::string, int64_t> ops;
};
thread_local Counts counts;

// The fused AdamW kernel reads each step count with .item() on CPU; on CUDA it reads it on the device
// (Note [Fused AdamW]). Reads inside it are not the step's.
constexpr const char* kFusedAdamW = "aten::_fused_adamw_";

std::unique_ptr<at::ObserverContext> on_op(const at::RecordFunction& fn) {
  const char* name = fn.name();
  if (std::strcmp(name, kFusedAdamW) == 0) ++counts.inside_fused_adamw;
  if (counts.inside_fused_adamw > 0) return nullptr;
  for (const char* op : kReadingOps)
    if (std::strcmp(name, op) == 0) {
      ++counts.implicit;
      ++counts.ops[name];
      break;
    }
  return nullptr;
}

void on_op_end(const at::RecordFunction& fn, at::ObserverContext*) {
  if (std::strcmp(fn.name(), kFusedAdamW) == 0) --counts.inside_fused_adamw;
}

}  // namespace

at::Tensor read_to_host(const at::Tensor& t) {
  if (counts.active) ++counts.reads;
#ifdef VTB_WITH_CUDA
  auto& state = c10::cuda::warning_state();
  const c10::cuda::SyncDebugMode mode = state.get_sync_debug_mode();
  state.set_sync_debug_mode(c10::cuda::SyncDebugMode::L_DISABLED);  // the one read the step may make
  at::Tensor out = t.to(at::kCPU);
  state.set_sync_debug_mode(mode);
  return out;
#else
  return t.to(at::kCPU);
#endif
}

SyncDebugErrors::SyncDebugErrors(bool on) : on_(on) {
#ifdef VTB_WITH_CUDA
  if (on_) c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_ERROR);
#endif
}

SyncDebugErrors::~SyncDebugErrors() {
#ifdef VTB_WITH_CUDA
  if (on_) c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_DISABLED);
#endif
}

HostReadCounter::HostReadCounter() {
  if (counts.active) throw std::logic_error("HostReadCounter: one at a time per thread");
  counts = Counts{};
  counts.active = true;
  counts.handle =
      at::addThreadLocalCallback(at::RecordFunctionCallback(on_op, on_op_end).scopes({at::RecordScope::FUNCTION}));
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
