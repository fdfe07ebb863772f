// Config: INI + command-line overrides through Boost.Program_options, precedence, unknown-key
// suggestions, and the resolved config reading back to the same values.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "launch/config.h"
#include "launch/train_settings.h"

namespace vtb {
namespace {

std::string write_ini(const std::string& text) {
  char path[] = "/tmp/vtb_config_XXXXXX.ini";
  const int fd = mkstemps(path, 4);
  EXPECT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << text;
  return path;
}

TEST(Config, DefaultsWithoutFile) {
  const Config c = Config::load("", {});
  EXPECT_EQ(c.real("dist.timeout_s"), 600.0);
  EXPECT_EQ(c.str("run.device"), "cpu");
  EXPECT_FALSE(c.flag("log.all_ranks"));
  EXPECT_EQ(c.integer("run.threads"), 0);
}

TEST(Config, CommandLineBeatsFileBeatsDefault) {
  const std::string ini = write_ini("[dist]\ntimeout_s = 30\nbucket_mib = 8\n\n[log]\nall_ranks = yes\n");
  const Config c = Config::load(ini, {"--dist.timeout_s=5", "--run.threads", "3"});
  EXPECT_EQ(c.real("dist.timeout_s"), 5.0);         // command line
  EXPECT_EQ(c.real("dist.bucket_mib"), 8.0);        // file
  EXPECT_TRUE(c.flag("log.all_ranks"));             // file, Boost's boolean spelling
  EXPECT_EQ(c.integer("run.threads"), 3);           // command line, "--key value" form
  EXPECT_EQ(c.real("dist.first_bucket_mib"), 1.0);  // default
  std::remove(ini.c_str());
}

TEST(Config, EmptyValueOnTheCommandLine) {
  const std::string ini = write_ini("[model]\nllm = /some/folder\n");
  EXPECT_EQ(Config::load(ini, {"--model.llm="}).str("model.llm"), "");
  EXPECT_EQ(Config::load(ini, {}).str("model.llm"), "/some/folder");
  std::remove(ini.c_str());
}

TEST(Config, UnknownKeyOnCommandLineSuggestsClosest) {
  try {
    Config::load("", {"--dist.timeout=5"});
    FAIL() << "an unknown key must be an error";
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("'dist.timeout'"), std::string::npos) << m;
    EXPECT_NE(m.find("Did you mean 'dist.timeout_s'?"), std::string::npos) << m;
  }
}

TEST(Config, UnknownKeyInFileNamesFileAndLine) {
  const std::string ini = write_ini("# comment\n[dist]\ntimeout_s = 3\n\n[log]\nlevle = debug\n");
  try {
    Config::load(ini, {});
    FAIL() << "an unknown key must be an error";
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(ini + ":6: unknown config key 'log.levle'"), std::string::npos) << m;
    EXPECT_NE(m.find("Did you mean 'log.level'?"), std::string::npos) << m;
  }
  std::remove(ini.c_str());
}

TEST(Config, BadValueNamesTheKeyAndLine) {
  const std::string ini = write_ini("[dist]\n\ntimeout_s = soon\n");
  try {
    Config::load(ini, {});
    FAIL() << "a non-numeric value for a number must be an error";
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(ini + ":3"), std::string::npos) << m;
    EXPECT_NE(m.find("soon"), std::string::npos) << m;
    EXPECT_NE(m.find("dist.timeout_s"), std::string::npos) << m;
  }
  std::remove(ini.c_str());
}

