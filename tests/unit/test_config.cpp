// Config: INI + command-line overrides through Boost.Program_options, precedence, unknown-key
// suggestions, and the resolved config reading back to the same values.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "launch/config.h"

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
