#!/usr/bin/env bash
# Installs every Debian 12 package vtb needs to build, test and run its quickstart.
# Idempotent: a second run installs nothing and takes a second. Needs root (or sudo).
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git clang libclang-rt-14-dev
  # LibTorch 1.13 (CPU) and a fast BLAS for it (the reference BLAS is ~18x slower)
  libtorch-dev libopenblas0-openmp python3-torch python3-torchaudio
  # MPI ranks
  openmpi-bin libopenmpi-dev
  # checkpoints
  libhdf5-dev hdf5-tools python3-h5py
  # command line, logging, JSON
  libboost-program-options-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # data: tokenizer, audio, resampling, speech synthesis
  libsentencepiece-dev sentencepiece libsndfile1-dev libsoxr-dev espeak-ng libespeak-ng-dev
  python3-numpy
  # a real one-node Slurm for the Slurm test (tests/slurm), and the quickstart's loss-curve picture
  slurmctld slurmd slurm-client munge python3-matplotlib
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