// Each default has one home, the settings struct: a config that sets nothing reads back as the struct's
// defaults (a default written a second time into the key table, and changed there, fails here).
TEST(Settings, AnEmptyConfigGivesTheStructDefaults) {
  const train::TrainSettings d;
  const train::TrainSettings s = read_train_settings(Config::load("", {}));
  EXPECT_EQ(s.run_dir, d.run_dir);
  EXPECT_EQ(s.schedule.max_steps, d.schedule.max_steps);
  EXPECT_EQ(s.schedule.max_steps, 100000);
  EXPECT_EQ(s.seed, d.seed);
  EXPECT_EQ(s.schedule.micro_batches, d.schedule.micro_batches);
  EXPECT_EQ(s.schedule.warmup_steps, d.schedule.warmup_steps);
  EXPECT_EQ(s.metrics.log_every, d.metrics.log_every);
  EXPECT_EQ(s.ckpt.every_steps, d.ckpt.every_steps);
  EXPECT_EQ(s.ckpt.keep_last, d.ckpt.keep_last);
  EXPECT_EQ(s.schedule.max_bad_steps, d.schedule.max_bad_steps);
  EXPECT_EQ(s.schedule.lr, d.schedule.lr);
  EXPECT_EQ(s.schedule.lr_min, d.schedule.lr_min);
  EXPECT_EQ(s.schedule.clip, d.schedule.clip);
  EXPECT_EQ(s.schedule.adamw.beta2, d.schedule.adamw.beta2);
  EXPECT_EQ(s.schedule.adamw.weight_decay, d.schedule.adamw.weight_decay);
  EXPECT_EQ(s.data.tokenizer, d.data.tokenizer);
  EXPECT_EQ(s.data.audio_piece, d.data.audio_piece);
  EXPECT_EQ(s.data.mix, d.data.mix);
  EXPECT_EQ(s.data.skip_bad_lines, d.data.skip_bad_lines);
  EXPECT_EQ(s.data.limits.max_seconds, d.data.limits.max_seconds);
  EXPECT_EQ(s.data.limits.max_tokens, d.data.limits.max_tokens);
  EXPECT_EQ(s.data.limits.bucket_window, d.data.limits.bucket_window);
  EXPECT_EQ(s.data.min_duration, d.data.min_duration);
  EXPECT_EQ(s.data.max_duration, d.data.max_duration);
  EXPECT_EQ(s.data.loader.workers, d.data.loader.workers);
  EXPECT_EQ(s.data.loader.features.pad_mode, d.data.loader.features.pad_mode);
  EXPECT_EQ(s.data.loader.features.frame_rule, d.data.loader.features.frame_rule);
  EXPECT_EQ(s.data.loader.features.dither, d.data.loader.features.dither);
  EXPECT_EQ(s.data.loader.spec_augment.time_masks, d.data.loader.spec_augment.time_masks);
  EXPECT_EQ(s.data.loader.spec_augment.time_width, d.data.loader.spec_augment.time_width);
  EXPECT_EQ(s.parallel.buckets.first_bucket_bytes, d.parallel.buckets.first_bucket_bytes);
  EXPECT_EQ(s.parallel.buckets.bucket_bytes, d.parallel.buckets.bucket_bytes);
  EXPECT_EQ(s.ckpt.every_minutes, d.ckpt.every_minutes);
  EXPECT_EQ(s.metrics.peak_tflops, d.metrics.peak_tflops);
  EXPECT_EQ(s.precision, d.precision);
  EXPECT_EQ(s.fixed_batch, d.fixed_batch);
  EXPECT_EQ(s.parallel.zero, d.parallel.zero);
  EXPECT_EQ(s.model.llm_dir, d.model.llm_dir);
  EXPECT_EQ(s.model.encoder_init, d.model.encoder_init);
  const model::SpeechLMConfig &m = s.model.config, &dm = d.model.config;
  EXPECT_EQ(m.encoder.conformer.layers, dm.encoder.conformer.layers);
  EXPECT_EQ(m.encoder.subsampling_factor, dm.encoder.subsampling_factor);
  EXPECT_EQ(m.adapter.conformer.layers, dm.adapter.conformer.layers);
  EXPECT_EQ(m.adapter.conformer.dropout, dm.adapter.conformer.dropout);
  EXPECT_EQ(m.llm.family, dm.llm.family);
  EXPECT_EQ(m.llm.layers, dm.llm.layers);
  EXPECT_EQ(m.llm.vocab, dm.llm.vocab);
  EXPECT_EQ(m.lora.rank, 32);
  EXPECT_EQ(m.lora.rank, dm.lora.rank);
  EXPECT_EQ(m.lora.alpha, dm.lora.alpha);
  EXPECT_EQ(m.lora.layout, dm.lora.layout);
  EXPECT_EQ(m.lora.targets, dm.lora.targets);
}

