#include "dist/watchdog.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>

#include "dist/exit_codes.h"
#include "dist/world.h"

namespace vtb::dist {

namespace {
// " on node1": where this rank runs, when MPI told us.
std::string on_host() { return world().host.empty() ? "" : " on " + world().host; }
}  // namespace

std::string format_bytes(size_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  if (bytes < (1u << 20)) return fmt::format("{:.1f} KiB", bytes / 1024.0);
  if (bytes < (1u << 30)) return fmt::format("{:.1f} MiB", bytes / 1048576.0);
  return fmt::format("{:.2f} GiB", bytes / 1073741824.0);
}

Watchdog::Watchdog(std::string backend, int rank, double timeout_s, TimeoutHandler on_timeout, HealthProbe health)
    : backend_(std::move(backend)),
      rank_(rank),
      timeout_s_(timeout_s),
      on_timeout_(std::move(on_timeout)),
      health_(std::move(health)) {
  if (!on_timeout_) {
    on_timeout_ = [](const CollectiveRecord&, const std::string& message) {
      abort_job(message, kExitCollectiveTimeout);
    };
  }
  thread_ = std::thread([this] { run(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

uint64_t Watchdog::start(CollectiveRecord record, std::function<bool()> done) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t ticket = next_ticket_++;
  in_flight_.emplace(ticket, Entry{std::move(record), std::chrono::steady_clock::now(), std::move(done)});
  return ticket;
}

void Watchdog::finish(uint64_t ticket) {
  std::lock_guard<std::mutex> lock(mu_);
  in_flight_.erase(ticket);
}

std::string Watchdog::describe(const Entry& e, double waited_s) const {
  const auto& r = e.record;
  return fmt::format(
      "rank {}{}: collective timeout: {} #{} ({}, {}, backend {}) did not complete within "
      "dist.timeout_s = {:g} s (waited {:.1f} s); its peers: {}. Likely causes: another rank died or was "
      "killed, a node or its link was lost, skipped this collective or issued collectives in a different "
      "order (compare the last sequence number every rank logged), or is stuck outside collectives (data "
      "loading, checkpoint I/O, a debugger). Ending the job now; raise dist.timeout_s if a legitimately slow "
      "step (first step, large checkpoint) needs longer.",
      rank_, on_host(), r.op, r.seq, r.dtype, format_bytes(r.bytes), backend_, timeout_s_, waited_s,
      peers_text(world()));
}

void Watchdog::run() {
  // Poll often enough that a deadline is noticed within ~2% of it, but at most 10 times a second.
  const auto period = std::chrono::duration<double>(std::clamp(timeout_s_ / 50.0, 0.01, 0.1));
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, period, [this] { return stopping_; });
    if (stopping_ || fired_) continue;
    const auto now = std::chrono::steady_clock::now();
    if (health_ && !in_flight_.empty()) {
      const std::string error = health_();
      if (!error.empty()) {
        fired_ = true;
        const Entry& e = in_flight_.begin()->second;  // the oldest collective still in flight
        const CollectiveRecord record = e.record;
        const std::string message = fmt::format(
            "rank {}{}: {} reported an error while {} #{} ({}, {}) was in flight, after {:.1f} s: {}. A peer "
            "rank ({}) probably died or its link failed; ending the job.",
            rank_, on_host(), backend_, record.op, record.seq, record.dtype, format_bytes(record.bytes),
            std::chrono::duration<double>(now - e.started).count(), error, peers_text(world()));
        lock.unlock();
        on_timeout_(record, message);
        lock.lock();
        continue;
      }
    }
    for (auto it = in_flight_.begin(); it != in_flight_.end();) {
      Entry& e = it->second;
      if (e.done && e.done()) {
        it = in_flight_.erase(it);
        continue;
      }
      const double waited = std::chrono::duration<double>(now - e.started).count();
      if (waited > timeout_s_) {
        fired_ = true;
        const CollectiveRecord record = e.record;
        const std::string message = describe(e, waited);
        lock.unlock();  // the handler may end the process or call back into finish()
        on_timeout_(record, message);
        lock.lock();
        break;
      }
      ++it;
    }
  }
}

}  // namespace vtb::dist
