#include "ckpt/checkpoint_tools.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "ckpt/commit.h"
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
      for (const char* key : {schema::kStep, schema::kWorldSize, schema::kZero, schema::kRank}) try {
          const int64_t v = r.int_attribute(schema::kTrain, key);
          out << "  " << schema::kTrain << "@" << key << " = " << v << "\n";
        } catch (const Hdf5Error&) {  // not every file has every attribute
        }
      for (const char* key : {schema::kRunId, schema::kLlm, schema::kLlmHash, schema::kLibtorch, schema::kSamplerState})
        try {
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
    for (auto& p : identity_problems(folder)) problems.push_back(folder + ": " + p);
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
          const at::Tensor t = reader.read(name);
          // A NaN or infinity in a weight or a moment loads, and ruins every run resumed from it.
          if (t.is_floating_point() && !is_copy(name))
            if (const int64_t n = t.numel() - at::isfinite(t).sum().item<int64_t>(); n > 0)
              problems.push_back(file + ": " + name + " holds " + std::to_string(n) + " NaN or infinite values of " +
                                 std::to_string(t.numel()));
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

std::vector<std::string> identity_problems(const std::string& folder) {
  Hdf5Reader state(state_file(folder));
  if (state.int_attribute(schema::kRoot, schema::kFormatVersionKey) < kFirstFormatWithIdentity) return {};
  const std::string run = state.string_attribute(schema::kTrain, schema::kRunId);
  const int64_t step = state.int_attribute(schema::kTrain, schema::kStep);
  const int64_t world = state.int_attribute(schema::kTrain, schema::kWorldSize);
  const int64_t zero = state.int_attribute(schema::kTrain, schema::kZero);
  std::vector<std::string> problems;
  // The folder's name says the step too (a state.h5 copied from another step_N).
  const std::string name = fs::path(folder).filename().string();
  if (name.rfind("step_", 0) == 0 && name != checkpoint_name(step))
    problems.push_back("state.h5: step " + std::to_string(step) + ", but the folder is " + name);
  for (int64_t r = 0; r < world; ++r) {
    const std::string file = rank_file(folder, static_cast<int>(r));
    if (!fs::exists(file)) continue;
    const Hdf5Reader mine(file);
    const std::string label = fs::path(file).filename().string() + ": ";
    if (!mine.exists(schema::kTrain) || !mine.has_attribute(schema::kTrain, schema::kRunId)) {
      problems.push_back(label + "carries no identity (written by a vtb before checkpoint format 4)");
      continue;
    }
    if (const std::string v = mine.string_attribute(schema::kTrain, schema::kRunId); v != run)
      problems.push_back(label + "run " + v + ", state.h5 says " + run + " (a file of another run)");
    auto compare = [&](const char* key, int64_t expected, const std::string& whose) {
      if (const int64_t v = mine.int_attribute(schema::kTrain, key); v != expected)
        problems.push_back(label + key + " " + std::to_string(v) + ", " + whose + " " + std::to_string(expected));
    };
    compare(schema::kStep, step, "state.h5 says");
    compare(schema::kWorldSize, world, "state.h5 says");
    compare(schema::kZero, zero, "state.h5 says");
    compare(schema::kRank, r, "its name says");
  }
  return problems;
}

void check_identity(const std::string& folder) {
  const std::vector<std::string> problems = identity_problems(folder);
  if (problems.empty()) return;
  std::string message = folder + ": its files belong to different checkpoints (Note [Checkpoint identity]):";
  for (const auto& p : problems) message += "\n  " + p;
  throw std::runtime_error(message + "\nResume from an earlier checkpoint (write its folder name into `latest`), " +
                           "or restore this folder's files from the same save");
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
