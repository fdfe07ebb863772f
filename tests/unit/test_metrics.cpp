// WER and BLEU against the reference tools' own published test cases (jiwer tests/test_measures.py;
// sacreBLEU test/test_bleu.py, test_sentence_bleu.py), as collected in docs/sources.md §11.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "eval/metrics.h"
#include "eval/vocabulary.h"

namespace vtb::eval {
namespace {

TEST(Wer, JiwerTestCases) {
  EXPECT_DOUBLE_EQ(corpus_wer({"This is a test"}, {"This is a test"}, false), 0.0);
  EXPECT_DOUBLE_EQ(corpus_wer({"This is a test"}, {""}, false), 1.0);
  EXPECT_DOUBLE_EQ(corpus_wer({"This is a test"}, {"This test"}, false), 0.5);
  EXPECT_DOUBLE_EQ(corpus_wer({"i am a short ground truth"},
                              {"i am a considerably longer and very much incorrect hypothesis"}, false),
                   7.0 / 6.0);
  // wer_contiguous: a reference given in pieces is one sentence.
  EXPECT_DOUBLE_EQ(corpus_wer({"hello this sentence is fractured"}, {"this sentence"}, false), 0.6);
}

TEST(Wer, CorpusLevelIsTotalEditsOverTotalReferenceWords) {
  WordErrors totals;
  // Per-sentence WERs 1/1 and 0/4 would average 0.5; the corpus WER is 1/5.
  EXPECT_DOUBLE_EQ(corpus_wer({"yes", "one two three four"}, {"no", "one two three four"}, false, &totals), 0.2);
  EXPECT_EQ(totals.substitutions, 1);
  EXPECT_EQ(totals.hits, 4);
  // No reference words at all: the WER is the number of insertions (jiwer's convention).
  EXPECT_DOUBLE_EQ(corpus_wer({""}, {"two words"}, false), 2.0);
  EXPECT_THROW(corpus_wer({"a"}, {}, false), std::invalid_argument);
}

TEST(Wer, EditCountsSplitIntoSubstitutionsDeletionsInsertions) {
  // Three edits whichever minimal alignment is chosen (on→at, the deleted, today inserted; or three
  // substitutions): only the edit count is defined, and hits + S + D always covers the reference.
  const WordErrors e = word_errors("the cat sat on the mat", "the cat sat at mat today");
  EXPECT_EQ(e.edits(), 3);
  EXPECT_EQ(e.reference_words(), 6);
  const WordErrors d = word_errors("a b c d", "a d");
  EXPECT_EQ(d.deletions, 2);
  EXPECT_EQ(d.hits, 2);
  const WordErrors i = word_errors("a d", "a b c d");
  EXPECT_EQ(i.insertions, 2);
}

TEST(Wer, EnglishNormalizer) {
  EXPECT_EQ(english_normalize("Hello, World!  It's [noise] (laughs) a TEST."), "hello world it's a test");
  EXPECT_EQ(english_normalize("Um, the cat -- uh -- sat."), "the cat sat");
  EXPECT_EQ(english_normalize("three seven one"), "three seven one");  // spelled-out numbers stay words
  EXPECT_DOUBLE_EQ(corpus_wer({"The cat sat."}, {"the cat, sat"}, true), 0.0);
  EXPECT_DOUBLE_EQ(corpus_wer({"The cat sat."}, {"the cat, sat"}, false), 1.0);  // every word differs raw
}

TEST(Bleu, Tokenizer13a) {
  EXPECT_EQ(tokenize_13a("It wasn't surprising."), "It wasn't surprising .");
  EXPECT_EQ(tokenize_13a("Hello, world! 3.14 1,000 5-6 a-b"), "Hello , world ! 3.14 1,000 5 - 6 a-b");
  EXPECT_EQ(tokenize_13a("a &amp; b &quot;c&quot;"), "a & b \" c \"");
}

TEST(Bleu, SacrebleuCorpusTestCase) {
  const std::vector<std::string> hyps{"The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."};
  const std::vector<std::vector<std::string>> refs{
      {"The dog bit the man.", "It was not unexpected.", "The man bit him first."},
      {"The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."}};
  const BleuScore b = corpus_bleu(hyps, refs);
  EXPECT_NEAR(b.score, 48.530827, 5e-5);
  EXPECT_EQ(b.matches, (std::vector<long>{14, 7, 5, 3}));
  EXPECT_EQ(b.totals, (std::vector<long>{17, 14, 11, 8}));
  EXPECT_EQ(b.sys_len, 17);
  EXPECT_EQ(b.ref_len, 18);
  EXPECT_EQ(b.signature, "nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:vtb");
  EXPECT_DOUBLE_EQ(corpus_bleu({"", "", ""}, refs).score, 0.0);
}

TEST(Bleu, SacrebleuComputeBleuAndSentenceBleu) {
  EXPECT_NEAR(bleu_from_stats({9, 7, 5, 3}, {10, 8, 6, 4}, 11, 11, false) / 100, 0.8375922397, 1e-9);
  EXPECT_NEAR(sentence_bleu("Producția de zahăr primă va fi exprimată în ceea ce privește zahărul alb;",
                            {"producţia de zahăr brut se exprimă în zahăr alb;"}),
              8.493, 5e-4);
}

}  // namespace
}  // namespace vtb::eval

