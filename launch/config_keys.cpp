// Every configuration key vtb knows, with its default and meaning. Keep sections together: the
// resolved config prints in this order.
#include <cstdint>
#include <string>

#include "launch/config.h"

namespace vtb {

void declare_config_keys(boost::program_options::options_description& options) {
  namespace po = boost::program_options;
  options.add_options()
      // [run]
      ("run.dir", po::value<std::string>()->default_value("runs/default"),
       "run folder: checkpoints, metrics.jsonl, logs")
      ("run.device", po::value<std::string>()->default_value("cpu"), "cpu (MPI collectives) or cuda (NCCL collectives)")
      ("run.threads", po::value<int64_t>()->default_value(0),
       "intra-op threads per rank; 0 = the CPUs this rank may use / ranks sharing them")
      // [log]
      ("log.level", po::value<std::string>()->default_value("info"), "trace, debug, info, warn, error")
      ("log.all_ranks", po::value<bool>()->default_value(false), "info lines from every rank, not only rank 0")
      // [dist]
      ("dist.timeout_s", po::value<double>()->default_value(600),
       "deadline of every collective in seconds; past it the job ends with a message naming the collective")
      ("dist.first_bucket_mib", po::value<double>()->default_value(1),
       "size of the first gradient bucket (small, so reduction starts early in backward)")
      ("dist.bucket_mib", po::value<double>()->default_value(25), "size of the other gradient buckets");
}

}  // namespace vtb
