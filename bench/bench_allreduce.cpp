// Allreduce bandwidth and backward/communication overlap.
//
//   mpirun -np 2 build/bench/bench_allreduce [--max-mib 256] [--layers 24] [--width 1024] [--reps 11]
//
// Part 1, for messages of 1 KiB .. max: time per allreduce of float32 through
//   raw       MPI_Allreduce on the caller's thread,
//   comm      vtb's MpiCommunicator (the communication thread),
//   bucketer  GradientBucketer with default buckets: (prepare + backward + finish) minus backward alone,
//             i.e. the communication time the training step actually waits for,
// with algbw = bytes / time and busbw = algbw * 2(n-1)/n (nccl-tests), and bucketer/raw busbw.
// Part 2, a deep MLP: backward alone, backward followed by a per-tensor allreduce (no overlap), and
// backward with the bucketer (overlap); "hidden" = share of the communication time overlapped.
#include <mpi.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "dist/gradient_bucketer.h"
#include "dist/world.h"

using namespace vtb;
using clock_type = std::chrono::steady_clock;

namespace {

// Median seconds of `iters` runs of `body`, all ranks in step (barrier before each run).
double median_seconds(int iters, const std::function<void()>& body) {
  std::vector<double> t;
  body();  // warm-up
  for (int i = 0; i < iters; ++i) {
    MPI_Barrier(MPI_COMM_WORLD);
    const auto start = clock_type::now();
    body();
    t.push_back(std::chrono::duration<double>(clock_type::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  double med = t[t.size() / 2];
  MPI_Allreduce(MPI_IN_PLACE, &med, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);  // the slowest rank decides
  return med;
}

std::string size_text(size_t bytes) {
  char buf[32];
  if (bytes >= (1u << 20))
    std::snprintf(buf, sizeof buf, "%zu MiB", bytes >> 20);
  else
    std::snprintf(buf, sizeof buf, "%zu KiB", bytes >> 10);
  return buf;
}

// Parameters totalling `bytes`, cut into tensors of at most 4 MiB (a layer's worth).
std::vector<torch::Tensor> parameters_of(size_t bytes) {
  std::vector<torch::Tensor> ps;
  int64_t left = static_cast<int64_t>(bytes / 4);
  while (left > 0) {
    const int64_t n = std::min<int64_t>(left, 1 << 20);
    ps.push_back(torch::ones({n}, torch::requires_grad()));
    left -= n;
  }
  return ps;
}

void backward_of(const std::vector<torch::Tensor>& ps) {
  torch::Tensor loss = torch::zeros({});
  for (const auto& p : ps) loss = loss + (p * 0.5).sum();
  loss.backward();
}

void part1(dist::Communicator& comm, size_t max_bytes) {
  const double n = comm.size();
  const double bus = 2 * (n - 1) / n;
  if (comm.rank() == 0)
    std::printf("%9s %11s %10s %12s %14s %9s\n", "size", "raw ms", "raw busbw", "comm busbw", "bucketer busbw",
                "ratio");
  for (size_t bytes = 1024; bytes <= max_bytes; bytes *= 4) {
    const int iters = static_cast<int>(std::clamp<size_t>((size_t{256} << 20) / bytes, 5, 200));
    torch::Tensor x = torch::ones({static_cast<int64_t>(bytes / 4)});
    const double raw = median_seconds(iters, [&] {
      MPI_Allreduce(MPI_IN_PLACE, x.data_ptr(), static_cast<int>(x.numel()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    });
    const double via_comm = median_seconds(iters, [&] { comm.allreduce(x, dist::ReduceOp::Sum); });

    auto ps = parameters_of(bytes);
    dist::NamedTensors named;
    for (size_t i = 0; i < ps.size(); ++i) named.emplace_back("p" + std::to_string(i), ps[i]);
    const double backward_alone = median_seconds(iters, [&] {
      for (auto& p : ps) p.mutable_grad() = torch::Tensor();
      backward_of(ps);
    });
    double with_bucketer;
    {
      dist::GradientBucketer bucketer(named, comm);
      with_bucketer = median_seconds(iters, [&] {
        bucketer.zero_grad();
        bucketer.prepare(true);
        backward_of(ps);
        bucketer.finish();
      });
    }
    const double exposed = std::max(with_bucketer - backward_alone, 1e-9);
    const double gb = bytes / 1e9;
    if (comm.rank() == 0)
      std::printf("%9s %11.3f %10.2f %12.2f %14.2f %9.2f\n", size_text(bytes).c_str(), raw * 1e3, gb / raw * bus,
                  gb / via_comm * bus, gb / exposed * bus, raw / exposed);
  }
}

void part2(dist::Communicator& comm, int layers, int width, int reps) {
  torch::manual_seed(0);
  torch::nn::Sequential mlp;
  for (int i = 0; i < layers; ++i) {
    mlp->push_back(torch::nn::Linear(width, width));
    mlp->push_back(torch::nn::ReLU());
  }
  torch::Tensor x = torch::randn({64, width});
  dist::NamedTensors named;
  for (const auto& p : mlp->named_parameters()) named.emplace_back(p.key(), p.value());
  size_t bytes = 0;
  for (const auto& [name, p] : named) bytes += p.numel() * 4;
  auto zero = [&] {
    for (auto& [name, p] : named) p.mutable_grad() = torch::Tensor();
  };

  const double backward = median_seconds(reps, [&] {
    zero();
    mlp->forward(x).pow(2).mean().backward();
  });
  const double sync_after = median_seconds(reps, [&] {
    zero();
    mlp->forward(x).pow(2).mean().backward();
    for (auto& [name, p] : named) comm.allreduce(p.mutable_grad(), dist::ReduceOp::Avg);
  });
  double overlapped;
  {
    dist::GradientBucketer bucketer(named, comm);
    overlapped = median_seconds(reps, [&] {
      bucketer.zero_grad();
      bucketer.prepare(true);
      mlp->forward(x).pow(2).mean().backward();
      bucketer.finish();
    });
  }
  if (comm.rank() == 0) {
    const double comm_time = sync_after - backward;
    std::printf("\nMLP %d x Linear(%d, %d), %s of gradients, batch 64, %d rank(s), %d thread(s) per rank\n", layers,
                width, width, size_text(bytes).c_str(), comm.size(), torch::get_num_threads());
    std::printf("  forward+backward alone            %8.1f ms\n", backward * 1e3);
    std::printf("  + per-tensor allreduce after      %8.1f ms\n", sync_after * 1e3);
    std::printf("  with the bucketer (overlapped)    %8.1f ms\n", overlapped * 1e3);
    std::printf("  communication hidden by overlap   %8.1f %%\n",
                comm_time > 0 ? 100.0 * (sync_after - overlapped) / comm_time : 0.0);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const auto& w = dist::init_world(&argc, &argv);
  size_t max_mib = 256;
  int layers = 24, width = 1024, reps = 11;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--max-mib"))
      max_mib = std::stoul(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--layers"))
      layers = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--width"))
      width = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--reps"))
      reps = std::stoi(argv[i + 1]);
  }
  torch::set_num_threads(dist::default_intra_op_threads());
  {
    auto comm = dist::make_communicator("cpu", {600});
    if (w.rank == 0)
      std::printf("%d rank(s), %d intra-op thread(s) per rank, float32\n", w.size, torch::get_num_threads());
    part1(*comm, max_mib << 20);
    part2(*comm, layers, width, reps);
  }
  dist::finalize_world();
}
