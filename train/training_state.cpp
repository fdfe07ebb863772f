#include "train/training_state.h"

#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <cstdio>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "ckpt/checkpoint_tools.h"
#include "ckpt/hdf5_io.h"
#include "ckpt/layout.h"
#include "ckpt/model_weights.h"

namespace vtb::train {
namespace {

namespace schema = ckpt::schema;

// The device the model trains on: where its first parameter lives.
c10::Device model_device(model::SpeechLM& lm) { return lm->parameters().front().device(); }

void write_moments(ckpt::Hdf5Writer& out, const std::vector<TrainingSnapshot::Moments>& moments, bool with_offsets) {
  for (const auto& m : moments) {
    out.write(schema::optim_tensor(m.name, schema::kExpAvg), m.exp_avg);
    out.write(schema::optim_tensor(m.name, schema::kExpAvgSq), m.exp_avg_sq);
    out.write(schema::optim_tensor(m.name, schema::kOptimStep), torch::full({1}, m.step, torch::kLong));
    if (with_offsets)
      out.write(schema::optim_tensor(m.name, schema::kOffset), torch::full({1}, m.offset, torch::kLong));
  }
}

// One parameter's moments, flattened, as the checkpoint holds them in whatever layout it was saved.
struct SavedMoments {
  at::Tensor exp_avg, exp_avg_sq;  // undefined: the parameter had no state yet
  int64_t step = 0;
};

// Note [Re-sharding the optimizer]: a checkpoint saved with dist.zero = 1 or 2 holds each parameter's moments in
// pieces spread over the saved ranks' files; one saved with 0 holds them whole in state.h5. Either way the
// whole flattened moments are assembled here (every element from exactly one saved piece, or an error), so
// any world size and either dist.zero can take from them the pieces it needs: element for element what
// was saved.
class SavedOptimizer {
 public:
  SavedOptimizer(const std::string& folder, const ckpt::Hdf5Reader& state, int64_t format, int64_t saved_world)
      : folder_(folder), state_(state) {
    zero_ = format >= 3 ? state.int_attribute(schema::kTrain, schema::kZero) : 0;
    if (zero_ >= 1)
      for (int64_t r = 0; r < saved_world; ++r)
        shards_.push_back(std::make_unique<ckpt::Hdf5Reader>(ckpt::rank_file(folder, static_cast<int>(r))));
  }
  int64_t zero() const { return zero_; }

  SavedMoments read(const std::string& name, int64_t numel) const {
    SavedMoments out;
    if (zero_ == 0) {
      if (!state_.exists(schema::optim_tensor(name, schema::kExpAvg))) return out;
      out.exp_avg = state_.read(schema::optim_tensor(name, schema::kExpAvg)).reshape({-1});
      out.exp_avg_sq = state_.read(schema::optim_tensor(name, schema::kExpAvgSq)).reshape({-1});
      out.step = state_.read(schema::optim_tensor(name, schema::kOptimStep)).item<int64_t>();
      return out;
    }
    at::Tensor seen = at::zeros({numel}, at::kInt);  // how many saved pieces hold each element
    for (const auto& shard : shards_) {
      if (!shard->exists(schema::optim_tensor(name, schema::kExpAvg))) continue;
      const at::Tensor m = shard->read(schema::optim_tensor(name, schema::kExpAvg)),
                       v = shard->read(schema::optim_tensor(name, schema::kExpAvgSq));
      const int64_t offset = shard->read(schema::optim_tensor(name, schema::kOffset)).item<int64_t>();
      if (offset < 0 || offset + m.numel() > numel || v.numel() != m.numel())
        throw std::runtime_error(folder_ + ": the optimizer shard of " + name + " does not fit the parameter");
      if (!out.exp_avg.defined()) {
        out.exp_avg = at::zeros({numel}, m.options());
        out.exp_avg_sq = at::zeros({numel}, v.options());
      }
      out.exp_avg.narrow(0, offset, m.numel()).copy_(m);
      out.exp_avg_sq.narrow(0, offset, v.numel()).copy_(v);
      out.step = shard->read(schema::optim_tensor(name, schema::kOptimStep)).item<int64_t>();
      seen.narrow(0, offset, m.numel()).add_(1);
    }
    const int64_t once = seen.eq(1).sum().item<int64_t>();
    if (out.exp_avg.defined() && once != numel)
      throw std::runtime_error(folder_ + ": the saved optimizer shards hold " + std::to_string(once) + " of the " +
                               std::to_string(numel) + " elements of " + name +
                               " exactly once: the checkpoint's rank files do not belong together");
    return out;
  }

