#!/usr/bin/env bash
# Installs what vtb needs to build, test and run its quickstart: Debian 12 packages, and LibTorch from the
# PyPI torch wheel in a virtual environment outside the checkout (VTB_TORCH_ENV, default
# /opt/vtb/torch-2.14.1), so a fresh clone and a second checkout reuse it.
# Idempotent: a second run installs nothing and takes a second. Needs root (or sudo).
set -euo pipefail

packages=(
  clang-format  # the format check (tests/toolchain/format_check.sh)
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git clang libclang-rt-14-dev
  # the venv LibTorch lives in; Debian's torch for the independent Python references in tests (and a fast
  # BLAS for it: the reference BLAS is ~18x slower)
  python3-venv python3-torch python3-torchaudio libopenblas0-openmp
  # MPI ranks
  openmpi-bin libopenmpi-dev
  # checkpoints
  libhdf5-dev hdf5-tools python3-h5py
  # command line, logging, JSON
  libboost-program-options-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # .nemo archives (tar) and their model_config.yaml
  libarchive-dev libyaml-cpp-dev
  # real human speech for the feature and interop checks (LibriVox, spoken card names)
  pocketsphinx-testdata
  # data: tokenizer, audio, resampling, speech synthesis
  libsentencepiece-dev sentencepiece libsndfile1-dev libsoxr-dev espeak-ng libespeak-ng-dev
  # the other two synthesizers: flite (library and voices), festival with a diphone and an HTS voice each
  flite1-dev festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
  python3-numpy
  # a real one-node Slurm for the Slurm test (tests/slurm), and the quickstart's loss-curve picture
  slurmctld slurmd slurm-client munge python3-matplotlib
  # two test hosts in network namespaces (tests/multinode): veths, addresses, packet-drop rules
  iproute2 nftables util-linux
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} Debian packages present"
else
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# ---- LibTorch: the PyPI torch wheel ------------------------------------------------------------------
# torch 2.14.1 is the newest release built against CUDA 13.0 (its cuda-toolkit dependency is 13.0.3),
# the toolkit's major.minor at /usr/local/cuda; 2.15 moved to CUDA 13.2. With a toolkit present the
# wheel comes with its nvidia-* dependencies (cuDNN 9.24, NCCL 2.30.7, cuBLAS 13.1: the versions torch was
# built and tested with; the toolkit's own are older) and vtb builds for CUDA. Without one, torch alone
# (--no-deps), and vtb builds CPU-only (cmake/VtbTorch.cmake). Measured 2026-12-03, 50 MB/s from PyPI:
# with dependencies 64 s, 5.4 GB; --no-deps 19 s, 1.2 GB (README "Build").
torch_version=2.14.1
env_dir=${VTB_TORCH_ENV:-/opt/vtb/torch-$torch_version}
cuda_root=${CUDA_HOME:-/usr/local/cuda}
flavour=cpu
if [[ -x $cuda_root/bin/nvcc ]]; then flavour=cuda; fi
marker=$env_dir/.vtb-installed
pip_args=(--quiet --disable-pip-version-check --no-input)
if [[ -f $marker ]] && grep -qx "torch==$torch_version $flavour" "$marker"; then
  echo "install-deps: torch $torch_version ($flavour) present in $env_dir"
else
  echo "install-deps: installing torch $torch_version ($flavour) into $env_dir"
  $sudo mkdir -p "$env_dir"
  $sudo /usr/bin/python3 -m venv "$env_dir"
  if [[ $flavour == cuda ]]; then
    $sudo "$env_dir/bin/pip" install "${pip_args[@]}" "torch==$torch_version"
  else
    echo "install-deps: no CUDA toolkit at $cuda_root: torch without its CUDA libraries; vtb will build CPU-only"
    $sudo "$env_dir/bin/pip" install "${pip_args[@]}" --no-deps "torch==$torch_version"
    # The wheel's libtorch_cpu.so itself needs libcudart.so.13 and libcupti.so.13 (readelf -d): the two small
    # wheels that hold them (~5 MB of libraries), at the versions torch 2.14.1 requires (cuda-toolkit==13.0.3).
    $sudo "$env_dir/bin/pip" install "${pip_args[@]}" "cuda-toolkit[cudart,cupti]==13.0.3"
  fi
  echo "torch==$torch_version $flavour" | $sudo tee "$marker" >/dev/null
fi

# ---- The real libraries, for tests/interop: transformers, peft, safetensors --------------------------
# A second venv (VTB_INTEROP_ENV) with exactly the versions in tests/interop/requirements.txt; it sees the
# torch above through a .pth file instead of a second 1.2 GB copy. Reinstalled when the pins change.
# Measured 2026-12-04, PyPI ~50 MB/s: 44 s, 320 MB.
interop_dir=${VTB_INTEROP_ENV:-/opt/vtb/interop}
requirements=$(dirname "$0")/../tests/interop/requirements.txt
want="$(sha256sum <"$requirements" | cut -c1-16) torch==$torch_version"
if [[ -f $interop_dir/.vtb-installed ]] && grep -qx "$want" "$interop_dir/.vtb-installed"; then
  echo "install-deps: interop libraries present in $interop_dir"
else
  echo "install-deps: installing the interop libraries (tests/interop/requirements.txt) into $interop_dir"
  $sudo rm -rf "$interop_dir"
  $sudo /usr/bin/python3 -m venv "$interop_dir"
  site=$("$interop_dir/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  torch_site=$("$env_dir/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  echo "$torch_site" | $sudo tee "$site/vtb-torch.pth" >/dev/null
  # Every dependency is pinned in the file: no resolver, the same set on every machine.
  $sudo "$interop_dir/bin/pip" install "${pip_args[@]}" --no-deps -r "$requirements"
  echo "$want" | $sudo tee "$interop_dir/.vtb-installed" >/dev/null
fi
