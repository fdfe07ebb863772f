#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is missing, builds, runs every test under CTest.
# Labels: unit (one process), mpi (real ranks through mpirun -np 2 and -np 3), e2e, build (the CPU-only
# fallback configuration), slurm. Extra arguments go to
# ctest, e.g. `bash scripts/test.sh -L unit`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
# ccache hits across clones (CI builds a fresh clone each time): paths relative to the checkout.
export CCACHE_BASEDIR=$PWD
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)"
# Serial: the MPI tests already use every core, and the fault drills time their own deadlines.
cd build && ctest --output-on-failure "$@"
