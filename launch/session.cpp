#include "launch/session.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <cstdlib>

#include "dist/parameter_check.h"
#include "launch/logging.h"

namespace vtb {

Session start_session(int* argc, char*** argv, const std::string& config_path,
                      const std::vector<std::string>& overrides) {
  return start_session(argc, argv, Config::load(config_path, overrides), config_path);
}

Session start_session(int* argc, char*** argv, Config config, const std::string& config_path) {
  Session s;
  s.world = &dist::init_world(argc, argv);
  s.config = std::move(config);
  setup_logging(s.world->rank, s.config.str("log.level"), s.config.flag("log.all_ranks"));

  const int64_t configured = s.config.integer("run.threads");
  s.threads = configured > 0 ? static_cast<int>(configured) : dist::default_intra_op_threads();
  torch::set_num_threads(s.threads);
  if (s.config.flag("run.deterministic")) {
    // GPU kernels that add with atomics (embedding backward, index_add, some cuDNN convolutions) sum in a
    // different order each run; these switch to ordered ones or fail loudly where none exists. cuBLAS
    // needs its workspace fixed for the same (CUDA's documented setting; set before the first handle).
    setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", /*overwrite=*/0);
    at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/false);
    at::globalContext().setDeterministicCuDNN(true);
    at::globalContext().setBenchmarkCuDNN(false);
    at::globalContext().setAllowTF32CuBLAS(false);
    at::globalContext().setAllowTF32CuDNN(false);
  }

  spdlog::info("vtb {} | {} rank(s), {} on this node | {} intra-op thread(s) per rank{}", VTB_VERSION, s.world->size,
               s.world->local_size, s.threads, configured > 0 ? " (run.threads)" : "");
  spdlog::info("resolved config{}:\n{}", config_path.empty() ? "" : " (" + config_path + ")", s.config.resolved_ini());

  dist::CommunicatorOptions options;
  options.timeout_s = s.config.real("dist.timeout_s");
  s.comm = dist::make_communicator(s.config.str("run.device"), options);

  // Ranks launched with different settings would train apart or wait on each other until the deadline.
  dist::Settings settings = s.config.values();
  settings.emplace_back("world size", std::to_string(s.world->size));
  settings.emplace_back("vtb version", VTB_VERSION);
  settings.emplace_back("LibTorch version", TORCH_VERSION);
  dist::verify_same_settings(*s.comm, settings);
  return s;
}

}  // namespace vtb
