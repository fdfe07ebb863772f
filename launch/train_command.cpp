// vtb train: single-stage joint SFT under mpirun/srun; resumes from the run folder's `latest`.
#include <spdlog/spdlog.h>

#include <iostream>
#include <sstream>

#include "dist/exit_codes.h"
#include "launch/command_line.h"
#include "launch/commands.h"
#include "launch/model_settings.h"
#include "launch/session.h"
#include "train/trainer.h"

namespace vtb {

data::FeatureConfig read_feature_settings(const Config& c);  // data_command.cpp

namespace {

std::vector<train::SourceSettings> read_sources(const Config& c) {
  std::vector<train::SourceSettings> out;
  for (const std::string& line : c.list("data.source")) {
    std::istringstream in(line);
    train::SourceSettings s;
    std::string weight;
    if (!(in >> s.name >> s.kind >> weight >> s.manifest))
      throw ConfigError("data.source '" + line + "': expected NAME KIND WEIGHT MANIFEST [DEFAULT PROMPT...]");
    try {
      s.weight = std::stod(weight);
    } catch (const std::exception&) {
      throw ConfigError("data.source '" + line + "': weight '" + weight + "' is not a number");
    }
    std::getline(in >> std::ws, s.prompt);
    out.push_back(s);
  }
  return out;
}

train::TrainSettings read_train_settings(const Config& c) {
  train::TrainSettings s;
  s.run_dir = c.str("run.dir");
  s.config_text = c.resolved_ini();
  s.seed = c.integer("train.seed");
  s.max_steps = c.integer("train.max_steps");
  s.micro_batches = c.integer("train.micro_batches");
  s.warmup_steps = c.integer("train.warmup_steps");
  s.log_every = std::max<int64_t>(1, c.integer("train.log_every"));
  s.ckpt_every = c.integer("ckpt.every_steps");
  s.keep_last = c.integer("ckpt.keep_last");
  s.max_bad_steps = c.integer("train.max_bad_steps");
  s.lr = c.real("train.lr");
  s.lr_min = c.real("train.lr_min");
  s.clip = c.real("train.clip");
  s.adamw = optim::AdamWOptions{c.real("train.beta1"), c.real("train.beta2"), 1e-8, c.real("train.weight_decay")};
  s.model = read_model_settings(c);
  s.llm_dir = c.str("model.llm");
  s.tokenizer = c.str("data.tokenizer");
  s.audio_piece = c.str("data.audio_piece");
  s.sources = read_sources(c);
  const std::string mix = c.str("data.mix");
  if (mix != "per_batch" && mix != "per_sample") throw ConfigError("data.mix must be per_batch or per_sample");
  s.mix = mix == "per_batch" ? data::MixMode::PerBatch : data::MixMode::PerSample;
  s.limits = data::BatchLimits{c.real("data.max_seconds"), c.integer("data.max_tokens"), c.integer("data.max_examples"),
                               c.integer("data.bucket_window")};
  s.loader.features = read_feature_settings(c);
  if (s.loader.features.n_mels != s.model.encoder.n_mels)
    throw ConfigError("features.n_mels (" + std::to_string(s.loader.features.n_mels) + ") must equal encoder.n_mels (" +
                      std::to_string(s.model.encoder.n_mels) + ")");
  s.loader.workers = static_cast<int>(c.integer("data.workers"));
  s.loader.queue_depth = 2 * std::max(1, s.loader.workers);
  s.loader.seed = static_cast<uint64_t>(s.seed);
  s.loader.training = true;
  const std::string on_error = c.str("data.on_error");
  if (on_error != "fail" && on_error != "skip") throw ConfigError("data.on_error must be fail or skip");
  s.skip_bad_lines = s.loader.skip_bad_audio = on_error == "skip";
  s.min_duration = c.real("data.min_duration");
  s.max_duration = c.real("data.max_duration");
  s.buckets = dist::BucketOptions{static_cast<size_t>(c.real("dist.first_bucket_mib") * (1 << 20)),
                                  static_cast<size_t>(c.real("dist.bucket_mib") * (1 << 20))};
  return s;
}

}  // namespace

int train_command(int argc, char** argv) {
  boost::program_options::options_description options("Options");
  ParsedCommand cmd = parse_command(argc, argv, options);
  if (cmd.help) {
    std::cout << command_help("mpirun -np N vtb train --config F [--run.dir D] [--section.key=value ...]",
                              "Joint speech-text SFT in one stage: frozen LLM + LoRA, trained encoder and adapter, "
                              "batches drawn from the weighted data.source mix. Resumes from D/latest when it exists. "
                              "Exit code 75 after SIGTERM/SIGUSR1 means: checkpoint committed, requeue me.",
                              options);
    return kExitOk;
  }
  Session s = start_session(&argc, &argv, cmd.options["config"].as<std::string>(), cmd.overrides);
  return train::run_training(*s.comm, read_train_settings(s.config));
}

}  // namespace vtb
