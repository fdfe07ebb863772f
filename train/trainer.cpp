#include "train/trainer.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <thread>
#include <utility>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "ckpt/commit.h"
#include "data/manifest.h"
#include "dist/exit_codes.h"
#include "model/torch_compat.h"
#include "train/stop_signal.h"
#include "train/pretrain_encoder.h"
#include "train/training_state.h"

namespace vtb::train {
namespace {

namespace fs = std::filesystem;

}  // namespace

model::SpeechLM build_speech_lm(const TrainSettings& s, const data::Tokenizer& tok) {
  model::SpeechLMConfig c = s.model;
  c.audio_token_id = tok.special().audio;
  // Every rank seeds the same generator before building: identical stand-in LLM and initial weights.
  torch::manual_seed(static_cast<uint64_t>(s.seed));
  model::SpeechLM lm = s.llm_dir.empty() ? model::SpeechLM(c)
                                         : model::SpeechLM(c, model::load_hf_decoder(s.llm_dir, c.lora, torch::kFloat));
  if (tok.vocab_size() > lm->llm->config().vocab)
    throw std::runtime_error("the tokenizer has " + std::to_string(tok.vocab_size()) + " pieces but the LLM's vocabulary is " +
                             std::to_string(lm->llm->config().vocab) + " (llm.vocab, or the model's embedding rows)");
  if (!s.encoder_init.empty()) load_encoder_weights(lm, s.encoder_init);
  lm->freeze_llm_base();
  lm->train();
  return lm;
}

std::vector<data::LoaderSource> read_sources(const TrainSettings& s) {
  if (s.sources.empty()) throw std::runtime_error("no data sources: give at least one data.source");
  std::vector<data::LoaderSource> out;
  for (const auto& src : s.sources) {
    data::ManifestOptions o;
    o.kind = data::parse_source_kind(src.kind);
    o.default_prompt = src.prompt;
    o.skip_bad_lines = s.skip_bad_lines;
    o.min_duration = s.min_duration;
    o.max_duration = s.max_duration;
    data::Manifest m = data::read_manifest(src.manifest, o);
    if (m.examples.empty()) throw std::runtime_error("source '" + src.name + "' (" + src.manifest + ") has no usable examples");
    out.push_back({src.name, src.weight, std::move(m.examples)});
  }
  return out;
}

namespace {

// Fault injection for the crash/resume tests (tests/e2e/resume_exact.sh), from the environment:
//   VTB_FAULT_KILL_AFTER_STEP=N      every rank SIGKILLs itself after step N (a crash between checkpoints)
//   VTB_FAULT_KILL_IN_CHECKPOINT=N   every rank SIGKILLs itself while writing checkpoint N (before commit)
//   VTB_FAULT_TERM_AT_STEP=N         the last rank receives SIGTERM during step N (as from Slurm)
//   VTB_FAULT_NAN_FROM_STEP=N        rank 0's loss is NaN from step N on (steps skipped, then the run stops)
struct Faults {
  int64_t kill_after = -1, kill_in_checkpoint = -1, term_at = -1, nan_from = -1;
  static int64_t read(const char* name) {
    const char* v = std::getenv(name);
    return v != nullptr ? std::atoll(v) : -1;
  }
  Faults()
      : kill_after(read("VTB_FAULT_KILL_AFTER_STEP")),
        kill_in_checkpoint(read("VTB_FAULT_KILL_IN_CHECKPOINT")),
        term_at(read("VTB_FAULT_TERM_AT_STEP")),
        nan_from(read("VTB_FAULT_NAN_FROM_STEP")) {}
};

// Model FLOPs of one step (the MFU numerator), the usual 2·N per position forward and 4·N backward:
// trainable LLM-side weights (LoRA) 6·N, frozen LLM weights 4·N (forward, and backward for activations
// only), encoder/adapter/projection 6·N per encoder frame. Attention's T² terms are left out.
struct FlopModel {
  double frozen = 0, lora = 0, speech = 0;
  explicit FlopModel(model::SpeechLM& lm) {
    for (const auto& p : lm->named_parameters()) {
      const bool llm = p.key().rfind("llm.", 0) == 0;
      (llm ? (p.value().requires_grad() ? lora : frozen) : speech) += static_cast<double>(p.value().numel());
    }
  }
  double step(double positions, double frames) const { return (4 * frozen + 6 * lora) * positions + 6 * speech * frames; }
};

double resident_gib() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1 << 30);
}

