#include "ckpt/checkpoint_tools.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "ckpt/hdf5_io.h"
#include "ckpt/layout.h"

namespace vtb::ckpt {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> files_of(const std::string& folder) {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(folder))
    if (e.path().extension() == ".h5") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

bool is_copy(const std::string& dataset) { return dataset.rfind(std::string(kChecksummedGroup) + "/", 0) == 0; }

// Tensors, without the checksummed copies of attributes.
std::vector<std::string> tensors_of(const Hdf5Reader& r) {
  std::vector<std::string> out;
  for (const auto& name : r.datasets())
    if (!is_copy(name)) out.push_back(name);
  return out;
}

// Reads every attribute that has a checksummed copy, which compares the two (Hdf5Reader::check_copy); adds
// each one that differs or whose copy is damaged to `problems`.
void check_attributes(const Hdf5Reader& r, std::vector<std::string>& problems) {
  if (!r.checksummed_metadata()) return;
  const std::string prefix = kChecksummedGroup;
  for (const auto& copy : r.datasets(prefix)) {
    const auto slash = copy.rfind('/');
    const std::string object = slash == prefix.size() ? "/" : copy.substr(prefix.size(), slash - prefix.size());
    const std::string key = copy.substr(slash + 1);
    try {
      const at::ScalarType type = r.read(copy).scalar_type();
      if (type == at::kByte)
        r.string_attribute(object, key);
      else if (type == at::kLong)
        r.int_attribute(object, key);
      else
        r.real_attribute(object, key);
    } catch (const Hdf5Error& e) {
      problems.push_back(e.what());
    }
  }
}

}  // namespace

void inspect_checkpoint(const std::string& folder, std::ostream& out) {
  for (const auto& file : files_of(folder)) {
    Hdf5Reader r(file);
    out << file << "\n";
    if (r.exists(schema::kTrain)) {
      for (const char* key : {schema::kStep, schema::kWorldSize, schema::kZero}) try {
          const int64_t v = r.int_attribute(schema::kTrain, key);
          out << "  " << schema::kTrain << "@" << key << " = " << v << "\n";
        } catch (const Hdf5Error&) {  // not every file has every attribute
        }
      for (const char* key : {schema::kLlm, schema::kLlmHash, schema::kLibtorch, schema::kSamplerState}) try {
          const std::string v = r.string_attribute(schema::kTrain, key);
          out << "  " << schema::kTrain << "@" << key << " = " << v << "\n";
        } catch (const Hdf5Error&) {
        }
    }
    int64_t elements = 0;
    const std::vector<std::string> tensors = tensors_of(r);
    for (const auto& name : tensors) {
      const at::Tensor t = r.read(name);
      elements += t.numel();
      out << "  " << name << "  " << at::toString(t.scalar_type()) << " " << t.sizes();
      // A shard of the optimizer (dist.zero 1 or 2): where its piece starts in the flattened parameter.
      const std::string offset = std::string("/") + schema::kOffset;
      if (name.size() > offset.size() && name.compare(name.size() - offset.size(), offset.size(), offset) == 0)
        out << " = " << t.item<int64_t>();
      out << "\n";
    }
    out << "  (" << tensors.size() << " tensors, " << elements << " elements)\n";
    try {
      const std::string config = r.string_attribute(schema::kTrain, schema::kConfig);
      out << "  resolved config:\n" << config;
    } catch (const Hdf5Error&) {
    }
  }
}

std::vector<std::string> verify_checkpoint(const std::string& folder) {
  std::vector<std::string> problems;
  if (!fs::exists(state_file(folder))) return {folder + ": no state.h5"};
  int64_t world = 0;
  try {
    Hdf5Reader state(state_file(folder));
    const int64_t format = state.int_attribute(schema::kRoot, schema::kFormatVersionKey);
    if (format < kOldestReadableFormat || format > kFormatVersion)
      problems.push_back("state.h5: unknown format_version " + std::to_string(format));
    world = state.int_attribute(schema::kTrain, schema::kWorldSize);
    state.string_attribute(schema::kTrain, schema::kLlmHash);
  } catch (const Hdf5Error& e) {
    problems.push_back(e.what());
  }
  for (int64_t r = 0; r < world; ++r)
    if (!fs::exists(rank_file(folder, static_cast<int>(r))))
      problems.push_back(folder + ": rank_" + std::to_string(r) + ".h5 is missing (world size " +
                         std::to_string(world) + ")");
  for (const auto& file : files_of(folder)) {
    try {
      Hdf5Reader reader(file);
      for (const auto& name : reader.datasets()) {
        try {
          reader.read(name);
        } catch (const Hdf5Error& e) {
          problems.push_back(e.what());
        }
      }
      check_attributes(reader, problems);
    } catch (const Hdf5Error& e) {
      problems.push_back(e.what());
    }
  }
  return problems;
}

std::vector<TensorDiff> diff_checkpoints(const std::string& a, const std::string& b, std::vector<std::string>& only_a,
                                         std::vector<std::string>& only_b) {
  Hdf5Reader ra(state_file(a)), rb(state_file(b));
  const auto na = tensors_of(ra), nb = tensors_of(rb);
  const std::set<std::string> sa(na.begin(), na.end()), sb(nb.begin(), nb.end());
  std::vector<TensorDiff> out;
  for (const auto& n : na) {
    if (!sb.count(n)) {
      only_a.push_back(n);
      continue;
    }
    const at::Tensor x = ra.read(n), y = rb.read(n);
    if (x.sizes() != y.sizes()) {
      out.push_back({n, -1});
      continue;
    }
    out.push_back({n, x.numel() == 0 ? 0.0 : (x.to(at::kDouble) - y.to(at::kDouble)).abs().max().item<double>()});
  }
  for (const auto& n : nb)
    if (!sa.count(n)) only_b.push_back(n);
  return out;
}

}  // namespace vtb::ckpt
