// How a thread vtb creates runs ATen ops: single-threaded, so the process keeps one OpenMP team.
#pragma once

#include <ATen/Parallel.h>

#include "compat/torch_version.h"

// Resolved at run time from the libgomp and MKL LibTorch loads; null where its build has none.
extern "C" void omp_set_num_threads(int) __attribute__((weak));
extern "C" int MKL_Set_Num_Threads_Local(int) __attribute__((weak));  // mkl.h's mkl_set_num_threads_local

namespace vtb::compat {

// Note [One OpenMP team]: every thread that runs an ATen op above the grain size becomes the master of its
// own OpenMP team of run.threads threads. libgomp counts all teams' threads, and once they exceed the CPUs it
// stops spinning at barriers (its spin count drops from 300,000 to 100): the training thread's workers
// then sleep in a futex after each parallel region and must be woken for the next one. The loader threads
// (features, batching) and the communication thread (the averaging division) made two more teams, so on 2
// cores 1 rank × 2 threads ran slower than 1 × 1 (perf: 178,000 context switches in 30 steps of `small`
// against 1,900, both in gomp_barrier_wait_end). Helper threads therefore run ATen single-threaded — their
// work is small, and they overlap the training thread rather than share its cores — which keeps one team.
// Call at the start of every thread vtb creates that may run ATen ops.
inline void run_aten_serially_on_this_thread() {
  (void)at::get_num_threads();  // LibTorch's lazy per-thread init first: it would reset what follows
  if (omp_set_num_threads != nullptr) omp_set_num_threads(1);
  if (MKL_Set_Num_Threads_Local != nullptr) MKL_Set_Num_Threads_Local(1);
}

}  // namespace vtb::compat
