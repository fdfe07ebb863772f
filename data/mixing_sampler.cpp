#include "data/mixing_sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <sstream>
#include <stdexcept>

namespace vtb::data {
namespace {

uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

double unit(uint64_t h) { return (h >> 11) * (1.0 / 9007199254740992.0); }  // [0, 1) from 53 bits

// Fisher–Yates driven by the hash of (key, i).
void shuffle(std::vector<size_t>& v, uint64_t key) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[mix_hash(key, i) % i]);
}

constexpr uint64_t kPermute = 1, kOrder = 2, kSource = 3, kShardOrder = 4;

}  // namespace

uint64_t mix_hash(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
  return splitmix(splitmix(splitmix(splitmix(a) ^ b) ^ c) ^ d);
}

// v1: step, then per source epoch chunk batch position consumed. v2 (written only while some source is
// finishing an epoch on another number of ranks): each source's five are followed by the count of old
// cursors and their epoch chunk batch position.
std::string SamplerState::serialize() const {
  bool finishing = false;
  for (const auto& s : sources) finishing |= !s.finishing.empty();
  std::ostringstream out;
  out << (finishing ? "v2 " : "v1 ") << step << ' ' << sources.size();
  for (const auto& s : sources) {
    out << ' ' << s.epoch << ' ' << s.chunk << ' ' << s.batch << ' ' << s.position << ' ' << s.consumed;
    if (!finishing) continue;
    out << ' ' << s.finishing.size();
    for (const auto& o : s.finishing) out << ' ' << o.epoch << ' ' << o.chunk << ' ' << o.batch << ' ' << o.position;
  }
  return out.str();
}

SamplerState SamplerState::deserialize(const std::string& text) {
  std::istringstream in(text);
  std::string version;
  size_t n = 0;
  SamplerState s;
  if (!(in >> version >> s.step >> n) || (version != "v1" && version != "v2"))
    throw std::invalid_argument("sampler state: bad header in '" + text + "'");
  s.sources.resize(n);
  for (auto& c : s.sources) {
    if (!(in >> c.epoch >> c.chunk >> c.batch >> c.position >> c.consumed))
      throw std::invalid_argument("sampler state: truncated '" + text + "'");
    size_t old = 0;
    if (version == "v2" && !(in >> old)) throw std::invalid_argument("sampler state: truncated '" + text + "'");
    c.finishing.resize(old);
    for (auto& o : c.finishing)
      if (!(in >> o.epoch >> o.chunk >> o.batch >> o.position))
        throw std::invalid_argument("sampler state: truncated '" + text + "'");
  }
  return s;
}

SamplerState rescale_sampler_state(const std::vector<SamplerState>& old, bool& traced) {
  traced = true;
  SamplerState s;
  s.step = old.at(0).step;
  s.sources.resize(old.front().sources.size());
  for (size_t src = 0; src < s.sources.size(); ++src) {
    SourceCursor& c = s.sources[src];
    bool untraceable = false;
    for (const auto& o : old) {
      const SourceCursor& oc = o.sources.at(src);
      c.epoch = std::max(c.epoch, oc.epoch);
      c.consumed += oc.consumed;
      untraceable |= !oc.finishing.empty();
      c.finishing.push_back(SourceCursor{oc.epoch, oc.chunk, oc.batch, oc.position, 0, {}});
    }
    if (untraceable) {  // a second change of world before the first one's unread part was done
      c.finishing.clear();
      ++c.epoch;
      traced = false;
    }
  }
  return s;
}

