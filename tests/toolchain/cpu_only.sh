#!/usr/bin/env bash
# The fallback for a machine without a CUDA toolkit (a newcomer's laptop): the same sources configure
# against the same torch wheel with no toolkit visible, the configure line says "CPU-only build" once,
# the binary links no CUDA library itself and loads none but the two that the wheel's libtorch_cpu.so needs
# (libcudart, libcupti: no cuBLAS, cuDNN, NCCL or libtorch_cuda), says so in --version, runs a 2-rank job, and refuses run.device=cuda with a message.
# usage: cpu_only.sh SOURCE_DIR WORK_DIR
set -uo pipefail
src=$1 work=$2
fail() { echo "FAIL: $*"; exit 1; }
mkdir -p "$work"
# No toolkit: VTB_CUDA_ROOT points nowhere and no nvcc is on PATH.
PATH=$(tr ':' '\n' <<<"$PATH" | grep -v cuda | paste -sd:)
cmake -S "$src" -B "$work" -G Ninja -DCMAKE_BUILD_TYPE=Release -DVTB_CUDA_ROOT=/nonexistent -UVTB_WITH_CUDA \
  -DVTB_BUILD_TESTS=OFF -DVTB_BUILD_BENCH=OFF >"$work/configure.log" 2>&1 || { tail -20 "$work/configure.log"; fail "configure"; }
lines=$(grep -c "CPU-only build" "$work/configure.log")
[[ $lines -eq 1 ]] || fail "expected one 'CPU-only build' line from configure, got $lines"
grep "CPU-only build" "$work/configure.log"
cmake --build "$work" --target vtb >"$work/build.log" 2>&1 || { tail -20 "$work/build.log"; fail "build"; }
vtb=$work/launch/vtb
# vtb itself links no CUDA library; the wheel's libtorch_cpu.so needs libcudart and libcupti only (which
# install-deps installs without a toolkit), never cuBLAS, cuDNN, NCCL or libtorch_cuda.
needed=$(readelf -d "$vtb" | grep NEEDED)
if grep -E "torch_cuda|c10_cuda|cudart|nccl|cublas|cudnn|cupti" <<<"$needed"; then fail "the CPU-only binary links CUDA libraries"; fi
libs=$(ldd "$vtb")
if grep -E "torch_cuda|c10_cuda|nccl|cublas|cudnn|nvshmem" <<<"$libs"; then fail "the CPU-only binary loads CUDA libraries beyond cudart/cupti"; fi
version=$("$vtb" --version) || fail "vtb --version"
echo "$version"
grep -q "CUDA/NCCL: not built (CPU-only build)" <<<"$version" || fail "--version does not say CPU-only"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$work/launch/vtb-run" -n 2 dist check --iterations 1 >"$work/dist.log" 2>&1 || { tail "$work/dist.log"; fail "dist check"; }
grep -q "all collectives exact" "$work/dist.log" || fail "dist check did not verify the collectives"
out=$("$vtb" dist check --run.device=cuda 2>&1) && fail "run.device=cuda was accepted by a CPU-only build"
grep -q "built without CUDA" <<<"$out" || fail "no clear refusal of run.device=cuda: $out"
echo "OK: CPU-only fallback builds, runs 2 ranks, refuses cuda"
