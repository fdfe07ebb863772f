// Verifies a Communicator end to end, the nccl-tests "verifiable" way: inputs are small integers whose
// sums are exact in every supported dtype, so every element of every result can be compared exactly
// against a value computed here from the formula, independently of the communicator.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dist/communicator.h"

namespace vtb::dist {

struct CollectiveCheck {
  std::string op;     // "allreduce_sum", "allreduce_avg", "broadcast", "allgather", "reduce_scatter_sum", ...
  std::string dtype;  // "float32", "float64", "bfloat16", "int64"
  int64_t elements = 0;
  int64_t wrong = 0;  // elements that differ from the formula on this rank
};

// Collective: every rank must call it with the same sizes. Runs each collective in each dtype at each
// size (element counts per rank; 0 allowed) and returns one CollectiveCheck per combination.
std::vector<CollectiveCheck> check_collectives(Communicator& comm, const std::vector<int64_t>& sizes);

}  // namespace vtb::dist