MixingSampler::MixingSampler(std::vector<SamplerSource> sources, BatchLimits limits, MixMode mode, uint64_t seed,
                             int rank, int world)
    : sources_(std::move(sources)), limits_(limits), mode_(mode), seed_(seed), rank_(rank), world_(world) {
  if (sources_.empty()) throw std::invalid_argument("sampler: no sources");
  double total = 0;
  for (const auto& s : sources_) {
    if (!(s.weight >= 0) || !std::isfinite(s.weight))
      throw std::invalid_argument("sampler: source '" + s.name + "' has a weight that is not a finite number ≥ 0");
    int64_t in_shards = 0;
    for (int64_t n : s.shard_sizes) in_shards += n;
    if (!s.shard_sizes.empty() && in_shards != static_cast<int64_t>(s.costs.size()))
      throw std::invalid_argument("sampler: source '" + s.name + "' has " + std::to_string(s.costs.size()) +
                                  " examples but its shards hold " + std::to_string(in_shards));
    if (!s.shard_sizes.empty() && limits.bucket_window <= 0)
      throw std::invalid_argument("sampler: source '" + s.name +
                                  "' is sharded: data.bucket_window must be > 0 (it "
                                  "bounds the audio a rank holds in memory)");
    if (static_cast<int64_t>(s.costs.size()) < world)
      throw std::invalid_argument("sampler: source '" + s.name + "' has " + std::to_string(s.costs.size()) +
                                  " examples, fewer than the " + std::to_string(world) + " ranks that share it");
    total += s.weight;
  }
  if (total <= 0) throw std::invalid_argument("sampler: the weights sum to zero");
  state_.sources.resize(sources_.size());
  cache_.resize(sources_.size());
}

void MixingSampler::restore(const SamplerState& state) {
  if (state.sources.size() != sources_.size())
    throw std::invalid_argument("sampler state has " + std::to_string(state.sources.size()) +
                                " sources, the data has " + std::to_string(sources_.size()));
  state_ = state;
  cache_.assign(sources_.size(), Cache{});
}

MixingSampler MixingSampler::rebased(int rank, int world) const {
  MixingSampler m = *this;
  m.rank_ = rank;
  m.world_ = world;
  m.restore(SamplerState{0, std::vector<SourceCursor>(sources_.size())});
  return m;
}

std::vector<size_t> MixingSampler::shard(size_t source, int64_t epoch) const {
  const SourceCursor& cur = state_.sources[source];
  if (cur.finishing.empty() || epoch != cur.epoch) return plan(source, epoch, rank_, world_);
  // Note [Finishing an epoch on another number of ranks]
  const int old_world = static_cast<int>(cur.finishing.size());
  std::vector<size_t> left;
  for (int r = 0; r < old_world; ++r) {
    const SourceCursor& o = cur.finishing[static_cast<size_t>(r)];
    const std::vector<size_t> rest = unread(source, o, r, old_world);
    left.insert(left.end(), rest.begin(), rest.end());
    for (int64_t e = o.epoch + 1; e <= cur.epoch; ++e) {
      const std::vector<size_t> whole = plan(source, e, r, old_world);
      left.insert(left.end(), whole.begin(), whole.end());
    }
  }
  const size_t n = left.size(), begin = n * static_cast<size_t>(rank_) / static_cast<size_t>(world_),
               end = n * static_cast<size_t>(rank_ + 1) / static_cast<size_t>(world_);
  return std::vector<size_t>(left.begin() + static_cast<std::ptrdiff_t>(begin),
                             left.begin() + static_cast<std::ptrdiff_t>(end));
}

// What old rank `old_rank` of `old_world`, at cursor `o`, had not read of its epoch o.epoch, in its order.
std::vector<size_t> MixingSampler::unread(size_t source, const SourceCursor& o, int old_rank, int old_world) const {
  const std::vector<size_t> seq = plan(source, o.epoch, old_rank, old_world);
  if (mode_ == MixMode::PerSample)
    return std::vector<size_t>(
        seq.begin() + std::min<std::ptrdiff_t>(o.position, static_cast<std::ptrdiff_t>(seq.size())), seq.end());
  const size_t window = limits_.bucket_window > 0 ? static_cast<size_t>(limits_.bucket_window) : seq.size();
  const size_t begin = std::min(seq.size(), static_cast<size_t>(o.chunk) * window),
               end = std::min(seq.size(), begin + window);
  std::set<size_t> taken;
  if (begin < end) {
    const auto batches = make_chunk_batches(source, seq, o.epoch, o.chunk);
    for (size_t b = 0; b < static_cast<size_t>(o.batch) && b < batches.size(); ++b)
      taken.insert(batches[b].begin(), batches[b].end());
  }
  std::vector<size_t> rest;
  for (size_t p = begin; p < seq.size(); ++p)
    if (!taken.count(seq[p])) rest.push_back(seq[p]);
  return rest;
}

