// Process exit codes vtb documents (README "Exit codes"); scripts and the Slurm wrapper rely on them.
#pragma once

namespace vtb {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;              // an error the message explains (bad input, I/O, ...)
constexpr int kExitUsage = 2;              // bad command line or config key/value
constexpr int kExitCollectiveTimeout = 3;  // the watchdog ended the job: a collective passed dist.timeout_s
constexpr int kExitPeerMismatch = 4;       // ranks disagree (parameters, collective order): job ended
constexpr int kExitRequeue = 75;           // stopped by SIGTERM/SIGUSR1 after committing a checkpoint: requeue me
                                           // (75 = EX_TEMPFAIL, "try again later")

}  // namespace vtb
