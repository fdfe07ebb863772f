#include "data/shard_stream.h"

#include <stdexcept>
#include <utility>

namespace vtb::data {

ShardStream::ShardStream(std::shared_ptr<const ShardIndex> index, Sequence sequence)
    : index_(std::move(index)), sequence_(std::move(sequence)), first_(index_->sizes.size() + 1, 0) {
  for (size_t k = 0; k < index_->sizes.size(); ++k) first_[k + 1] = first_[k] + index_->sizes[k];
  seek(0, 0);
}

void ShardStream::seek(int64_t epoch, int64_t position) {
  epoch_ = epoch;
  order_ = sequence_(epoch);
  if (position < 0 || static_cast<size_t>(position) > order_.size())
    throw std::invalid_argument("shard stream: position " + std::to_string(position) + " is outside epoch " +
                                std::to_string(epoch) + "'s " + std::to_string(order_.size()) + " examples");
  next_ = static_cast<size_t>(position);
  held_.clear();
  tar_.reset();
  tar_shard_ = last_shard_ = -1;
  last_ordinal_ = -1;
  last_ = MemberBytes{};
}

MemberBytes ShardStream::take(size_t example) {
  for (size_t reads = 0; !held_.count(example); ++reads) {
    // Two sequences' worth of reads without meeting it: the sampler and the stream disagree (a bug, not data).
    if (reads > 2 * order_.size() + 2)
      throw std::logic_error("shard stream: example " + std::to_string(example) + " is not in the rank's sequence");
    read_next();
  }
  auto node = held_.extract(example);
  return std::move(node.mapped());
}

void ShardStream::read_next() {
  if (next_ >= order_.size()) {
    // Every example of the epoch was handed out before the next epoch's first is asked for (the sampler
    // finishes a chunk, and so an epoch, before it moves on): what is still held was read after a seek into
    // a chunk whose first batches had been taken, and is never asked for.
    seek(epoch_ + 1, 0);
    if (order_.empty()) throw std::logic_error("shard stream: an epoch with no examples for this rank");
  }
  const size_t example = order_[next_++];
  held_[example] = read_member(example);
}

MemberBytes ShardStream::read_member(size_t example) {
  const ShardMember& m = index_->members.at(example);
  const std::string& path = index_->paths.at(static_cast<size_t>(m.shard));
  if (m.shard == last_shard_ && m.ordinal == last_ordinal_) return last_;  // one member, several entries
  MemberBytes out;
  out.where = path + ": member '" + m.name + "' (#" + std::to_string(m.ordinal) + ")";
  try {
    if (const auto b = broken_.find(m.shard); b != broken_.end()) throw b->second;
    if (!tar_ || tar_shard_ != m.shard || tar_->ordinal() >= m.ordinal) {
      tar_.reset();
      tar_shard_ = m.shard;
      tar_ = std::make_unique<TarReader>(path);
    }
    while (tar_->ordinal() < m.ordinal)
      if (!tar_->next())
        throw ShardError("member missing", path + ": the shard ends after " + std::to_string(tar_->ordinal() + 1) +
                                               " members; member '" + m.name + "' (#" + std::to_string(m.ordinal) +
                                               ") is missing");
    const std::string& name = tar_->name();
    const bool matches =
        index_->layout == ShardLayout::LhotseShar
            ? name.rfind(m.name + ".", 0) == 0 && name.find('.', m.name.size() + 1) == std::string::npos
            : name == m.name;
    if (!matches)
      throw ShardError(index_->layout == ShardLayout::LhotseShar ? "cut id mismatch" : "member mismatch",
                       path + ": member #" + std::to_string(m.ordinal) + " is '" + name + "', expected '" + m.name +
                           (index_->layout == ShardLayout::LhotseShar
                                ? ".<ext>' (Shar pairs the i-th cut line with the i-th data member)"
                                : "' (the shard changed since it was indexed)"));
    if (name.size() > 7 && name.compare(name.size() - 7, 7, ".nodata") == 0)
      throw ShardError("cut without recording", out.where + ": a .nodata placeholder where the index expects audio");
    out.bytes = std::make_shared<const std::string>(tar_->read());
    // A shard's last example: a Shar tar must end where its cuts file does.
    const int64_t expected = index_->expected_members.at(static_cast<size_t>(m.shard));
    if (expected >= 0 && static_cast<int64_t>(example) + 1 == first_[static_cast<size_t>(m.shard) + 1]) {
      while (tar_->next()) {
      }
      if (tar_->ordinal() + 1 != expected)
        throw ShardError("cut count mismatch", path + ": holds " + std::to_string(tar_->ordinal() + 1) +
                                                   " members, its cuts file " + std::to_string(expected / 2) +
                                                   " cuts (two members each); the shard and its cuts disagree");
      tar_.reset();
    }
  } catch (const ShardError& e) {
    if (e.reason == "truncated shard") broken_.emplace(m.shard, e);
    out.bytes.reset();
    out.error = e.what();
    out.reason = e.reason;
  }
  last_ = out;
  last_shard_ = m.shard;
  last_ordinal_ = m.ordinal;
  return out;
}

}  // namespace vtb::data
