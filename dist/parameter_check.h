// Start-up agreement: every rank must run with the same settings (config, world size, versions) and hold
// the same parameters (names, shapes, dtypes) before any gradient is reduced, or buckets would pair
// unrelated tensors and training would silently diverge.
#pragma once

#include <ATen/core/Tensor.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "dist/communicator.h"

namespace vtb::dist {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// Thrown on every rank, with the same message, when ranks disagree.
struct PeerMismatchError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// (key, value) pairs, one per setting, e.g. ("train.lr", "0.001").
using Settings = std::vector<std::pair<std::string, std::string>>;

// Collective. Compares every rank's settings with rank 0's (a digest first, the text only on a
// difference); on a difference throws PeerMismatchError listing every differing key with its value on
// rank 0 and on each rank that differs.
void verify_same_settings(Communicator& comm, const Settings& settings);

// One line per tensor: "name dtype [d0, d1, ...]".
std::vector<std::string> describe_parameters(const NamedTensors& params);

// Collective. Compares every rank's description with rank 0's; on a difference throws
// PeerMismatchError naming the first differing parameter, both sides of it, and the ranks that differ.
void verify_same_parameters(Communicator& comm, const NamedTensors& params);

}  // namespace vtb::dist
