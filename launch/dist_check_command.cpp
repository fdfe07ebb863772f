// vtb dist check: run under mpirun/srun before training on new nodes. Shows where every rank landed,
// verifies every collective element by element, and measures allreduce bandwidth.
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <map>
#include <sstream>

#include "dist/collective_check.h"
#include "dist/exit_codes.h"
#include "launch/command_line.h"
#include "launch/commands.h"
#include "launch/session.h"

namespace vtb {
namespace {

void log_layout(const Session& s) {
  std::ostringstream mine;
  mine << s.world->host << " local " << s.world->local_rank << "/" << s.world->local_size << " threads " << s.threads
       << " launcher-local-rank " << dist::launcher_local_rank();
  const auto all = dist::allgather_strings(*s.comm, mine.str());
  for (size_t r = 0; r < all.size(); ++r) spdlog::info("rank {}: {}", r, all[r]);
}

int64_t log_checks(Session& s, const std::vector<int64_t>& sizes) {
  // Sum wrong counts over ranks so rank 0 reports the whole job, like nccl-tests' #wrong column.
  const auto checks = dist::check_collectives(*s.comm, sizes);
  at::Tensor wrong = torch::zeros({static_cast<int64_t>(checks.size())}, torch::kLong);
  for (size_t i = 0; i < checks.size(); ++i) wrong[i] = checks[i].wrong;
  wrong = wrong.to(s.comm->device());
  s.comm->allreduce(wrong, dist::ReduceOp::Sum);
  wrong = wrong.cpu();
  std::map<std::string, std::pair<int64_t, int64_t>> by_kind;  // "op dtype" -> (elements, wrong)
  for (size_t i = 0; i < checks.size(); ++i) {
    auto& [elements, bad] = by_kind[checks[i].op + " " + checks[i].dtype];
    elements += checks[i].elements;
    bad += wrong[i].item<int64_t>();
  }
  int64_t total_wrong = 0;
  for (const auto& [kind, counts] : by_kind) {
    spdlog::info("check {:<28} {:>10} elements  {:>6} wrong  {}", kind, counts.first, counts.second,
                 counts.second == 0 ? "OK" : "FAILED");
    total_wrong += counts.second;
  }
  return total_wrong;
}

void log_bandwidth(Session& s, int iterations) {
  const double n = s.comm->size();
  for (int64_t mib : {1, 16, 64}) {
    at::Tensor t = torch::ones({mib << 18}, torch::TensorOptions().dtype(torch::kFloat).device(s.comm->device()));
    s.comm->allreduce(t, dist::ReduceOp::Sum);  // warm-up
    s.comm->barrier();
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < iterations; ++i) s.comm->allreduce(t, dist::ReduceOp::Sum);
    s.comm->barrier();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / iterations;
    const double algbw = (mib << 20) / seconds / 1e9;
    spdlog::info("allreduce {:>3} MiB float32: {:8.3f} ms  algbw {:6.2f} GB/s  busbw {:6.2f} GB/s", mib, seconds * 1e3,
                 algbw, algbw * 2 * (n - 1) / n);
  }
}

}  // namespace

int dist_check_command(int argc, char** argv) {
  boost::program_options::options_description options("Options");
  options.add_options()("iterations", boost::program_options::value<int>()->default_value(5),
                        "allreduce repetitions per bandwidth figure (0 skips bandwidth)");
  ParsedCommand cmd = parse_command(argc, argv, options);
  if (cmd.help) {
    std::cout << command_help("mpirun -np N vtb dist check [--config F] [--iterations K]",
                              "Checks the ranks of a job: where each landed (host, local rank, threads), every "
                              "collective in every dtype with exactly verifiable inputs, and allreduce bandwidth.",
                              options);
    return kExitOk;
  }
  Session s = start_session(&argc, &argv, cmd.options["config"].as<std::string>(), cmd.overrides);
  log_layout(s);
  const int64_t wrong = log_checks(s, {0, 1, 7, 1000, (1 << 20) + 3});
  if (cmd.options["iterations"].as<int>() > 0) log_bandwidth(s, cmd.options["iterations"].as<int>());
  spdlog::info("dist check: {}", wrong == 0 ? "all collectives exact" : std::to_string(wrong) + " wrong elements");
  return wrong == 0 ? kExitOk : kExitError;
}

}  // namespace vtb
