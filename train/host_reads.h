// Reading the device from the training step, and counting it.
//
// Note [One read per step]: on a GPU every read of a device value on the host (.item(), .cpu(), a boolean
// mask's nonzero()) waits until every kernel queued before it has run, and the launch queue runs dry while
// the host catches up. The training step reads the device once per optimizer step, after backward:
// read_step (train_step.h) copies, in one transfer, the step's statistics summed over the ranks (losses,
// per-source sums, token and audio counts), the ranks' stop and checkpoint flags, and the gradient's Σg².
// That one read is the agreed non-finite check: the host must know whether the loss and the gradient norm are
// finite before it steps AdamW or skips. Whatever else the step logs rides along in the same copy, since a
// read costs its stall, not its bytes; reading the logged values only every train.log_every steps would save
// nothing beside it.
// Everything else the step needs on the host it takes from the CPU tensors the loader made: answer-token
// counts and positions from the loss masks, where the answers are from the host copy of the targets
// (SpeechLMImpl::loss), each segment's frame count from its feature count (EncoderConfig::output_frames).
// The global token count, which scales each micro-batch's loss before backward (Note [Loss normalisation]),
// stays on the device: it is allreduced there and the scale computed there.
// Host values go to the device with non_blocking copies (no wait on the queue).
// read_to_host is the one place the step reads; HostReadCounter counts it and the reads ATen makes on its
// own, so a test fails when an .item() comes back (tests/e2e/host_reads.sh). What it cannot see on a CPU run
// (a .cpu() of a tensor that is already on the CPU) CUDA's sync-debug mode catches on a GPU
// (scripts/gpu-check.sh).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>

namespace vtb::train {

// `t` copied to the host: the training step's read of the device (Note [One read per step]). Counted by a
// HostReadCounter alive on this thread.
at::Tensor read_to_host(const at::Tensor& t);

// While alive, counts on this thread the calls of read_to_host and ATen's own reads of a device value
// (_local_scalar_dense under .item(), nonzero, masked_select, unique, ...), seen through RecordFunction.
// One at a time per thread.
class HostReadCounter {
 public:
  HostReadCounter();
  ~HostReadCounter();
  HostReadCounter(const HostReadCounter&) = delete;
  HostReadCounter& operator=(const HostReadCounter&) = delete;

  int64_t reads() const;                              // read_to_host calls
  int64_t implicit_reads() const;                     // ATen's reads
  const std::map<std::string, int64_t>& ops() const;  // ATen's reads by operator name
  void reset();
};

// While alive with `on`, CUDA's sync-debug mode is "error": any synchronisation with the GPU but read_to_host's
// throws LibTorch's error naming it (VTB_CUDA_SYNC_DEBUG_FROM_STEP=N sets it for steps N on, from drawing the
// batch to logging it; scripts/gpu-check.sh). Nothing on a build without CUDA.
class SyncDebugErrors {
 public:
  explicit SyncDebugErrors(bool on);
  ~SyncDebugErrors();
  SyncDebugErrors(const SyncDebugErrors&) = delete;
  SyncDebugErrors& operator=(const SyncDebugErrors&) = delete;

 private:
  bool on_;
};

}  // namespace vtb::train