 private:
  std::string folder_;
  const ckpt::Hdf5Reader& state_;
  int64_t zero_ = 0;
  std::vector<std::unique_ptr<ckpt::Hdf5Reader>> shards_;
};

// Restores the optimizer's moments (whole, or this rank's pieces) from the saved ones, in any saved layout.
void restore_optimizer(const SavedOptimizer& saved, optim::AdamW& optimizer) {
  const auto& params = optimizer.params();
  for (size_t k = 0; k < params.size(); ++k) {
    const auto& [name, p] = params[k];
    int64_t offset = 0, length = p.numel();
    if (optimizer.sharded()) {
      const optim::ShardPiece* piece = optimizer.piece(k);
      if (piece == nullptr) continue;  // none of it is this rank's
      offset = piece->offset;
      length = piece->length;
    }
    const SavedMoments m = saved.read(name, p.numel());
    if (!m.exp_avg.defined()) continue;  // never updated (no gradient yet)
    optim::ParamState& s = optimizer.state()[name];
    s.step = m.step;
    s.offset = offset;
    s.exp_avg = m.exp_avg.narrow(0, offset, length).clone().to(p.device());
    s.exp_avg_sq = m.exp_avg_sq.narrow(0, offset, length).clone().to(p.device());
    if (!optimizer.sharded()) {
      s.exp_avg = s.exp_avg.view(p.sizes());
      s.exp_avg_sq = s.exp_avg_sq.view(p.sizes());
    }
  }
}

// Note [Checkpoint identity]: in state.h5 and in every rank file.
void write_identity(ckpt::Hdf5Writer& out, const TrainingSnapshot& snap) {
  out.attribute(schema::kTrain, schema::kRunId, snap.run.run_id);
  out.attribute(schema::kTrain, schema::kStep, snap.run.step);
  out.attribute(schema::kTrain, schema::kWorldSize, static_cast<int64_t>(snap.world));
  out.attribute(schema::kTrain, schema::kZero, static_cast<int64_t>(snap.zero));
}

// No checkpoint holds a NaN or an infinity: it would load, and every run resumed from it would be lost, while
// ckpt.keep_last pruned the good ones. Thrown inside commit_checkpoint's write, so every rank agrees that
// nothing is committed and the previous checkpoint stays `latest`.
void refuse_non_finite(const TrainingSnapshot& snap) {
  std::vector<std::pair<std::string, const at::Tensor*>> tensors;
  for (const auto& [name, t] : snap.model) tensors.emplace_back(schema::model_tensor(name), &t);
  for (const auto& m : snap.optim) {
    tensors.emplace_back(schema::optim_tensor(m.name, schema::kExpAvg), &m.exp_avg);
    tensors.emplace_back(schema::optim_tensor(m.name, schema::kExpAvgSq), &m.exp_avg_sq);
  }
  std::string bad;
  int count = 0;
  for (const auto& [name, t] : tensors) {
    if (!t->is_floating_point()) continue;
    const int64_t n = t->numel() - at::isfinite(*t).sum().item<int64_t>();
    if (n > 0 && ++count <= 5) bad += "\n  " + name + ": " + std::to_string(n) + " of " + std::to_string(t->numel());
  }
  if (count > 0)
    throw std::runtime_error("checkpoint step " + std::to_string(snap.run.step) + " not committed on rank " +
                             std::to_string(snap.rank) + ": " + std::to_string(count) +
                             " tensors hold NaN or infinite values" + bad +
                             "\nThe last committed checkpoint stays `latest`. Lower train.lr or check the data.");
}

}  // namespace

std::string frozen_llm_hash(model::SpeechLM& lm) {
  uint64_t h = 1469598103934665603ULL;
  for (const auto& p : lm->llm->named_parameters()) {
    if (p.value().requires_grad()) continue;
    const at::Tensor t = p.value().detach().to(torch::kCPU).contiguous();
    const auto* bytes = static_cast<const unsigned char*>(t.data_ptr());
    for (int64_t i = 0; i < t.numel() * static_cast<int64_t>(t.element_size()); ++i)
      h = (h ^ bytes[i]) * 1099511628211ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

TrainingSnapshot snapshot_training_state(int rank, int world, model::SpeechLM& lm, optim::AdamW& optimizer,
                                         const RunState& run, const std::string& config_text,
                                         const std::string& llm_label, const std::string& llm_hash) {
  TrainingSnapshot snap;
  snap.rank = rank;
  snap.world = world;
  snap.run = run;
  auto copy = [](const at::Tensor& t) { return t.detach().to(torch::kCPU, /*non_blocking=*/false, /*copy=*/true); };
  for (const auto& p : lm->named_parameters())
    if (p.value().requires_grad()) snap.model.emplace_back(p.key(), copy(p.value()));
  for (const auto& b : lm->named_buffers()) snap.model.emplace_back(b.key(), copy(b.value()));
  for (auto& [name, st] : optimizer.state())
    snap.optim.push_back({name, copy(st.exp_avg), copy(st.exp_avg_sq), st.step, st.offset});
  snap.zero = optimizer.zero();
  snap.rng = at::detail::getDefaultCPUGenerator().get_state().to(torch::kLong);
  const c10::Device device = model_device(lm);
  if (device.is_cuda()) snap.rng_cuda = at::globalContext().defaultGenerator(device).get_state().to(torch::kLong);
  snap.config_text = config_text;
  snap.llm_label = llm_label;
  snap.llm_hash = llm_hash;
  for (const auto& p : lm->llm->named_parameters()) {
    if (p.value().requires_grad()) continue;
    std::ostringstream line;
    line << p.key() << ' ' << at::toString(p.value().scalar_type()) << ' ' << p.value().sizes() << '\n';
    snap.llm_tensors += line.str();
  }
  return snap;
}

void write_training_state(const std::string& folder, const TrainingSnapshot& snap) {
  refuse_non_finite(snap);
  if (snap.rank == 0) {
    ckpt::Hdf5Writer out(ckpt::state_file(folder));
    for (const auto& [name, t] : snap.model) out.write(schema::model_tensor(name), t);
    if (snap.zero == 0) write_moments(out, snap.optim, /*with_offsets=*/false);
    out.attribute(schema::kRoot, schema::kFormatVersionKey, ckpt::kFormatVersion);
    write_identity(out, snap);
    out.attribute(schema::kTrain, schema::kConfig, snap.config_text);
    out.attribute(schema::kTrain, schema::kLlm, snap.llm_label);
    out.attribute(schema::kTrain, schema::kLlmHash, snap.llm_hash);
    out.attribute(schema::kTrain, schema::kLlmTensors, snap.llm_tensors);
    out.attribute(schema::kTrain, schema::kLibtorch, std::string(TORCH_VERSION));
    out.close();
  }
  ckpt::Hdf5Writer out(ckpt::rank_file(folder, snap.rank));
  if (snap.zero >= 1) write_moments(out, snap.optim, /*with_offsets=*/true);
  write_identity(out, snap);
  out.attribute(schema::kTrain, schema::kRank, static_cast<int64_t>(snap.rank));
  out.attribute(schema::kTrain, schema::kSamplerState, snap.run.sampler.serialize());
  out.write(schema::kRngCpu, snap.rng);
  if (snap.rng_cuda.defined()) out.write(schema::kRngCuda, snap.rng_cuda);
  out.close();
}

int64_t restore_optimizer_state(const std::string& folder, optim::AdamW& optimizer) {
  ckpt::Hdf5Reader state(ckpt::state_file(folder));
  const SavedOptimizer saved(folder, state, state.int_attribute(schema::kRoot, schema::kFormatVersionKey),
                             state.int_attribute(schema::kTrain, schema::kWorldSize));
  restore_optimizer(saved, optimizer);
  return saved.zero();
}

RunState read_training_state(const std::string& folder, int rank, int world, model::SpeechLM& lm,
                             optim::AdamW& optimizer, const std::string& llm_hash) {
  ckpt::Hdf5Reader state(ckpt::state_file(folder));
  const int64_t format = state.int_attribute(schema::kRoot, schema::kFormatVersionKey);
  if (format < ckpt::kOldestReadableFormat || format > ckpt::kFormatVersion)
    throw std::runtime_error(folder + ": checkpoint format_version " + std::to_string(format) + "; this vtb reads " +
                             std::to_string(ckpt::kOldestReadableFormat) + " to " +
                             std::to_string(ckpt::kFormatVersion));
  if (!state.checksummed_metadata())
    spdlog::warn(
        "{}: format_version {} has no checksum on its metadata (step, config, sampler state): resuming "
        "from it unverified",
        folder, format);
  ckpt::check_identity(folder);  // before any tensor is used
  const int64_t saved_world = state.int_attribute(schema::kTrain, schema::kWorldSize);
  const std::string saved_hash = state.string_attribute(schema::kTrain, schema::kLlmHash);
  if (saved_hash != llm_hash)
    throw std::runtime_error(folder + ": the frozen LLM differs from the one this checkpoint was trained on (" +
                             state.string_attribute(schema::kTrain, schema::kLlm) + ", hash " + saved_hash +
                             "). Point model.llm at the same weights (or keep the same train.seed for a stand-in).");
  ckpt::load_model_weights(state, folder, lm);
  const SavedOptimizer saved(folder, state, format, saved_world);
  restore_optimizer(saved, optimizer);
  const int64_t zero_now = optimizer.zero();
  if (rank == 0 && (saved.zero() != zero_now || (zero_now + saved.zero() > 0 && saved_world != world)))
    spdlog::info(
        "{}: optimizer state re-sharded from dist.zero = {} over {} rank(s) to dist.zero = {} over {} "
        "(element for element, Note [Re-sharding the optimizer])",
        folder, saved.zero(), saved.zero() >= 1 ? saved_world : 1, zero_now, zero_now >= 1 ? world : 1);
  RunState run;
  run.step = state.int_attribute(schema::kTrain, schema::kStep);
  if (format >= ckpt::kFirstFormatWithIdentity) run.run_id = state.string_attribute(schema::kTrain, schema::kRunId);
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  if (saved_world == world) {  // the exact continuation
    ckpt::Hdf5Reader mine(ckpt::rank_file(folder, rank));
    run.sampler = data::SamplerState::deserialize(mine.string_attribute(schema::kTrain, schema::kSamplerState));
    generator.set_state(mine.read(schema::kRngCpu).to(torch::kByte));
    const c10::Device device = model_device(lm);
    if (device.is_cuda()) {
      if (mine.exists(schema::kRngCuda)) {
        at::Generator gpu_generator = at::globalContext().defaultGenerator(device);  // a handle: shares the state
        gpu_generator.set_state(mine.read(schema::kRngCuda).to(torch::kByte));
      } else if (rank == 0) {
        spdlog::warn(
            "{} was written by a run on CPU: it holds no GPU generator state, so dropout on the GPU "
            "draws a new stream (a valid continuation, not a bit-exact one)",
            folder);
      }
    }
    return run;
  }
  // Another world size: weights and optimizer are exact; the new ranks first read what the old ones left
  // of their epochs (Note [Finishing an epoch on another number of ranks]); dropout draws a new stream.
  std::vector<data::SamplerState> old;
  for (int64_t r = 0; r < saved_world; ++r)
    old.push_back(data::SamplerState::deserialize(ckpt::Hdf5Reader(ckpt::rank_file(folder, static_cast<int>(r)))
                                                      .string_attribute(schema::kTrain, schema::kSamplerState)));
  bool traced = true;
  run.sampler = data::rescale_sampler_state(old, traced);
  run.sampler.step = run.step;
  if (!traced && rank == 0)
    spdlog::warn(
        "{}: a source was still finishing an epoch begun on yet another number of ranks; it starts its next "
        "epoch instead (the examples its old ranks had not read in that epoch are not read in it)",
        folder);
  const uint64_t seed = static_cast<uint64_t>(run.step) * 1000003ULL + static_cast<uint64_t>(rank);
  generator.set_current_seed(seed);
  if (model_device(lm).is_cuda()) {
    at::Generator gpu_generator = at::globalContext().defaultGenerator(model_device(lm));
    gpu_generator.set_current_seed(seed);
  }
  if (rank == 0)
    spdlog::warn(
        "{} was written by {} ranks, this job has {}: model and optimizer state are restored exactly; "
        "the data order is not: each source first reads, over the new ranks, what the old ranks had not "
        "read of their epochs (nothing lost or repeated), in other batches; dropout draws a new random "
        "stream. The run is a valid continuation, not a bit-exact one.",
        folder, saved_world, world);
  return run;
}

}  // namespace vtb::train
