#include "launch/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "launch/config.h"

namespace vtb {

void setup_logging(int rank, const std::string& level, bool all_ranks) {
  auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off")
    throw ConfigError("log.level: unknown level '" + level + "' (trace, debug, info, warn, error, off)");
  if (rank != 0 && !all_ranks) parsed = std::max(parsed, spdlog::level::warn);

  auto logger = spdlog::get("vtb");
  if (!logger) logger = spdlog::stderr_color_mt("vtb");
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e [rank " + std::to_string(rank) + "] %^%l%$ %v");
  logger->set_level(parsed);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
}

}  // namespace vtb
