// A deadline for every collective. A hung collective is otherwise silent forever (a dead peer, a rank
// that skipped a call, a rank stuck in I/O); the watchdog turns it into a message and the end of the job.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace vtb::dist {

struct CollectiveRecord {
  uint64_t seq = 0;   // the communicator's sequence number (Note [Collective order])
  std::string op;     // "allreduce", "broadcast", ...
  std::string dtype;  // "float32", ...
  size_t bytes = 0;   // payload of this rank
};

class Watchdog {
 public:
  // Called once, on the watchdog thread, with the expired record and a message for people.
  // The default handler logs the message and ends the job (abort_job, kExitCollectiveTimeout).
  using TimeoutHandler = std::function<void(const CollectiveRecord&, const std::string& message)>;

  // Polled with the collectives while any is in flight: a non-empty answer is an error the backend
  // reported asynchronously (NCCL: a peer vanished, a link failed); it ends the job like a timeout.
  using HealthProbe = std::function<std::string()>;

  Watchdog(std::string backend, int rank, double timeout_s, TimeoutHandler on_timeout = {}, HealthProbe health = {});
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // The collective started now. With a `done` probe the watchdog polls it and retires the record
  // itself (for GPU work finished asynchronously); without one, call finish(ticket).
  uint64_t start(CollectiveRecord record, std::function<bool()> done = {});
  void finish(uint64_t ticket);

  double timeout_s() const { return timeout_s_; }

 private:
  struct Entry {
    CollectiveRecord record;
    std::chrono::steady_clock::time_point started;
    std::function<bool()> done;
  };
  void run();
  std::string describe(const Entry& e, double waited_s) const;

  const std::string backend_;
  const int rank_;
  const double timeout_s_;
  TimeoutHandler on_timeout_;
  HealthProbe health_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, Entry> in_flight_;
  uint64_t next_ticket_ = 1;
  bool stopping_ = false;
  bool fired_ = false;
  std::thread thread_;
};

// "4.0 MiB", "512 B": sizes in messages.
std::string format_bytes(size_t bytes);

}  // namespace vtb::dist