namespace vtb::eval {
namespace {

// Google rouge-score's own test cases (rouge_scorer_test.py): score(target, prediction).
TEST(RougeL, RougeScoreTestCases) {
  const RougeScore consecutive = rouge_l("testing one two", "testing one");
  EXPECT_DOUBLE_EQ(consecutive.precision, 1.0);
  EXPECT_DOUBLE_EQ(consecutive.recall, 2.0 / 3);
  EXPECT_DOUBLE_EQ(consecutive.fmeasure, 4.0 / 5);
  const RougeScore gap = rouge_l("testing one two", "testing two");  // a subsequence, not a substring
  EXPECT_DOUBLE_EQ(gap.precision, 1.0);
  EXPECT_DOUBLE_EQ(gap.recall, 2.0 / 3);
  EXPECT_DOUBLE_EQ(gap.fmeasure, 4.0 / 5);
  const RougeScore empty = rouge_l("testing one two", "");
  EXPECT_EQ(empty.precision, 0.0);
  EXPECT_EQ(empty.recall, 0.0);
  EXPECT_EQ(empty.fmeasure, 0.0);
  EXPECT_EQ(rouge_l("", "testing").fmeasure, 0.0);
  // The default tokenizer: case and punctuation do not matter; only [a-z0-9] runs are tokens.
  EXPECT_EQ(rouge_tokenize("Hello, World! It's 42."), (std::vector<std::string>{"hello", "world", "it", "s", "42"}));
  EXPECT_DOUBLE_EQ(rouge_l("Testing one, two!", "TESTING two").fmeasure, 4.0 / 5);
}

TEST(RougeL, LongestCommonSubsequenceByHand) {
  // LCS of "a b c d e f" and "a c x e f b" is "a c e f" (4): P 4/6, R 4/6.
  const RougeScore r = rouge_l("a b c d e f", "a c x e f b");
  EXPECT_DOUBLE_EQ(r.precision, 4.0 / 6);
  EXPECT_DOUBLE_EQ(r.recall, 4.0 / 6);
  EXPECT_DOUBLE_EQ(r.fmeasure, 4.0 / 6);
  EXPECT_DOUBLE_EQ(mean_rouge_l({"a b", "c"}, {"a b", "d"}), 0.5);
}

}  // namespace
}  // namespace vtb::eval

namespace vtb::eval {
namespace {

// Out-of-vocabulary rate by hand: training text "The cat sat." (answer) + "Hello, world!" (a turn) + "on
// the mat" (text) gives {the, cat, sat, hello, world, on, mat}; the test references "The dog sat on the
// mat." (6 words, dog unseen) and a conversation whose last Assistant turn is "Hello, cats" (2 words, cats
// unseen): 2 of 8.
TEST(Vocabulary, OutOfVocabularyRateByHand) {
  const std::string dir = ::testing::TempDir() + "vtb_oov_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/train.jsonl") << R"({"answer": "The cat sat.", "audio_filepath": "zebra.wav"})"
                                      << "\n"
                                      << R"({"conversations": [{"from": "User", "value": "Hello, world!"}]})"
                                      << "\n"
                                      << R"({"text": "on the mat"})"
                                      << "\n";
  std::ofstream(dir + "/test.jsonl")
      << R"({"answer": "The dog sat on the mat."})"
      << "\n"
      << R"({"conversations": [{"from": "User", "value": "zebra"}, {"from": "Assistant", "value": "no"},)"
      << R"( {"from": "User", "value": "again"}, {"from": "Assistant", "value": "Hello, cats"}]})"
      << "\n";
  const std::set<std::string> vocabulary = manifest_words({dir + "/train.jsonl"});
  EXPECT_EQ(vocabulary, (std::set<std::string>{"the", "cat", "sat", "hello", "world", "on", "mat"}));
  const OovRate r = out_of_vocabulary(vocabulary, dir + "/test.jsonl");
  EXPECT_EQ(r.words, 8);
  EXPECT_EQ(r.unseen, 2);
  EXPECT_EQ(r.types, (std::set<std::string>{"dog", "cats"}));
  EXPECT_DOUBLE_EQ(r.rate(), 0.25);
  std::ofstream(dir + "/bad.jsonl") << R"({"answer": "fine"})"
                                    << "\n"
                                    << "{not json\n";
  try {
    out_of_vocabulary(vocabulary, dir + "/bad.jsonl");
    ADD_FAILURE() << "a broken line was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:2"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace vtb::eval
