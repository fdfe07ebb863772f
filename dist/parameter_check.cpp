#include "dist/parameter_check.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
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

// FNV-1a, 64 bits: the same digest on every rank and build, unlike std::hash.
std::string digest(const std::string& text) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  return std::to_string(h);
}

std::map<std::string, std::string> parse_settings(const std::string& text) {
  std::map<std::string, std::string> out;
  for (const auto& line : split_lines(text)) {
    const auto tab = line.find('\t');
    out[line.substr(0, tab)] = tab == std::string::npos ? "" : line.substr(tab + 1);
  }
  return out;
}

}  // namespace

void verify_same_settings(Communicator& comm, const Settings& settings) {
  std::string text;
  for (const auto& [key, value] : settings) {
    std::string one_line = value;  // a repeated key (data.source) is one setting of several lines
    for (auto& c : one_line)
      if (c == '\n') c = '|';
    text += key + '\t' + one_line + '\n';
  }
  const std::vector<std::string> digests = allgather_strings(comm, digest(text));
  bool same = true;
  for (const auto& d : digests) same = same && d == digests[0];
  if (same) return;

  const std::vector<std::string> all = allgather_strings(comm, text);
  std::vector<std::map<std::string, std::string>> per_rank;
  for (const auto& t : all) per_rank.push_back(parse_settings(t));
  std::map<std::string, bool> keys;
  for (const auto& m : per_rank)
    for (const auto& kv : m) keys[kv.first] = true;
  auto value_on = [&](size_t r, const std::string& key) {
    const auto it = per_rank[r].find(key);
    return it == per_rank[r].end() ? std::string("(unset)") : "'" + it->second + "'";
  };
  std::ostringstream m;
  m << "ranks disagree on the run's settings:";
  for (const auto& [key, unused] : keys) {
    std::string differing;
    for (size_t r = 1; r < per_rank.size(); ++r)
      if (value_on(r, key) != value_on(0, key)) differing += "; " + value_on(r, key) + " on rank " + std::to_string(r);
    if (!differing.empty()) m << "\n  " << key << ": " << value_on(0, key) << " on rank 0" << differing;
  }
  m << "\nEvery rank must be launched with the same config file, overrides and build.";
  throw PeerMismatchError(m.str());
}

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
