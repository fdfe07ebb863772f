// vtb data synth: real espeak-ng speech, manifests every kind of parser accepts, test sentences and the
// held-out voice never seen in training, and a tokenizer with the special pieces.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "data/audio.h"
#include "data/manifest.h"
#include "data/mixed_modal.h"
#include "data/synthetic_corpus.h"
#include "data/tokenizer.h"

namespace vtb::data {
namespace {

namespace fs = std::filesystem;

TEST(SyntheticCorpus, ManifestsAudioSplitsAndTokenizer) {
  SynthOptions o;
  o.out_dir = ::testing::TempDir() + "vtb_synth_" + std::to_string(getpid());
  fs::remove_all(o.out_dir);
  o.asr_train = 40, o.asr_test = 10, o.ast_train = 20, o.ast_test = 6, o.sqa_train = 20, o.sqa_test = 6;
  o.text_train = 30, o.text_test = 10;
  o.tokenizer_vocab = 300;
  const SynthReport report = make_synthetic_corpus(o);
  EXPECT_EQ(report.examples.at("asr_train.jsonl"), 40);
  EXPECT_GT(report.audio_seconds, 60);

  for (const std::string task : {"asr", "ast", "sqa", "text"}) {
    ManifestOptions mo;
    mo.kind = task == "text" ? SourceKind::Text : SourceKind::Speech;
    const Manifest train = read_manifest(o.out_dir + "/" + task + "_train.jsonl", mo);
    const Manifest test = read_manifest(o.out_dir + "/" + task + "_test.jsonl", mo);
    EXPECT_EQ(train.stats.kept, train.stats.lines) << task;  // nothing filtered or skipped
    EXPECT_EQ(test.stats.kept, test.stats.lines) << task;
    // Test examples never appear in training (compare the whole conversation's text).
    auto key = [](const Conversation& c) {
      std::string k;
      for (const auto& t : c.turns)
        for (const auto& s : t.segments) k += s.is_audio ? "<a>" : s.text + "|";
      return k;
    };
    std::set<std::string> train_keys;
    for (const auto& c : train.examples) train_keys.insert(key(c));
    if (task != "asr" && task != "ast") {
      for (const auto& c : test.examples) EXPECT_EQ(train_keys.count(key(c)), 0u) << task << " " << c.origin;
    }
    if (task == "text") continue;
    // Real audio: loadable, its length matching the manifest duration.
    for (const auto& c : test.examples) {
      const AudioRef& a = c.turns[0].segments.back().audio;
      const auto samples = load_audio(a.path);
      EXPECT_NEAR(samples.size() / 16000.0, a.duration, 1e-3) << a.path;
      float peak = 0;
      for (float s : samples) peak = std::max(peak, std::abs(s));
      EXPECT_GT(peak, 0.05f) << a.path << " is silent";
    }
  }
  // ASR/AST: answers of the test split are unseen sentences; half the test split uses the held-out voice.
  std::ifstream asr_test(o.out_dir + "/asr_test.jsonl"), asr_train(o.out_dir + "/asr_train.jsonl");
  std::set<std::string> train_answers, train_voices;
  for (std::string l; std::getline(asr_train, l);) {
    auto j = nlohmann::json::parse(l);
    train_answers.insert(j["answer"].get<std::string>());
    train_voices.insert(j["voice"].get<std::string>());
  }
  int unseen_voice = 0, lines = 0;
  for (std::string l; std::getline(asr_test, l); ++lines) {
    auto j = nlohmann::json::parse(l);
    EXPECT_EQ(train_answers.count(j["answer"].get<std::string>()), 0u) << j["answer"];
    unseen_voice += train_voices.count(j["voice"].get<std::string>()) == 0;
  }
  EXPECT_EQ(unseen_voice, lines / 2);

  // Real human speech (pocketsphinx-testdata): 5 LibriVox sentences and 5 card-name recordings, with the
  // transcripts Debian ships (two of them quoted from its files here).
  if (!fs::is_directory(o.real_speech_dir)) {
    std::cout << "[  SKIPPED ] the real-speech split: no " << o.real_speech_dir
              << " (apt-get install pocketsphinx-testdata)\n";
  } else {
    ManifestOptions mo;
    const Manifest real = read_manifest(o.out_dir + "/asr_real_test.jsonl", mo);
    EXPECT_EQ(real.stats.kept, 10);
    std::map<std::string, std::string> answers;
    for (const auto& c : real.examples) {
      const AudioRef& a = c.turns[0].segments.back().audio;
      EXPECT_NEAR(load_audio(a.path).size() / 16000.0, a.duration, 1e-3) << a.path;
      answers[fs::path(a.path).filename().string()] = c.turns[1].segments[0].text;
    }
    EXPECT_EQ(answers["sense_and_sensibility_01_austen_64kb-0880.wav"], "he was not an ill disposed young man");
    EXPECT_EQ(answers["005.wav"], "eight of spades four of clubs seven of hearts");
  }

  // Unseen prompts: the asr and ast test splits line for line (same audio, answer, voice) with an instruction
  // that no training manifest and no text the tokenizer learnt from contains.
  std::set<std::string> trained_text;
  for (const std::string f : {"asr_train", "ast_train", "sqa_train", "text_train", "lm_train", "corpus"}) {
    std::ifstream in(o.out_dir + "/" + f + (f == "corpus" ? ".txt" : ".jsonl"));
    for (std::string l; std::getline(in, l);) trained_text.insert(l);
  }
  for (const auto& [task, prompts] : unseen_prompts()) {
    EXPECT_GE(prompts.size(), 8u) << task << ": the issue asks for at least 8 unseen instructions per task";
    std::ifstream seen(o.out_dir + "/" + task + "_test.jsonl"),
        unseen(o.out_dir + "/" + task + "_unseen_prompt_test.jsonl");
    std::set<std::string> used;
    int lines = 0;
    for (std::string a, b; std::getline(seen, a);) {
      ASSERT_TRUE(std::getline(unseen, b)) << task << ": the unseen-prompt split is shorter than the test split";
      auto ja = nlohmann::json::parse(a), jb = nlohmann::json::parse(b);
      const std::string prompt = jb["context"].get<std::string>();
      EXPECT_NE(prompt, ja["context"].get<std::string>());
      used.insert(prompt);
      jb["context"] = ja["context"];
      EXPECT_EQ(jb, ja) << task << " line " << lines + 1 << ": more than the instruction differs";
      for (const auto& t : trained_text) EXPECT_EQ(t.find(prompt), std::string::npos) << prompt << " is in " << t;
      ++lines;
    }
    std::string extra;
    EXPECT_FALSE(std::getline(unseen, extra)) << task << ": the unseen-prompt split is longer than the test split";
    EXPECT_EQ(report.examples.at(task + "_unseen_prompt_test.jsonl"), lines);
    EXPECT_EQ(used.size(), std::min<size_t>(prompts.size(), static_cast<size_t>(lines))) << task;
  }

  const Tokenizer tok = Tokenizer::load(o.out_dir + "/tokenizer.model");
  EXPECT_EQ(tok.special().audio, 6);
  EXPECT_EQ(tok.decode(tok.encode("Die Katze ist müde.")), "Die Katze ist müde.");
}

TEST(MixedModal, SplitSentences) {
  EXPECT_EQ(split_sentences("One. Two? Three! four"), (std::vector<std::string>{"One.", " Two?", " Three!", " four"}));
  EXPECT_EQ(split_sentences("3.5 is a number."), (std::vector<std::string>{"3.5 is a number."}));
}

TEST(MixedModal, SpansOfUserTurnsBecomeSpeech) {
  const std::string dir = ::testing::TempDir() + "vtb_mixgen_" + std::to_string(getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string input = dir + "/text.jsonl";
  std::ofstream(input)
      << R"({"conversations": [{"from": "User", "value": "The cat is red. The dog is big. What is bigger?"},)"
      << R"({"from": "Assistant", "value": "the dog"}]})"
      << "\n"
      << R"({"conversations": [{"from": "User", "value": "Hello there."}, {"from": "Assistant", "value": "hi"},)"
      << R"({"from": "User", "value": "What is two plus two? Answer in words."}, {"from": "Assistant", "value": "four"}]})"
      << "\n";
  MixgenOptions o;
  o.input = input;
  o.out_dir = dir;
  o.variants = 3;
  const MixgenReport r = make_mixed_modal(o);
  EXPECT_EQ(r.conversations, 2);
  EXPECT_GE(r.examples, 2);
  EXPECT_LE(r.examples, 6);
  ManifestOptions mo;
  mo.kind = SourceKind::Mixed;
  const Manifest mixed = read_manifest(dir + "/mixed.jsonl", mo);  // audio files must exist
  EXPECT_EQ(mixed.stats.kept, r.examples);
  std::ifstream in(dir + "/mixed.jsonl"), original(input);
  std::vector<nlohmann::json> sources;
  for (std::string l; std::getline(original, l);) sources.push_back(nlohmann::json::parse(l));
  for (std::string l; std::getline(in, l);) {
    auto j = nlohmann::json::parse(l);
    const std::string origin = j["source"];
    const auto& src = sources[std::stoul(origin.substr(origin.rfind(':') + 1)) - 1];
    ASSERT_EQ(j["audios"].size(), 1u);
    const std::string spoken = j["audios"][0]["spoken"];
    for (size_t t = 0; t < src["conversations"].size(); ++t) {
      std::string value = j["conversations"][t]["value"];
      const auto at = value.find("<audio>");
      if (at != std::string::npos) value.replace(at, 7, spoken);  // putting the words back restores the text
      EXPECT_EQ(value, src["conversations"][t]["value"].get<std::string>()) << l;
    }
    EXPECT_GT(audio_duration(dir + "/" + j["audios"][0]["audio_filepath"].get<std::string>()), 0.3);
  }
}

}  // namespace
}  // namespace vtb::data
