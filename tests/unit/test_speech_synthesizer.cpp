// The three synthesizers Debian ships (espeak-ng, flite, festival): every voice vtb names speaks 16 kHz mono
// audio of about the length a sentence takes at its rate, is not silent, and a bad voice or text is a clear
// error, not a hang; a corpus spoken by all three holds one voice per engine out; the multi-turn split's
// audio lands inside the second question.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "data/audio.h"
#include "data/manifest.h"
#include "data/prompt.h"
#include "data/speech_synthesizer.h"
#include "data/synthetic_corpus.h"
#include "data/tokenizer.h"

namespace vtb::data {
namespace {

namespace fs = std::filesystem;

TEST(SpeechSynthesizer, EveryVoiceSpeaksSixteenKilohertzAudioOfTheSentencesLength) {
  SpeechSynthesizer tts;
  // 9 words, 12 syllables: at 150–200 words per minute a speaker takes 2.7–3.6 s; synthesizers add pauses
  // at the ends and differ in pace, so 1.5–6 s. Audio returned at another rate than 16 kHz (festival's HTS
  // voice speaks at 32 kHz) would be 2× too long or short.
  const std::string sentence = "the old man likes a warm coat at school today";
  for (const auto& engine : synthesis_engines()) {
    std::vector<std::string> voices = training_voice_names(engine);
    voices.push_back(held_out_voice_name(engine));
    for (const auto& name : voices) {
      EXPECT_EQ(engine_of(name), engine);
      for (int rate : {150, 200}) {
        const std::vector<float> samples = tts.speak(sentence, Voice{name, rate, 50});
        const double seconds = static_cast<double>(samples.size()) / kSampleRate;
        EXPECT_GT(seconds, 1.5) << name << " at " << rate << " wpm";
        EXPECT_LT(seconds, 6.0) << name << " at " << rate << " wpm";
        double energy = 0;
        float peak = 0;
        for (float s : samples) {
          energy += static_cast<double>(s) * s;
          peak = std::max(peak, std::abs(s));
        }
        EXPECT_GT(std::sqrt(energy / static_cast<double>(samples.size())), 0.01) << name << " is silent";
        EXPECT_LE(peak, 1.0f) << name;
      }
      // The rate is honoured: 200 wpm is shorter than 130 wpm by more than a tenth.
      const size_t slow = tts.speak(sentence, Voice{name, 130, 50}).size();
      const size_t fast = tts.speak(sentence, Voice{name, 200, 50}).size();
      EXPECT_LT(static_cast<double>(fast), 0.9 * static_cast<double>(slow)) << name;
    }
  }
}

TEST(SpeechSynthesizer, BadVoicesAndAwkwardTextAreClear) {
  SpeechSynthesizer tts;
  for (const std::string name : {"flite:nobody", "festival:nobody_diphone", "nobody-espeak-voice"}) {
    try {
      tts.speak("hello there", Voice{name});
      ADD_FAILURE() << name << " was accepted";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(name.substr(name.find(':') + 1)), std::string::npos) << e.what();
    }
  }
  // festival keeps going after an error, and takes Scheme's special characters as text.
  EXPECT_GT(tts.speak("she said \"yes\" \\ (twice); then left", Voice{"festival:kal_diphone"}).size(), 8000u);
  EXPECT_THROW(parse_engines("espeak-ng,mbrola", "--engines"), std::invalid_argument);
  EXPECT_THROW(parse_engines("flite,flite", "--engines"), std::invalid_argument);
  EXPECT_THROW(parse_engines("", "--engines"), std::invalid_argument);
  EXPECT_EQ(parse_engines("festival,espeak-ng", "--engines"), (std::vector<std::string>{"festival", "espeak-ng"}));
}

std::vector<nlohmann::json> lines_of(const fs::path& file) {
  std::vector<nlohmann::json> out;
  std::ifstream in(file);
  for (std::string l; std::getline(in, l);) out.push_back(nlohmann::json::parse(l));
  return out;
}

TEST(SyntheticCorpus, ThreeEnginesTrainOnTheirVoicesAndHoldOneOutEach) {
  SynthOptions o;
  o.engines = {"espeak-ng", "flite", "festival"};
  o.asr_train = 30, o.asr_test = 6, o.ast_train = 4, o.ast_test = 2, o.sqa_train = 4, o.sqa_test = 2;
  o.text_train = 4, o.text_test = 4, o.tokenizer_vocab = 200;
  o.real_speech_dir = "";
  const std::string dir = ::testing::TempDir() + "vtb_engines_" + std::to_string(getpid());
  o.out_dir = dir;
  const SynthReport report = make_synthetic_corpus(o);

  std::set<std::string> held_out, trained_engines;
  for (const auto& e : o.engines) held_out.insert(held_out_voice_name(e));
  for (const auto& line : lines_of(o.out_dir + "/asr_train.jsonl")) {
    const std::string voice = line["voice"];
    EXPECT_EQ(held_out.count(voice), 0u) << voice << " is held out but speaks a training example";
    trained_engines.insert(engine_of(voice));
  }
  EXPECT_EQ(trained_engines.size(), 3u) << "30 training utterances over 10 voices reach every engine";
  // Half of the test split by the held-out voices, one engine after the other.
  const auto test = lines_of(o.out_dir + "/asr_test.jsonl");
  for (size_t i = 1; i < test.size(); i += 2)
    EXPECT_EQ(test[i]["voice"], held_out_voice_name(o.engines[(i / 2) % 3])) << "line " << i + 1;
  // Each engine's split: the same sentences, all by its held-out voice.
  for (const auto& engine : synthesis_engines()) {
    const auto split = lines_of(o.out_dir + "/asr_" + engine + "_test.jsonl");
    ASSERT_EQ(split.size(), test.size()) << engine;
    for (size_t i = 0; i < split.size(); ++i) {
      EXPECT_EQ(split[i]["answer"], test[i]["answer"]) << engine;
      EXPECT_EQ(split[i]["voice"], held_out_voice_name(engine));
      EXPECT_NEAR(
          static_cast<double>(load_audio(o.out_dir + "/" + split[i]["audio_filepath"].get<std::string>()).size()) /
              kSampleRate,
          split[i]["duration"].get<double>(), 1e-3);
    }
    EXPECT_GT(report.voices.at(held_out_voice_name(engine)), 0) << engine;
  }

  // Multi-turn: each conversation of the text split again, with words strictly inside the second question
  // spoken (by a held-out voice), and in the token sequence the audio placeholder sits in the second user
  // turn between exactly those words.
  ManifestOptions text_kind, mixed_kind;
  text_kind.kind = SourceKind::Text;
  mixed_kind.kind = SourceKind::Mixed;
  const Manifest text = read_manifest(o.out_dir + "/text_multiturn_test.jsonl", text_kind);
  const Manifest mixed = read_manifest(o.out_dir + "/mixed_multiturn_test.jsonl", mixed_kind);
  const auto mixed_lines = lines_of(o.out_dir + "/mixed_multiturn_test.jsonl");
  ASSERT_EQ(text.examples.size(), 2u);  // text_test = 4: two pairs
  ASSERT_EQ(mixed.examples.size(), text.examples.size());
  const Tokenizer tok = Tokenizer::load(o.out_dir + "/tokenizer.model");
  for (size_t i = 0; i < mixed.examples.size(); ++i) {
    const Conversation& t = text.examples[i];
    const Conversation& m = mixed.examples[i];
    ASSERT_EQ(m.turns.size(), 4u);
    for (size_t k : {0, 1, 3}) EXPECT_EQ(m.turns[k].segments[0].text, t.turns[k].segments[0].text);
    const auto& seg = m.turns[2].segments;
    ASSERT_EQ(seg.size(), 3u) << "text, audio, text";
    ASSERT_TRUE(seg[1].is_audio);
    EXPECT_FALSE(seg[0].text.empty());
    EXPECT_FALSE(seg[2].text.empty());
    const std::string spoken = mixed_lines[i]["audios"][0]["spoken"];
    EXPECT_EQ(seg[0].text + spoken + seg[2].text, t.turns[2].segments[0].text);
    EXPECT_TRUE(held_out.count(mixed_lines[i]["audios"][0]["voice"].get<std::string>()));
    const FormattedExample f = format_conversation(m, tok);
    const auto at = std::find(f.ids.begin(), f.ids.end(), tok.special().audio);
    ASSERT_NE(at, f.ids.end());
    const std::vector<int> before(f.ids.begin(), at);
    EXPECT_EQ(std::count(before.begin(), before.end(), tok.special().start_of_turn), 3)
        << "user, model, then the second user turn";
    const auto turn_start = std::find(std::make_reverse_iterator(at), f.ids.rend(), tok.special().start_of_turn).base();
    const auto turn_end = std::find(at, f.ids.end(), tok.special().end_of_turn);
    // SentencePiece's decode drops the space that starts a piece sequence: compare without outer spaces.
    auto trim = [](const std::string& x) {
      const size_t a = x.find_first_not_of(" \n"), b = x.find_last_not_of(" \n");
      return a == std::string::npos ? std::string() : x.substr(a, b - a + 1);
    };
    EXPECT_EQ(trim(tok.decode(std::vector<int>(turn_start, at))), trim("user\n" + seg[0].text));
    EXPECT_EQ(trim(tok.decode(std::vector<int>(at + 1, turn_end))), trim(seg[2].text));
  }

  // Seeded and reproducible from a fresh process: tests/e2e/synth_engines.sh (espeak-ng's wave generator keeps
  // state within a process).
  fs::remove_all(dir);
}

}  // namespace
}  // namespace vtb::data

namespace vtb::data {
namespace {

// Prose from fortune files: entries between "%" lines, attributions dropped, sentences of 5–14 words with
// letters and ,;.!?'- only, each once.
TEST(Prose, SentencesOfFortuneFiles) {
  const std::string dir = ::testing::TempDir() + "vtb_prose_" + std::to_string(getpid());
  fs::create_directories(dir);
  std::ofstream(dir + "/wisdom") << "A lifetime isn't nearly long enough to figure out\n"
                                 << "what it's all about.  Too short.\n"
                                 << "\t\t-- Somebody Famous\n%\n"
                                 << "Call 555 now, it is a very good offer!\n"
                                 << "Nothing: colons are out, says the rule here.\n%\n"
                                 << "A lifetime isn't nearly long enough to figure out what it's all about.\n%\n"
                                 << "The quick brown fox jumps over the lazy dog; twice.\n";
  EXPECT_EQ(prose_sentences(dir),
            (std::vector<std::string>{"A lifetime isn't nearly long enough to figure out what it's all about.",
                                      "The quick brown fox jumps over the lazy dog; twice."}));
  fs::remove_all(dir);
  EXPECT_THROW(prose_sentences(dir), std::runtime_error);
}

}  // namespace
}  // namespace vtb::data