std::string duration_text(double seconds) {
  const auto s = static_cast<int64_t>(seconds);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(s / 3600), static_cast<long long>(s % 3600 / 60));
  else std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  return buf;
}

model::SpeechBatch to_model_batch(const data::Batch& b, const c10::Device& device) {
  auto to = [&](const at::Tensor& t) { return t.defined() ? t.to(device, /*non_blocking=*/true) : t; };
  return model::SpeechBatch{to(b.ids), to(b.lengths), to(b.loss_mask), to(b.features), to(b.feature_lengths)};
}

// Keeps metrics.jsonl lines of steps ≤ `step`: a killed run may have logged steps it did not commit.
void truncate_metrics(const fs::path& file, int64_t step) {
  if (!fs::exists(file)) return;
  std::ifstream in(file);
  std::string kept, line;
  while (std::getline(in, line)) {
    try {
      if (nlohmann::json::parse(line).value("step", int64_t{0}) <= step) kept += line + "\n";
    } catch (const nlohmann::json::exception&) {  // a line cut by the kill
    }
  }
  in.close();
  std::ofstream(file, std::ios::trunc) << kept;
}

}  // namespace

int run_training(dist::Communicator& comm, const TrainSettings& s) {
  const bool root = comm.rank() == 0;
  install_stop_handlers();
  const data::Tokenizer tok = data::Tokenizer::load(s.tokenizer, s.audio_piece);
  model::SpeechLM lm = build_speech_lm(s, tok);
  const c10::Device device = comm.device();  // cuda:<local rank> with NCCL, cpu with MPI
  lm->to(device);

  dist::NamedTensors trainable;
  for (const auto& p : lm->named_parameters())
    if (p.value().requires_grad()) trainable.emplace_back(p.key(), p.value());
  dist::GradientBucketer bucketer(trainable, comm, s.buckets);
  optim::AdamW optimizer(trainable, s.adamw);
  std::vector<at::Tensor> params;
  for (const auto& [name, p] : trainable) params.push_back(p);

  std::vector<data::LoaderSource> sources = read_sources(s);
  std::vector<std::string> source_names;
  for (const auto& src : sources) source_names.push_back(src.name);
  data::BatchLoader loader(std::move(sources), tok, s.limits, s.mix, s.loader, comm.rank(), comm.size());

  RunState run;
  const std::string latest = ckpt::latest_checkpoint(s.run_dir);
  if (!latest.empty()) {
    run = read_training_state(latest, comm.rank(), comm.size(), lm, optimizer);
    loader.restore(run.sampler);
    spdlog::info("resumed from {} at step {}", latest, run.step);
  }
  const fs::path metrics_path = fs::path(s.run_dir) / "metrics.jsonl";
  if (root) {
    fs::create_directories(s.run_dir);
    truncate_metrics(metrics_path, run.step);
  }
  std::ofstream metrics;
  if (root) metrics.open(metrics_path, std::ios::app);
  const Faults faults;
  const std::string llm_label = s.llm_dir.empty() ? "stand-in from train.seed " + std::to_string(s.seed) : s.llm_dir;
  const std::string llm_hash = frozen_llm_hash(lm);  // the frozen weights never change: hash them once
  // Note [Background checkpoints]: the snapshot (CPU copies) is taken synchronously at the step boundary;
  // with a checkpoint communicator, writing and committing run in a thread while training goes on. One
  // save is in flight at a time; a failure surfaces at the next checkpoint or at the end of the run.
  std::thread saver;
  std::exception_ptr save_error;
  struct JoinOnExit {  // an error leaving the loop must not destroy a running thread
    std::thread& t;
    ~JoinOnExit() {
      if (t.joinable()) t.join();
    }
  } join_on_exit{saver};
  auto wait_for_save = [&] {
    if (saver.joinable()) saver.join();
    if (save_error) std::rethrow_exception(std::exchange(save_error, nullptr));
  };
  auto checkpoint = [&](bool wait) {
    wait_for_save();
    run.sampler = loader.state();
    auto snap = std::make_shared<TrainingSnapshot>(snapshot_training_state(comm.rank(), comm.size(), lm, optimizer, run,
                                                                           s.config_text, llm_label, llm_hash));
    dist::Communicator& coordination = s.checkpoint_comm ? *s.checkpoint_comm : comm;
    auto save = [&, snap] {
      const std::string dir = ckpt::commit_checkpoint(coordination, s.run_dir, snap->run.step, static_cast<int>(s.keep_last),
                                                      [&](const std::string& f) {
                                                        write_training_state(f, *snap);
                                                        if (snap->run.step == faults.kill_in_checkpoint) raise(SIGKILL);
                                                      });
      spdlog::info("checkpoint {} committed", dir);
    };
    if (s.checkpoint_comm == nullptr || wait) return save();
    saver = std::thread([save, &save_error] {
      try {
        save();
      } catch (...) {
        save_error = std::current_exception();
      }
    });
  };

  const FlopModel flops(lm);
  auto last_checkpoint = std::chrono::steady_clock::now();
  const bool tty = root && isatty(STDERR_FILENO);
  double step_time_ema = 0;
  int64_t bad_in_a_row = 0;
  while (run.step < s.max_steps) {
    const auto started = std::chrono::steady_clock::now();
    const int64_t step = run.step + 1;
    const double lr = optim::warmup_cosine(step, s.lr, s.lr_min, s.warmup_steps, s.max_steps);

    if (step == faults.term_at && comm.rank() == comm.size() - 1) raise(SIGTERM);

    // Draw a batch from the mix → forward → loss on answers → backward with overlapped allreduce.
    bucketer.zero_grad();
    double loss_sum = 0, tokens = 0, audio_seconds = 0, positions = 0, frames = 0;
    // Per source: (loss × tokens, tokens). Micro-batches of one step may come from different sources.
    at::Tensor by_source = torch::zeros({static_cast<int64_t>(source_names.size()), 2}, torch::kDouble);
    for (int64_t m = 0; m < s.micro_batches; ++m) {
      bucketer.prepare(/*sync=*/m == s.micro_batches - 1);
      const data::Batch batch = loader.next();
      const size_t source = batch.sources.front();
      model::LossOutput out;
      {
        compat::CudaBf16Autocast autocast(device.is_cuda());  // bf16 on GPUs, float32 on CPU
        out = lm->loss(to_model_batch(batch, device));
      }
      if (faults.nan_from > 0 && step >= faults.nan_from && comm.rank() == 0) out.loss = out.loss * std::nan("");
      (out.loss / static_cast<double>(s.micro_batches)).backward();
      const double batch_loss = out.loss.item<double>() * static_cast<double>(out.tokens);
      loss_sum += batch_loss;
      tokens += static_cast<double>(out.tokens);
      by_source[static_cast<int64_t>(source)][0] += batch_loss;
      by_source[static_cast<int64_t>(source)][1] += static_cast<double>(out.tokens);
      audio_seconds += batch.audio_seconds;
      positions += static_cast<double>(out.positions);
      if (batch.feature_lengths.defined()) frames += batch.feature_lengths.sum().item<double>() / s.model.encoder.subsampling_factor;
    }
    bucketer.finish();

    // → clip → step. Gradients are averaged, so every rank sees the same norm and decides alike.
    const double norm = optim::clip_grad_norm(params, s.clip);
    const bool finite = std::isfinite(norm) && std::isfinite(loss_sum);
    if (finite) {
      optimizer.step(lr);
      bad_in_a_row = 0;
    } else if (++bad_in_a_row >= s.max_bad_steps) {
      throw std::runtime_error("step " + std::to_string(step) + ": " + std::to_string(bad_in_a_row) +
                               " steps in a row with a non-finite loss or gradient; stopping. Lower train.lr or check the data.");
    } else {
      spdlog::warn("step {}: non-finite loss or gradient norm; step skipped ({} in a row)", step, bad_in_a_row);
    }
    run.step = step;

    // Token-weighted loss over the job.
    at::Tensor totals = torch::cat({torch::tensor({loss_sum, tokens, audio_seconds, positions, frames}, torch::kDouble),
                                    by_source.view({-1})})
                            .to(comm.device());
    comm.allreduce(totals, dist::ReduceOp::Sum);
    totals = totals.cpu();
    by_source = totals.slice(0, 5).view({-1, 2});
    std::string sources_in_step;
    for (size_t k = 0; k < source_names.size(); ++k)
      if (by_source[static_cast<int64_t>(k)][1].item<double>() > 0 || by_source[static_cast<int64_t>(k)][0].item<double>() != 0)
        sources_in_step += (sources_in_step.empty() ? "" : "+") + source_names[k];
    const double loss = totals[1].item<double>() > 0 ? totals[0].item<double>() / totals[1].item<double>() : 0.0;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    step_time_ema = step_time_ema == 0 ? seconds : 0.9 * step_time_ema + 0.1 * seconds;
    const double model_flops = flops.step(totals[3].item<double>(), totals[4].item<double>());
    if (root) {
      nlohmann::json line{{"step", step}, {"loss", loss}, {"source", sources_in_step}, {"lr", lr},
                          {"grad_norm", norm}, {"tokens", totals[1].item<double>()},
                          {"audio_s", totals[2].item<double>()}, {"step_s", seconds},
                          {"tokens_per_s", totals[1].item<double>() / seconds},
                          {"audio_s_per_s", totals[2].item<double>() / seconds},
                          {"positions_per_s", totals[3].item<double>() / seconds},
                          {"model_tflops", model_flops / seconds / 1e12}, {"mem_gib", resident_gib()},
                          {"skipped", !finite}};
      if (s.peak_tflops > 0) line["mfu"] = model_flops / seconds / 1e12 / (s.peak_tflops * comm.size());
      for (size_t k = 0; k < source_names.size(); ++k) {
        const double n = by_source[static_cast<int64_t>(k)][1].item<double>();
        if (n > 0) line["loss_" + source_names[k]] = by_source[static_cast<int64_t>(k)][0].item<double>() / n;
      }
      metrics << line.dump() << "\n";
      metrics.flush();
      const std::string eta = duration_text(step_time_ema * static_cast<double>(s.max_steps - step));
      if (tty) {  // one line, rewritten in place
        std::fprintf(stderr, "\rstep %lld/%lld  loss %.4f (%s)  lr %.2e  %.2f s/step  ETA %s   ",
                     static_cast<long long>(step), static_cast<long long>(s.max_steps), loss, sources_in_step.c_str(),
                     lr, seconds, eta.c_str());
        if (step == s.max_steps) std::fprintf(stderr, "\n");
      } else if (step % s.log_every == 0 || step == s.max_steps) {
        spdlog::info("step {}/{} loss {:.4f} ({}) lr {:.2e} grad_norm {:.3f} {:.2f} s/step, ETA {}", step, s.max_steps,
                     loss, sources_in_step, lr, norm, seconds, eta);
      }
    }

    // → maybe checkpoint: on schedule, at the end, or when a signal asked every rank to stop.
    // One small allreduce carries both agreements: any rank's stop signal, and rank 0's clock for
    // ckpt.every_minutes (clocks differ across nodes, so one rank decides).
    const bool minutes_due = root && s.ckpt_every_minutes > 0 &&
                             std::chrono::steady_clock::now() - last_checkpoint >= std::chrono::duration<double>(60 * s.ckpt_every_minutes);
    at::Tensor flags = torch::tensor({stop_requested() ? int64_t{1} : int64_t{0}, minutes_due ? int64_t{1} : int64_t{0}},
                                     torch::kLong).to(comm.device());
    comm.allreduce(flags, dist::ReduceOp::Sum);
    flags = flags.cpu();
    const bool stopping = flags[0].item<int64_t>() > 0;
    if (stopping || step == s.max_steps || (s.ckpt_every > 0 && step % s.ckpt_every == 0) || flags[1].item<int64_t>() > 0) {
      checkpoint(/*wait=*/stopping || step == s.max_steps);
      last_checkpoint = std::chrono::steady_clock::now();
    }
    if (step == faults.kill_after) {
      if (saver.joinable()) saver.join();  // the crash comes after checkpoints already under way commit
      raise(SIGKILL);
    }
    if (stopping) {
      spdlog::warn("stop signal received: checkpoint at step {} committed; exiting with {} (requeue me)", step, kExitRequeue);
      return kExitRequeue;
    }
  }
  wait_for_save();
  return kExitOk;
}

}  // namespace vtb::train
