// Logging for every rank through spdlog's default logger: each line carries the rank, info lines come
// from rank 0 only (unless log.all_ranks), warnings and errors from every rank.
#pragma once

#include <string>

namespace vtb {

// `level`: trace, debug, info, warn, error. Throws ConfigError on an unknown level.
void setup_logging(int rank, const std::string& level, bool all_ranks);

}  // namespace vtb
