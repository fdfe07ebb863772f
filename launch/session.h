// What every distributed command starts with: MPI ranks, the resolved config, logging with the rank,
// intra-op threads, and the communicator for the configured device.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "dist/world.h"
#include "launch/config.h"

namespace vtb {

struct Session {
  const dist::World* world = nullptr;
  Config config;
  int threads = 1;  // intra-op threads of this rank
  std::unique_ptr<dist::Communicator> comm;
};

// 1. MPI; 2. config (file + overrides); 3. logging; 4. threads; 5. the resolved config on rank 0;
// 6. the communicator; 7. every rank checked to run with the same settings, world size and versions, or
// PeerMismatchError on every rank (collective: every rank must call this).
Session start_session(int* argc, char*** argv, const std::string& config_path,
                      const std::vector<std::string>& overrides);
// The same with a config already loaded; `source` names where it came from, for the log.
Session start_session(int* argc, char*** argv, Config config, const std::string& source);

}  // namespace vtb
