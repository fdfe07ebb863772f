// Tokenizer, manifests, the chat template and the mixing sampler.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "data/data_settings.h"
#include "data/manifest.h"
#include "data/mixing_sampler.h"
#include "data/prompt.h"

namespace vtb::data {
namespace {

namespace fs = std::filesystem;

std::string temp_dir() {
  static const std::string dir = [] {
    std::string d = ::testing::TempDir() + "vtb_data_pipeline";
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

// A tokenizer trained once on a small generated corpus.
const Tokenizer& tokenizer() {
  static const Tokenizer tok = [] {
    const std::string corpus = temp_dir() + "/corpus.txt";
    std::ofstream out(corpus);
    const char* words[] = {"the",      "cat",       "sat",  "on",     "a",     "mat",   "transcribe",
                           "audio",    "what",      "is",   "said",   "hello", "there", "answer",
                           "question", "translate", "into", "german", "one",   "two"};
    for (int i = 0; i < 400; ++i) {
      for (int w = 0; w < 8; ++w) out << words[(i * 7 + w * 3) % 20] << (w < 7 ? " " : "");
      out << " " << i << ".\n";
    }
    out.close();
    train_tokenizer({corpus}, 120, temp_dir() + "/tok");
    return Tokenizer::load(temp_dir() + "/tok.model");
  }();
  return tok;
}

TEST(Tokenizer, SpecialPiecesHaveGemmaLikeIds) {
  const SpecialTokens& s = tokenizer().special();
  EXPECT_EQ(s.pad, 0);
  EXPECT_EQ(s.eos, 1);
  EXPECT_EQ(s.bos, 2);
  EXPECT_EQ(s.start_of_turn, 4);
  EXPECT_EQ(s.end_of_turn, 5);
  EXPECT_EQ(s.audio, 6);
  EXPECT_EQ(tokenizer().encode("\n"), std::vector<int>{7});
  EXPECT_EQ(tokenizer().decode(tokenizer().encode("the cat sat on 12 mats.")), "the cat sat on 12 mats.");
  EXPECT_THROW(Tokenizer::load("/nonexistent.model"), TokenizerError);
  EXPECT_THROW(Tokenizer::load(temp_dir() + "/tok.model", "<unused0>"), TokenizerError);
  // A comma in a path would split SentencePiece's input list (found by experiments.sh's folder per engine list).
  try {
    train_tokenizer({temp_dir() + "/a,b/corpus.txt"}, 120, temp_dir() + "/comma");
    ADD_FAILURE() << "a path with a comma was accepted";
  } catch (const TokenizerError& e) {
    EXPECT_NE(std::string(e.what()).find("a,b/corpus.txt"), std::string::npos) << e.what();
  }
}

std::string write(const std::string& name, const std::string& text) {
  const std::string path = temp_dir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

// Expected ids: the template written out as one string (docs/design.md §3), encoded whole; <bos>/<eos> are
// control pieces that never match text, so they are added around it.
std::vector<int> template_ids(const std::string& body) {
  std::vector<int> ids{tokenizer().special().bos};
  for (int id : tokenizer().encode(body)) ids.push_back(id);
  ids.push_back(tokenizer().special().eos);
  return ids;
}

// Mask expected from the answer texts: 1 on each answer's tokens and the <end_of_turn> after it.
std::vector<uint8_t> mask_for(const std::vector<int>& ids, const std::vector<std::string>& answers) {
  std::vector<uint8_t> mask(ids.size(), 0);
  const std::vector<int> model_header = tokenizer().encode("<start_of_turn>model\n");
  size_t from = 0;
  for (const auto& a : answers) {
    auto it = std::search(ids.begin() + from, ids.end(), model_header.begin(), model_header.end());
    size_t p = static_cast<size_t>(it - ids.begin()) + model_header.size();
    const size_t n = tokenizer().encode(a).size() + 1;  // answer + <end_of_turn>
    for (size_t i = p; i < p + n; ++i) mask[i] = 1;
    from = p + n;
  }
  return mask;
}

Conversation parse(const std::string& line, SourceKind kind, const std::string& prompt = "") {
  ManifestOptions o;
  o.kind = kind;
  o.default_prompt = prompt;
  Conversation c;
  EXPECT_TRUE(parse_manifest_line(line, temp_dir(), o, c));
  return c;
}

TEST(ChatTemplate, SpeechExampleIdsAndMask) {
  write("a.wav", "x");
  const Conversation c = parse(R"({"audio_filepath": "a.wav", "duration": 1.5, "answer": "the cat sat"})",
                               SourceKind::Speech, "transcribe the audio");
  const FormattedExample f = format_conversation(c, tokenizer());
  const auto expected = template_ids(
      "<start_of_turn>user\ntranscribe the audio<audio><end_of_turn>\n<start_of_turn>model\nthe cat "
      "sat<end_of_turn>\n");
  EXPECT_EQ(f.ids, expected);
  EXPECT_EQ(f.loss_mask, mask_for(expected, {"the cat sat"}));
  ASSERT_EQ(f.audio.size(), 1u);
  EXPECT_EQ(f.audio[0].path, temp_dir() + "/a.wav");
  EXPECT_DOUBLE_EQ(f.audio[0].duration, 1.5);
}

TEST(ChatTemplate, MultiTurnTextTrainsEveryAnswer) {
  const Conversation c = parse(R"({"conversations": [{"from": "User", "value": "what is two"},)"
                               R"({"from": "Assistant", "value": "two is one one"},)"
                               R"({"from": "User", "value": "hello"}, {"from": "Assistant", "value": "hello there"}]})",
                               SourceKind::Text);
  const FormattedExample f = format_conversation(c, tokenizer());
  const auto expected = template_ids(
      "<start_of_turn>user\nwhat is two<end_of_turn>\n<start_of_turn>model\ntwo is one one<end_of_turn>\n"
      "<start_of_turn>user\nhello<end_of_turn>\n<start_of_turn>model\nhello there<end_of_turn>\n");
  EXPECT_EQ(f.ids, expected);
  EXPECT_EQ(f.loss_mask, mask_for(expected, {"two is one one", "hello there"}));
  EXPECT_TRUE(f.audio.empty());
}

TEST(ChatTemplate, MixedModalTurnWithTwoAudios) {
  write("b.wav", "x");
  write("c.wav", "x");
  const Conversation c =
      parse(R"({"conversations": [{"from": "User", "value": "the cat <audio> and <audio> said what"},)"
            R"({"from": "Assistant", "value": "a mat"}], "audios": [{"audio_filepath": "b.wav", "duration": 2},)"
            R"({"audio_filepath": "c.wav", "duration": 0.5, "offset": 1.25}]})",
            SourceKind::Mixed);
  const FormattedExample f = format_conversation(c, tokenizer());
  // Text between placeholders is encoded piece by piece: split the template at the two <audio>.
  std::vector<int> expected{tokenizer().special().bos};
  for (const char* piece : {"<start_of_turn>user\nthe cat ", "<audio>", " and ", "<audio>",
                            " said what<end_of_turn>\n<start_of_turn>model\na mat<end_of_turn>\n"})
    for (int id : tokenizer().encode(piece)) expected.push_back(id);
  expected.push_back(tokenizer().special().eos);
  EXPECT_EQ(f.ids, expected);
  EXPECT_EQ(f.loss_mask, mask_for(expected, {"a mat"}));
  ASSERT_EQ(f.audio.size(), 2u);
  EXPECT_EQ(f.audio[1].path, temp_dir() + "/c.wav");
  EXPECT_DOUBLE_EQ(f.audio[1].offset, 1.25);
  EXPECT_EQ(std::count(f.ids.begin(), f.ids.end(), tokenizer().special().audio), 2);
}

TEST(ChatTemplate, GenerationPromptEndsWithTheModelHeader) {
  write("a.wav", "x");
  Conversation c = parse(R"({"audio_filepath": "a.wav", "duration": 1, "answer": "x"})", SourceKind::Speech, "hello");
  c.turns.pop_back();
  const FormattedExample f = format_conversation(c, tokenizer(), true);
  std::vector<int> expected{tokenizer().special().bos};
  for (int id : tokenizer().encode("<start_of_turn>user\nhello<audio><end_of_turn>\n<start_of_turn>model\n"))
    expected.push_back(id);
  EXPECT_EQ(f.ids, expected);
}

TEST(Manifest, BadLinesFailNamingFileAndLineOrAreSkippedAndCounted) {
  write("ok.wav", "x");
  const std::string lines[] = {
      R"({"audio_filepath": "ok.wav", "duration": 1.0, "answer": "fine"})",             // 1 ok
      R"({"audio_filepath": "missing.wav", "duration": 1.0, "answer": "x"})",           // 2 missing file
      R"({"audio_filepath": "ok.wav", "duration": 1.0, "answer": )",                    // 3 invalid JSON
      R"({"audio_filepath": "ok.wav", "answer": "x"})",                                 // 4 missing field
      R"({"audio_filepath": "ok.wav", "duration": "long", "answer": "x"})",             // 5 wrong type
      "{\"audio_filepath\": \"ok.wav\", \"duration\": 1.0, \"answer\": \"\xff\xfe\"}",  // 6 invalid UTF-8
      R"({"audio_filepath": "ok.wav", "duration": -3, "answer": "x"})",                 // 7 absurd duration
      R"({"audio_filepath": "ok.wav", "duration": 99.0, "answer": "too long"})",        // 8 filtered (max 40 s)
      R"({"audio_filepath": "ok.wav", "duration": 2.0, "answer": "fine too"})",         // 9 ok
  };
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  const std::string path = write("bad.jsonl", text);
  ManifestOptions fail;
  try {
    read_manifest(path, fail);
    FAIL() << "the fail policy must stop at line 2";
  } catch (const ManifestError& e) {
    EXPECT_NE(std::string(e.what()).find(path + ":2: audio file not found"), std::string::npos) << e.what();
  }
  ManifestOptions skip;
  skip.skip_bad_lines = true;
  const Manifest m = read_manifest(path, skip);
  EXPECT_EQ(m.stats.lines, 9);
  EXPECT_EQ(m.stats.kept, 2);
  EXPECT_EQ(m.stats.filtered, 1);
  int64_t skipped = 0;
  for (const auto& [reason, n] : m.stats.skipped) skipped += n;
  EXPECT_EQ(skipped, 6);
  EXPECT_EQ(m.stats.skipped.at("invalid JSON"), 2);  // line 3 and the invalid UTF-8 of line 6
  EXPECT_EQ(m.examples[1].origin, path + ":9");
  // Each reason, one line at a time, under the fail policy.
  const std::pair<int, std::string> reasons[] = {{3, "invalid JSON"},
                                                 {4, "missing field \"duration\""},
                                                 {5, "field \"duration\" must be a number"},
                                                 {6, "invalid JSON"},
                                                 {7, "absurd duration"}};
  for (const auto& [line, reason] : reasons) {
    const std::string one = write("one.jsonl", lines[line - 1] + "\n");
    try {
      read_manifest(one, fail);
      ADD_FAILURE() << "line " << line << " accepted";
    } catch (const ManifestError& e) {
      EXPECT_NE(std::string(e.what()).find(one + ":1: " + reason), std::string::npos) << e.what();
    }
  }
}

// data.source lines become loader sources with the data settings' duration policy; pretraining the encoder
// reads only the asr ones, and a job with nothing to read is refused before it starts.
TEST(DataSettings, ReadSourcesKeepsTheOrderFiltersByTaskAndRefusesNone) {
  write("ok.wav", "x");
  const std::string asr = write("asr.jsonl", R"({"audio_filepath": "ok.wav", "duration": 1.0, "answer": "a"})"
                                             "\n"
                                             R"({"audio_filepath": "ok.wav", "duration": 50.0, "answer": "long"})"
                                             "\n");
  const std::string ast = write("ast.jsonl", R"({"audio_filepath": "ok.wav", "duration": 2.0, "answer": "b"})"
                                             "\n");
  DataSettings s;
  s.sources = {{"speech", Task::Asr, asr, "Transcribe.", 0.7}, {"translate", Task::Ast, ast, "Translate.", 0.3}};
  const std::vector<LoaderSource> all = read_sources(s);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "speech");
  EXPECT_EQ(all[0].weight, 0.7);
  EXPECT_EQ(all[0].examples.size(), 1u);  // the 50 s line is past data.max_duration (40 s)
  EXPECT_EQ(all[1].name, "translate");
  const std::vector<LoaderSource> only = read_sources(s, Task::Asr);
  ASSERT_EQ(only.size(), 1u);
  EXPECT_EQ(only[0].name, "speech");
  s.max_duration = 60;
  EXPECT_EQ(read_sources(s, Task::Asr)[0].examples.size(), 2u);
  try {
    read_sources(s, Task::Sqa);
    FAIL() << "no sqa source must be refused";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no data.source of kind sqa"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_sources(DataSettings{}), std::runtime_error);
}

TEST(Manifest, ConversationShapeErrors) {
  ManifestOptions o;
  o.kind = SourceKind::Mixed;
  Conversation c;
  write("b.wav", "x");
  EXPECT_THROW(parse_manifest_line(R"({"conversations": [{"from": "User", "value": "<audio>"},)"
                                   R"({"from": "Assistant", "value": "x"}], "audios": []})",
                                   temp_dir(), o, c),
               ManifestError);  // marker without audio
  EXPECT_THROW(parse_manifest_line(
                   R"({"conversations": [{"from": "User", "value": "no marker"},)"
                   R"({"from": "Assistant", "value": "x"}], "audios": [{"audio_filepath": "b.wav", "duration": 1}]})",
                   temp_dir(), o, c),
               ManifestError);  // audio without marker
  o.kind = SourceKind::Text;
  EXPECT_THROW(
      parse_manifest_line(R"({"conversations": [{"from": "User", "value": "a"}, {"from": "User", "value": "b"}]})",
                          temp_dir(), o, c),
      ManifestError);  // roles must alternate
  EXPECT_THROW(parse_manifest_line(R"({"conversations": [{"from": "Robot", "value": "a"}]})", temp_dir(), o, c),
               ManifestError);
}

std::vector<SamplerSource> sources(std::vector<std::pair<double, size_t>> weight_size) {
  std::vector<SamplerSource> out;
  for (size_t s = 0; s < weight_size.size(); ++s) {
    SamplerSource src{"s" + std::to_string(s), weight_size[s].first, {}};
    for (size_t i = 0; i < weight_size[s].second; ++i)
      src.costs.push_back({0.5 + (i * 37 % 100) / 10.0, 20 + static_cast<int64_t>(i % 50)});
    out.push_back(src);
  }
  return out;
}

TEST(MixingSampler, SharesFollowTheWeights) {
  const std::vector<double> w{0.85, 0.10, 0.05};
  MixingSampler s(sources({{w[0], 500}, {w[1], 300}, {w[2], 200}}), BatchLimits{20, 0, 0, 64}, MixMode::PerBatch, 7, 0,
                  1);
  std::vector<int> counts(3, 0);
  const int n = 10000;
  for (int i = 0; i < n; ++i) {
    const SampledBatch b = s.next();
    ASSERT_FALSE(b.items.empty());
    for (const auto& it : b.items) ASSERT_EQ(it.first, b.items[0].first);  // one source per batch
    ++counts[b.items[0].first];
  }
  for (int k = 0; k < 3; ++k) {
    const double sigma = std::sqrt(n * w[k] * (1 - w[k]));
    EXPECT_LE(std::abs(counts[k] - n * w[k]), 3 * sigma) << "source " << k << ": " << counts[k];
  }
}

TEST(MixingSampler, BatchesRespectLimits) {
  auto src = sources({{1, 400}});
  MixingSampler s(src, BatchLimits{12.0, 0, 5, 100}, MixMode::PerBatch, 3, 0, 1);
  for (int i = 0; i < 200; ++i) {
    const SampledBatch b = s.next();
    double seconds = 0;
    for (const auto& [source, idx] : b.items) seconds += src[0].costs[idx].seconds;
    EXPECT_LE(b.items.size(), 5u);
    if (b.items.size() > 1) {
      EXPECT_LE(seconds, 12.0);
    }
  }
}

TEST(MixingSampler, RestoredStateGivesTheSameNextBatches) {
  for (MixMode mode : {MixMode::PerBatch, MixMode::PerSample}) {
    auto make = [&] {
      return MixingSampler(sources({{0.7, 97}, {0.3, 53}}), BatchLimits{8, 0, 6, 16}, mode, 11, 1, 2);
    };
    MixingSampler a = make();
    for (int i = 0; i < 137; ++i) a.next();  // past several epochs of the small sources
    const std::string saved = a.state().serialize();
    std::vector<SampledBatch> expected;
    for (int i = 0; i < 100; ++i) expected.push_back(a.next());
    MixingSampler b = make();
    b.restore(SamplerState::deserialize(saved));
    for (int i = 0; i < 100; ++i) {
      const SampledBatch got = b.next();
      EXPECT_EQ(got.step, expected[i].step);
      ASSERT_EQ(got.items, expected[i].items) << "batch " << i;
    }
  }
}

TEST(MixingSampler, RankShardsAreDisjointAndCoverEachEpoch) {
  const int world = 3;
  const auto src = sources({{1, 100}});
  for (int64_t epoch : {0, 1, 5}) {
    std::multiset<size_t> seen;
    for (int r = 0; r < world; ++r) {
      MixingSampler s(src, BatchLimits{}, MixMode::PerBatch, 5, r, world);
      for (size_t i : s.shard(0, epoch)) seen.insert(i);
    }
    EXPECT_EQ(seen.size(), 100u);
    for (size_t i = 0; i < 100; ++i) EXPECT_EQ(seen.count(i), 1u) << i;
  }
  // And the batches a rank draws over one epoch are exactly its shard.
  MixingSampler s(src, BatchLimits{10, 0, 0, 8}, MixMode::PerBatch, 5, 2, world);
  std::multiset<size_t> drawn;
  while (s.state().sources[0].epoch == 0)
    for (const auto& it : s.next().items) drawn.insert(it.second);
  const auto shard = s.shard(0, 0);
  EXPECT_EQ(drawn, std::multiset<size_t>(shard.begin(), shard.end()));
}

}  // namespace
}  // namespace vtb::data
