#include "data/batch_loader.h"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <set>
#include <tuple>

#include "compat/aten_threads.h"
#include "data/audio.h"
#include "data/prompt.h"

namespace vtb::data {
namespace {
constexpr uint64_t kAugmentStream = 0x617567'6d656e74ULL;  // "augment": the waveform augmentation's seeds
}  // namespace

ExampleCost BatchLoader::cost(const Conversation& c, size_t text_tokens) const {
  const FeatureConfig& f = options_.features;
  // Speed perturbation makes audio up to 1 / slowest factor longer: budget for the longest it can be.
  const double stretch = options_.training && options_.augment.enabled() ? 1.0 / options_.augment.slowest() : 1.0;
  const double seconds = c.audio_seconds() * stretch;
  const double frames_per_second = static_cast<double>(f.sample_rate) / f.hop / options_.subsampling_factor;
  return ExampleCost{seconds, static_cast<int64_t>(text_tokens) + static_cast<int64_t>(seconds * frames_per_second)};
}

BatchLoader::BatchLoader(std::vector<LoaderSource> sources, const Tokenizer& tokenizer, BatchLimits limits,
                         MixMode mode, LoaderOptions options, int rank, int world)
    : sources_(std::move(sources)),
      tokenizer_(tokenizer),
      options_(options),
      extractor_(options.features),
      limits_(limits),
      mode_(mode) {
  std::vector<SamplerSource> specs;
  for (const auto& s : sources_) {
    SamplerSource spec{s.name, s.weight, {}, s.shards ? s.shards->sizes : std::vector<int64_t>{}};
    for (const auto& c : s.examples) spec.costs.push_back(cost(c, format_conversation(c, tokenizer_).ids.size()));
    specs.push_back(std::move(spec));
  }
  sampler_ = std::make_unique<MixingSampler>(std::move(specs), limits, mode, options.seed, rank, world);
  returned_state_ = sampler_->state();
  streams_.resize(sources_.size());
  for (size_t src = 0; src < sources_.size(); ++src) {
    if (!sources_[src].shards) continue;
    streams_[src] = std::make_unique<ShardStream>(sources_[src].shards,
                                                  [this, src](int64_t epoch) { return sampler_->shard(src, epoch); });
    const std::vector<size_t> mine = sampler_->shard(src, 0);
    std::set<int32_t> shards;
    for (size_t e : mine) shards.insert(sources_[src].shards->members[e].shard);
    spdlog::info("source '{}': rank {} of {} reads {} of {} examples in epoch 0, from {} of {} shards",
                 sources_[src].name, rank, world, mine.size(), sources_[src].examples.size(), shards.size(),
                 sources_[src].shards->paths.size());
  }
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (producer_.joinable()) producer_.join();
  for (auto& w : workers_) w.join();
}

void BatchLoader::restore(const SamplerState& state) {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_) throw std::logic_error("BatchLoader::restore after the first next()");
  sampler_->restore(state);
  returned_state_ = state;
  next_step_ = state.step;
  // The streams continue where the cursors stand: per_batch at the first position of the current chunk
  // (its batches come in a shuffled order), per_sample at the next position.
  for (size_t src = 0; src < streams_.size(); ++src)
    if (streams_[src]) {
      const SourceCursor& c = state.sources.at(src);
      streams_[src]->seek(c.epoch, mode_ == MixMode::PerBatch ? c.chunk * limits_.bucket_window : c.position);
    }
}

SamplerState BatchLoader::state_after(int64_t steps, int rank, int world) const {
  MixingSampler planner = sampler_->rebased(rank, world);
  for (int64_t i = 0; i < steps; ++i) planner.next();
  return planner.state();
}

SamplerState BatchLoader::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  return returned_state_;
}