std::vector<size_t> MixingSampler::plan(size_t source, int64_t epoch, int rank, int world) const {
  const std::vector<int64_t>& shards = sources_[source].shard_sizes;
  if (!shards.empty()) {  // Note [Shards over ranks]
    std::vector<size_t> first(shards.size() + 1, 0), order(shards.size());
    for (size_t k = 0; k < shards.size(); ++k) first[k + 1] = first[k] + static_cast<size_t>(shards[k]);
    std::iota(order.begin(), order.end(), 0);
    shuffle(order, mix_hash(seed_, kShardOrder, source, static_cast<uint64_t>(epoch)));
    const size_t n = first.back(), begin = n * static_cast<size_t>(rank) / static_cast<size_t>(world),
                 end = n * static_cast<size_t>(rank + 1) / static_cast<size_t>(world);
    std::vector<size_t> mine;
    mine.reserve(end - begin);
    size_t at = 0;  // position in the concatenation
    for (size_t k : order) {
      const size_t from = std::max(begin, at), to = std::min(end, at + static_cast<size_t>(shards[k]));
      for (size_t p = from; p < to; ++p) mine.push_back(first[k] + (p - at));
      at += static_cast<size_t>(shards[k]);
    }
    return mine;
  }
  std::vector<size_t> all(sources_[source].costs.size());
  std::iota(all.begin(), all.end(), 0);
  shuffle(all, mix_hash(seed_, kPermute, source, static_cast<uint64_t>(epoch)));
  std::vector<size_t> mine;
  for (size_t p = static_cast<size_t>(rank); p < all.size(); p += static_cast<size_t>(world)) mine.push_back(all[p]);
  return mine;
}

const std::vector<size_t>& MixingSampler::current_shard(size_t source) {
  Cache& c = cache_[source];
  const int64_t epoch = state_.sources[source].epoch;
  if (c.epoch != epoch) {
    c.shard = shard(source, epoch);
    c.epoch = epoch;
    c.chunk = -1;
  }
  return c.shard;
}

const std::vector<std::vector<size_t>>& MixingSampler::chunk_batches(size_t source) {
  const std::vector<size_t>& sh = current_shard(source);
  Cache& c = cache_[source];
  const SourceCursor& cur = state_.sources[source];
  if (c.chunk == cur.chunk) return c.batches;
  c.batches = make_chunk_batches(source, sh, cur.epoch, cur.chunk);
  c.chunk = cur.chunk;
  return c.batches;
}

std::vector<std::vector<size_t>> MixingSampler::make_chunk_batches(size_t source, const std::vector<size_t>& sh,
                                                                   int64_t epoch, int64_t chunk_index) const {
  const int64_t window = limits_.bucket_window > 0 ? limits_.bucket_window : static_cast<int64_t>(sh.size());
  const size_t begin = static_cast<size_t>(chunk_index * window);
  std::vector<size_t> chunk(sh.begin() + begin, sh.begin() + std::min(sh.size(), begin + static_cast<size_t>(window)));
  const auto& costs = sources_[source].costs;
  struct {
    std::vector<std::vector<size_t>> batches;
  } c;
  if (limits_.bucket_window > 0)
    std::stable_sort(chunk.begin(), chunk.end(), [&](size_t a, size_t b) {
      return costs[a].seconds != costs[b].seconds ? costs[a].seconds < costs[b].seconds
                                                  : costs[a].tokens < costs[b].tokens;
    });
  c.batches.clear();
  double seconds = 0;
  int64_t tokens = 0;
  for (size_t i : chunk) {
    const bool full =
        !c.batches.empty() && !c.batches.back().empty() &&
        ((limits_.max_seconds > 0 && seconds + costs[i].seconds > limits_.max_seconds) ||
         (limits_.max_tokens > 0 && tokens + costs[i].tokens > limits_.max_tokens) ||
         (limits_.max_examples > 0 && static_cast<int64_t>(c.batches.back().size()) >= limits_.max_examples));
    if (c.batches.empty() || full) {
      c.batches.emplace_back();
      seconds = 0;
      tokens = 0;
    }
    c.batches.back().push_back(i);
    seconds += costs[i].seconds;
    tokens += costs[i].tokens;
  }
  // Batches of one chunk come in a seeded random order, so long and short batches interleave.
  std::vector<size_t> order(c.batches.size());
  std::iota(order.begin(), order.end(), 0);
  shuffle(order,
          mix_hash(seed_, kOrder, source, mix_hash(static_cast<uint64_t>(epoch), static_cast<uint64_t>(chunk_index))));
  std::vector<std::vector<size_t>> shuffled;
  for (size_t o : order) shuffled.push_back(std::move(c.batches[o]));
  return shuffled;
}

