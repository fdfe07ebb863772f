#include "dist/parameter_check.h"

#include <ATen/ATen.h>

#include <sstream>

namespace vtb::dist {
namespace {

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::string line;
  std::istringstream in(text);
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

}  // namespace

std::vector<std::string> describe_parameters(const NamedTensors& params) {
  std::vector<std::string> lines;
  lines.reserve(params.size());
  for (const auto& [name, t] : params) {
    std::ostringstream line;
    line << name << ' ' << dtype_name(t.scalar_type()) << ' ' << t.sizes();
    lines.push_back(line.str());
  }
  return lines;
}

void verify_same_parameters(Communicator& comm, const NamedTensors& params) {
  const std::vector<std::string> mine = describe_parameters(params);
  std::string text;
  for (const auto& l : mine) text += l + '\n';

  const std::vector<std::string> all = allgather_strings(comm, text);
  const std::vector<std::string> reference = split_lines(all[0]);

  // Every rank finds the same first difference and throws the same message.
  std::vector<int> differing;
  std::string first;
  for (int r = 1; r < comm.size(); ++r) {
    const std::vector<std::string> theirs = split_lines(all[r]);
    if (theirs == reference) continue;
    differing.push_back(r);
    if (!first.empty()) continue;
    size_t i = 0;
    while (i < reference.size() && i < theirs.size() && reference[i] == theirs[i]) ++i;
    auto at_index = [i](const std::vector<std::string>& v) {
      return i < v.size() ? "'" + v[i] + "'" : std::string("(none)");
    };
    std::ostringstream m;
    m << "ranks disagree on the trainable parameters: rank 0 has " << reference.size() << ", rank " << r << " has "
      << theirs.size() << "; first difference at parameter #" << i << ": " << at_index(reference) << " on rank 0 vs "
      << at_index(theirs) << " on rank " << r;
    first = m.str();
  }
  if (differing.empty()) return;
  std::ostringstream m;
  m << first << ". Ranks differing from rank 0:";
  for (int r : differing) m << ' ' << r;
  m << ". Every rank must build the same model: check that all ranks read the same config file and overrides "
       "and the same pretrained weights.";
  throw PeerMismatchError(m.str());
}

}  // namespace vtb::dist