void BatchLoader::start() {
  started_ = true;
  producer_ = std::thread([this] {
    compat::run_aten_serially_on_this_thread();  // Note [One OpenMP team]
    produce();
  });
  for (int i = 0; i < std::max(1, options_.workers); ++i)
    workers_.emplace_back([this] {
      compat::run_aten_serially_on_this_thread();
      for (;;) {
        Work job;
        {
          std::unique_lock<std::mutex> lock(mu_);
          cv_.wait(lock, [this] { return stopping_ || !work_.empty(); });
          if (stopping_) return;
          job = std::move(work_.front());
          work_.erase(work_.begin());
        }
        try {
          Batch b = build(job);
          std::lock_guard<std::mutex> lock(mu_);
          ready_.emplace(job.sampled.step, std::make_pair(std::move(b), std::move(job.state)));
        } catch (...) {
          std::lock_guard<std::mutex> lock(mu_);
          failed_.emplace(job.sampled.step, std::current_exception());
        }
        cv_.notify_all();
      }
    });
}

void BatchLoader::produce() {
  for (;;) {
    Work work;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || in_flight_ < options_.queue_depth; });
      if (stopping_) return;
      work.sampled = sampler_->next();
      work.state = sampler_->state();
      ++in_flight_;
    }
    try {
      work.members = read_members(work.sampled);  // tar reads, outside the lock
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      failed_.emplace(work.sampled.step, std::current_exception());
      cv_.notify_all();
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      work_.push_back(std::move(work));
    }
    cv_.notify_all();
  }
}

std::vector<MemberBytes> BatchLoader::read_members(const SampledBatch& sampled) {
  std::vector<MemberBytes> out(sampled.items.size());
  for (size_t i = 0; i < sampled.items.size(); ++i)
    if (const auto& stream = streams_[sampled.items[i].first]) out[i] = stream->take(sampled.items[i].second);
  return out;
}

Batch BatchLoader::next() {
  std::unique_lock<std::mutex> lock(mu_);
  if (!started_) start();
  cv_.wait(lock, [this] { return ready_.count(next_step_) || failed_.count(next_step_); });
  if (auto f = failed_.find(next_step_); f != failed_.end()) std::rethrow_exception(f->second);
  auto node = ready_.extract(next_step_);
  Batch b = std::move(node.mapped().first);
  returned_state_ = std::move(node.mapped().second);
  ++next_step_;
  --in_flight_;
  lock.unlock();
  cv_.notify_all();
  return b;
}

std::map<std::string, int64_t> BatchLoader::bad_examples() const {
  std::lock_guard<std::mutex> lock(bad_mu_);
  return bad_by_reason_;
}

