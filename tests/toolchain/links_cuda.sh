#!/usr/bin/env bash
# A CUDA build of vtb must load the CUDA LibTorch and NCCL (the ones from the torch wheel, not a
# toolkit's older copies), and reference NCCL's collectives itself.
# usage: links_cuda.sh VTB_BINARY VTB_WITH_CUDA
set -uo pipefail
vtb=$1 with_cuda=$2
if [[ $with_cuda != ON ]]; then echo "SKIP: built without CUDA (VTB_WITH_CUDA=$with_cuda)"; exit 77; fi
fail() { echo "FAIL: $*"; exit 1; }
libs=$(ldd "$vtb") || fail "ldd $vtb"
for lib in libtorch_cuda.so libc10_cuda.so libnccl.so.2 libcudart.so; do
  line=$(grep -F "$lib" <<<"$libs") || fail "$lib is not loaded by $vtb"
  grep -q "not found" <<<"$line" && fail "$line"
  echo "$line"
done
grep -F libnccl.so.2 <<<"$libs" | grep -q "/nvidia/nccl/" || fail "libnccl.so.2 does not come from the torch wheel's nvidia-nccl"
# nm's output is read whole first: `nm | grep -q` under pipefail fails when grep stops early and nm gets SIGPIPE.
undefined=$(nm -D --undefined-only "$vtb") || fail "nm -D $vtb"
for sym in ncclAllReduce ncclCommInitRank ncclCommAbort ncclCommGetAsyncError; do
  grep -qw "$sym" <<<"$undefined" || fail "$vtb does not call $sym"
done
echo "OK: CUDA LibTorch and NCCL linked"