void MixingSampler::next_epoch(SourceCursor& cur) {
  cur.finishing.clear();  // the unread part of an old world's epoch is done: the new world's plan from here
  ++cur.epoch;
  cur.chunk = cur.batch = cur.position = 0;
}

std::vector<size_t> MixingSampler::batch_of(size_t source) {
  SourceCursor& cur = state_.sources[source];
  while (current_shard(source).empty()) next_epoch(cur);  // this rank's part of an unread remainder was empty
  const auto& batches = chunk_batches(source);
  std::vector<size_t> batch = batches.at(static_cast<size_t>(cur.batch));
  // Advance: next batch, next chunk, next epoch.
  const size_t shard_size = current_shard(source).size();
  const int64_t window = limits_.bucket_window > 0 ? limits_.bucket_window : static_cast<int64_t>(shard_size);
  if (++cur.batch >= static_cast<int64_t>(batches.size())) {
    cur.batch = 0;
    if (++cur.chunk * window >= static_cast<int64_t>(shard_size)) next_epoch(cur);
  }
  cur.consumed += static_cast<int64_t>(batch.size());
  return batch;
}

size_t MixingSampler::draw_source(uint64_t salt) const {
  double total = 0;
  for (const auto& s : sources_) total += s.weight;
  double u = unit(salt) * total;
  for (size_t i = 0; i < sources_.size(); ++i) {
    if (u < sources_[i].weight) return i;
    u -= sources_[i].weight;
  }
  return sources_.size() - 1;
}

SampledBatch MixingSampler::next() {
  SampledBatch out;
  out.step = state_.step;
  if (mode_ == MixMode::PerBatch) {
    const size_t source = draw_source(mix_hash(seed_, kSource, static_cast<uint64_t>(state_.step)));
    for (size_t i : batch_of(source)) out.items.emplace_back(source, i);
  } else {
    double seconds = 0;
    int64_t tokens = 0;
    for (uint64_t k = 0;; ++k) {
      const size_t source = draw_source(mix_hash(seed_, kSource, static_cast<uint64_t>(state_.step), k + 1));
      SourceCursor& cur = state_.sources[source];
      while (current_shard(source).empty()) next_epoch(cur);
      const std::vector<size_t>& sh = current_shard(source);
      const size_t i = sh[static_cast<size_t>(cur.position)];
      const ExampleCost& cost = sources_[source].costs[i];
      const bool full = !out.items.empty() &&
                        ((limits_.max_seconds > 0 && seconds + cost.seconds > limits_.max_seconds) ||
                         (limits_.max_tokens > 0 && tokens + cost.tokens > limits_.max_tokens) ||
                         (limits_.max_examples > 0 && static_cast<int64_t>(out.items.size()) >= limits_.max_examples));
      if (full) break;
      out.items.emplace_back(source, i);
      seconds += cost.seconds;
      tokens += cost.tokens;
      ++cur.consumed;
      if (++cur.position >= static_cast<int64_t>(sh.size())) next_epoch(cur);
      if (limits_.max_seconds <= 0 && limits_.max_tokens <= 0 && limits_.max_examples <= 0) break;
    }
  }
  ++state_.step;
  return out;
}

}  // namespace vtb::data
