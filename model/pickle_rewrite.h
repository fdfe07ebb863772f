// torch.save writes a state dict as a collections.OrderedDict whose attributes (`_metadata`) follow in a
// BUILD. LibTorch's unpickler turns every OrderedDict into None and cannot BUILD a dict, so it fails on
// such a file with "Expected GenericDict but got None" (pytorch/pytorch#100741, still so in LibTorch 2.14).
// plain_dicts() rewrites a protocol-2 pickle so that LibTorch reads it: each OrderedDict() becomes an
// empty dict, and a BUILD that would set a dict's attributes is dropped together with its argument.
// Free of LibTorch (fuzzed with the .nemo reader, tests/fuzz).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace vtb::model {

struct PickleError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The rewritten pickle; PickleError names the byte offset of anything outside the opcodes Python's
// pickler writes for a state dict (protocol 2), a truncated stream, or a stack that does not add up.
std::string plain_dicts(std::string_view pickle);

}  // namespace vtb::model