Batch BatchLoader::build(const Work& work) const {
  const SampledBatch& sampled = work.sampled;
  Batch b;
  b.step = sampled.step;
  std::vector<FormattedExample> texts;
  std::vector<at::Tensor> feats;
  for (size_t item = 0; item < sampled.items.size(); ++item) {
    const auto [source, index] = sampled.items[item];
    const Conversation& c = sources_[source].examples[index];
    if (options_.skip_bad_audio) {
      std::lock_guard<std::mutex> lock(bad_mu_);
      if (bad_.count({source, index})) {
        ++b.skipped;
        continue;
      }
    }
    FormattedExample f = format_conversation(c, tokenizer_);
    std::vector<at::Tensor> example_feats;
    try {
      for (size_t k = 0; k < f.audio.size(); ++k) {
        const AudioRef& a = f.audio[k];
        std::vector<float> samples;
        if (a.member.empty()) {
          samples = load_audio(a.path, a.offset, a.duration);
        } else {
          const MemberBytes& m = work.members.at(item);
          if (!m.bytes) throw AudioError(m.reason, m.error);
          samples = load_audio_bytes(*m.bytes, m.where, a.offset, a.duration);
        }
        // Randomness from (seed, step, example, segment) only: independent of worker scheduling.
        const size_t example = texts.size() + static_cast<size_t>(b.skipped);
        if (options_.training && options_.augment.enabled()) {  // a stream of its own (data/augment.h)
          std::mt19937_64 wave_rng(
              mix_hash(options_.seed ^ kAugmentStream, static_cast<uint64_t>(sampled.step), example, k));
          samples = augment_waveform(samples, options_.augment, wave_rng);
        }
        std::mt19937_64 rng(mix_hash(options_.seed, static_cast<uint64_t>(sampled.step), example, k));
        at::Tensor x = extractor_.compute(samples, options_.training ? &rng : nullptr);
        if (options_.training) spec_augment(x, options_.spec_augment, rng);
        example_feats.push_back(x);
      }
    } catch (const std::exception& e) {
      if (!options_.skip_bad_audio) throw std::runtime_error(c.origin + ": " + e.what());
      const auto* audio = dynamic_cast<const AudioError*>(&e);
      const std::string reason = audio ? audio->reason : "other";
      int64_t count = 0;
      {
        std::lock_guard<std::mutex> lock(bad_mu_);
        if (bad_.insert({source, index}).second) count = ++bad_by_reason_[reason];
      }
      if (count > 0)
        spdlog::warn("{}: skipped ({}, bad example #{} of that kind on this rank; dropped whenever drawn again): {}",
                     c.origin, reason, count, e.what());
      ++b.skipped;
      continue;
    }
    feats.insert(feats.end(), example_feats.begin(), example_feats.end());
    b.audio_seconds += c.audio_seconds();
    b.sources.push_back(source);
    b.examples.push_back(index);
    for (uint8_t m : f.loss_mask) b.answer_tokens += m;
    texts.push_back(std::move(f));
  }
  if (texts.empty()) throw std::runtime_error("batch " + std::to_string(sampled.step) + ": every example was skipped");

  PaddedTokens tokens = pad_tokens(texts, tokenizer_.special().pad);
  b.ids = std::move(tokens.ids);
  b.loss_mask = std::move(tokens.loss_mask);
  b.lengths = std::move(tokens.lengths);
  std::tie(b.features, b.feature_lengths) = pad_features(feats);
  return b;
}

PaddedTokens pad_tokens(const std::vector<FormattedExample>& examples, int64_t pad) {
  size_t T = 0;
  for (const auto& e : examples) T = std::max(T, e.ids.size());
  const int64_t B = static_cast<int64_t>(examples.size());
  PaddedTokens out{at::full({B, static_cast<int64_t>(T)}, pad, at::kLong),
                   at::zeros({B, static_cast<int64_t>(T)}, at::kBool), at::empty({B}, at::kLong)};
  for (int64_t i = 0; i < B; ++i) {
    const FormattedExample& e = examples[static_cast<size_t>(i)];
    const int64_t n = static_cast<int64_t>(e.ids.size());
    out.ids[i].narrow(0, 0, n).copy_(at::tensor(std::vector<int64_t>(e.ids.begin(), e.ids.end()), at::kLong));
    out.loss_mask[i].narrow(0, 0, n).copy_(
        at::tensor(std::vector<int64_t>(e.loss_mask.begin(), e.loss_mask.end()), at::kLong).to(at::kBool));
    out.lengths[i] = n;
  }
  return out;
}

std::pair<at::Tensor, at::Tensor> pad_features(const std::vector<at::Tensor>& feats) {
  if (feats.empty()) return {};
  int64_t F = 0;
  for (const auto& f : feats) F = std::max(F, f.size(1));
  at::Tensor padded = at::zeros({static_cast<int64_t>(feats.size()), feats[0].size(0), F}, at::kFloat);
  at::Tensor lengths = at::empty({static_cast<int64_t>(feats.size())}, at::kLong);
  for (size_t i = 0; i < feats.size(); ++i) {
    padded[static_cast<int64_t>(i)].narrow(1, 0, feats[i].size(1)).copy_(feats[i]);
    lengths[static_cast<int64_t>(i)] = feats[i].size(1);
  }
  return {padded, lengths};
}

}  // namespace vtb::data