TEST(Settings, ChoicesAreParsedOnce) {
  const train::TrainSettings s = read_train_settings(Config::load(
      "", {"--lora.layout=separate", "--data.mix=per_sample", "--data.on_error=skip", "--features.pad_mode=constant",
           "--features.frame_rule=floor", "--data.source=a mixed 1 x.jsonl", "--data.source=b sqa 2 y.jsonl"}));
  EXPECT_EQ(s.model.config.lora.layout, model::LoraLayout::Separate);
  EXPECT_EQ(s.data.mix, data::MixMode::PerSample);
  EXPECT_TRUE(s.data.skip_bad_lines);
  EXPECT_TRUE(s.data.loader.skip_bad_audio);
  EXPECT_EQ(s.data.loader.features.pad_mode, data::PadMode::Constant);
  EXPECT_EQ(s.data.loader.features.frame_rule, data::FrameRule::Floor);
  ASSERT_EQ(s.data.sources.size(), 2u);
  EXPECT_EQ(s.data.sources[0].task, data::Task::Mixed);
  EXPECT_EQ(s.data.sources[1].task, data::Task::Sqa);
  EXPECT_EQ(data::source_kind(s.data.sources[1].task), data::SourceKind::Speech);
}

TEST(Settings, AnUnknownChoiceNamesTheKeyAndEveryAllowedValue) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases{
      {"--lora.layout=fuse", {"lora.layout", "'fuse'", "fused, separate"}},
      {"--data.mix=per_step", {"data.mix", "'per_step'", "per_batch, per_sample"}},
      {"--data.on_error=ignore", {"data.on_error", "'ignore'", "fail, skip"}},
      {"--features.pad_mode=zero", {"features.pad_mode", "'zero'", "reflect, constant"}},
      {"--features.frame_rule=ceil", {"features.frame_rule", "'ceil'", "plus_one, floor"}},
      {"--data.source=a asrr 1 x.jsonl", {"data.source 'a asrr 1 x.jsonl'", "'asrr'", "asr, ast, sqa, text, mixed"}}};
  for (const auto& [setting, expected] : cases) {
    try {
      read_train_settings(Config::load("", {setting}));
      ADD_FAILURE() << setting << " must be refused";
    } catch (const ConfigError& e) {
      for (const auto& part : expected) EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  }
}

TEST(Config, MissingFileIsAnError) { EXPECT_THROW(Config::load("/nonexistent/vtb.ini", {}), ConfigError); }

TEST(Config, ResolvedIniReadsBackToTheSameConfig) {
  const Config original = Config::load("", {"--dist.timeout_s=2.5", "--run.dir=runs/x y", "--log.all_ranks=true",
                                            "--data.source=a asr 1 x.jsonl", "--data.source=b text 2 y.jsonl"});
  const std::string ini = write_ini(original.resolved_ini());
  const Config again = Config::load(ini, {});
  EXPECT_EQ(again.resolved_ini().find("# set") != std::string::npos, true);
  EXPECT_EQ(again.real("dist.timeout_s"), 2.5);
  EXPECT_EQ(again.str("run.dir"), "runs/x y");
  EXPECT_TRUE(again.flag("log.all_ranks"));
  EXPECT_EQ(again.list("data.source"), (std::vector<std::string>{"a asr 1 x.jsonl", "b text 2 y.jsonl"}));
  for (const auto& key : known_keys())
    EXPECT_NE(original.resolved_ini().find(key.substr(key.find('.') + 1)), std::string::npos) << key;
  std::remove(ini.c_str());
}

TEST(ClosestKey, EditDistanceAndMissingSection) {
  const std::vector<std::string> keys{"dist.timeout_s", "dist.bucket_mib", "log.level"};
  EXPECT_EQ(closest_key("dist.timeout", keys), "dist.timeout_s");
  EXPECT_EQ(closest_key("DIST.BUCKET_MB", keys), "dist.bucket_mib");
  EXPECT_EQ(closest_key("timeout_s", keys), "dist.timeout_s");  // section left out
  EXPECT_EQ(closest_key("completely.unrelated_thing", keys), "");
}

}  // namespace
}  // namespace vtb
