#include "train/metrics_log.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <utility>

#include "io/atomic_file.h"

#ifdef VTB_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace vtb::train {
namespace {

namespace fs = std::filesystem;

// Peak bytes LibTorch's caching allocator handed out on the training GPU (0 on CPU).
double device_peak_gib(const c10::Device& device) {
#ifdef VTB_WITH_CUDA
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    const auto& all = stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)];
    return static_cast<double>(all.peak) / (1 << 30);
  }
#endif
  (void)device;
  return 0;
}

double resident_gib() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1 << 30);
}

std::string duration_text(double seconds) {
  const auto s = static_cast<long long>(seconds);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, s % 3600 / 60);
  else
    std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  return buf;
}

// Keeps metrics.jsonl lines of steps ≤ `step`.
void truncate_metrics(const fs::path& file, int64_t step) {
  if (!fs::exists(file)) return;
  std::ifstream in(file);
  std::string kept, line;
  while (std::getline(in, line)) {
    try {
      if (nlohmann::json::parse(line).value("step", int64_t{0}) <= step) kept += line + "\n";
    } catch (const nlohmann::json::exception&) {  // a line cut by the kill
    }
  }
  in.close();
  io::write_file_atomically(file.string(), kept);
}

}  // namespace

FlopModel::FlopModel(model::SpeechLM& lm) {
  for (const auto& p : lm->named_parameters()) {
    const bool llm = p.key().rfind("llm.", 0) == 0;
    (llm ? (p.value().requires_grad() ? lora : frozen) : speech) += static_cast<double>(p.value().numel());
  }
}

MetricsLog::MetricsLog(dist::Communicator& comm, const std::string& run_dir, const MetricsSettings& settings,
                       int64_t max_steps, model::SpeechLM& lm, std::vector<std::string> source_names,
                       int64_t resumed_step)
    : settings_(settings),
      max_steps_(max_steps),
      root_(comm.rank() == 0),
      tty_(root_ && isatty(STDERR_FILENO)),
      world_(comm.size()),
      device_(comm.device()),
      flops_(lm),
      source_names_(std::move(source_names)) {
  if (!root_) return;
  const fs::path path = fs::path(run_dir) / "metrics.jsonl";
  fs::create_directories(run_dir);
  truncate_metrics(path, resumed_step);
  path_ = path.string();
  file_.open(path, std::ios::app);
  if (!file_) throw io::WriteError(path_ + ": cannot open for appending: " + std::strerror(errno));
}

void MetricsLog::record(const StepRecord& r, const StepStatistics& stats) {
  step_time_ema_ = step_time_ema_ == 0 ? r.seconds : 0.9 * step_time_ema_ + 0.1 * r.seconds;
  if (!root_) return;
  std::string sources;  // the sources this step drew from, "asr+text"
  for (size_t k = 0; k < source_names_.size(); ++k)
    if (stats.source_tokens[k] > 0 || stats.source_loss_sum[k] != 0)
      sources += (sources.empty() ? "" : "+") + source_names_[k];
  const double loss = stats.loss(), seconds = r.seconds;
  const double model_flops = flops_.step(stats.positions, stats.frames);
  nlohmann::json line{{"step", r.step},
                      {"loss", loss},
                      {"source", sources},
                      {"lr", r.lr},
                      {"grad_norm", r.update.grad_norm},
                      {"tokens", stats.tokens},
                      {"audio_s", stats.audio_seconds},
                      {"skipped_examples", stats.skipped},
                      {"step_s", seconds},
                      {"tokens_per_s", stats.tokens / seconds},
                      {"audio_s_per_s", stats.audio_seconds / seconds},
                      {"positions_per_s", stats.positions / seconds},
                      {"model_tflops", model_flops / seconds / 1e12},
                      {"mem_gib", resident_gib()},
                      {"gpu_peak_gib", device_peak_gib(device_)},
                      {"skipped", !r.update.applied}};
  if (settings_.peak_tflops > 0) line["mfu"] = model_flops / seconds / 1e12 / (settings_.peak_tflops * world_);
  for (size_t k = 0; k < source_names_.size(); ++k)
    if (stats.source_tokens[k] > 0) line["loss_" + source_names_[k]] = stats.source_loss(k);
  file_ << line.dump() << "\n";
  file_.flush();
  // A lost line is a lost step in every plot and report: a full disk stops the run here, before its next
  // checkpoint would fail anyway.
  if (!file_)
    throw io::WriteError(path_ + ": cannot append step " + std::to_string(r.step) + ": " + std::strerror(errno));

  const int64_t max_steps = max_steps_;
  const std::string eta = duration_text(step_time_ema_ * static_cast<double>(max_steps - r.step));
  if (tty_) {  // one line, rewritten in place
    std::fprintf(stderr, "\rstep %lld/%lld  loss %.4f (%s)  lr %.2e  %.2f s/step  ETA %s   ",
                 static_cast<long long>(r.step), static_cast<long long>(max_steps), loss, sources.c_str(), r.lr,
                 seconds, eta.c_str());
    if (r.step == max_steps) std::fprintf(stderr, "\n");
  } else if (r.step % settings_.log_every == 0 || r.step == max_steps) {
    spdlog::info("step {}/{} loss {:.4f} ({}) lr {:.2e} grad_norm {:.3f} {:.2f} s/step, ETA {}", r.step, max_steps,
                 loss, sources, r.lr, r.update.grad_norm, seconds, eta);
  }
}

}  // namespace vtb::train
