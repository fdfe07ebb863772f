// The scores the speech and translation communities report, reproducing their reference tools:
//   WER  — jiwer's corpus WER: total edits / total reference words (not a mean of per-sentence WERs).
//   BLEU — sacreBLEU's default: 13a tokenizer, up to 4-grams, exponential smoothing, brevity penalty.
//   ROUGE-L — Google's rouge-score: longest common subsequence of tokens, F1, default tokenizer, no stemmer.
#pragma once

#include <string>
#include <vector>

namespace vtb::eval {

struct WordErrors {
  long substitutions = 0, deletions = 0, insertions = 0, hits = 0;
  long reference_words() const { return hits + substitutions + deletions; }
  long edits() const { return substitutions + deletions + insertions; }
};

// Edit counts of one sentence pair (Levenshtein over whitespace-separated words, unit costs).
WordErrors word_errors(const std::string& reference, const std::string& hypothesis);

// Corpus WER (edits / reference words; when there are no reference words at all, the insertions).
// With `normalize`, both sides pass through english_normalize first.
double corpus_wer(const std::vector<std::string>& references, const std::vector<std::string>& hypotheses,
                  bool normalize, WordErrors* totals = nullptr);

// An English normaliser in the spirit of Whisper's: lowercase; [..] and (..) spans, and the fillers hmm, mm,
// mhm, mmm, uh, um removed; punctuation and symbols become spaces, apostrophes inside words stay; spelled-out
// numbers stay words; whitespace collapsed.
std::string english_normalize(const std::string& text);

// sacreBLEU's 13a tokenizer (mteval-v13a).
std::string tokenize_13a(const std::string& text);

struct BleuScore {
  double score = 0;  // 0–100
  std::vector<long> matches, totals;
  long sys_len = 0, ref_len = 0;
  double brevity_penalty = 1;
  std::string signature;  // sacreBLEU's signature fields; version:vtb marks this reimplementation
};

// Corpus BLEU; `references[k][i]` is reference stream k for hypothesis i.
BleuScore corpus_bleu(const std::vector<std::string>& hypotheses,
                      const std::vector<std::vector<std::string>>& references);

// Sentence BLEU as sacreBLEU's sentence_bleu (exp smoothing, effective order).
double sentence_bleu(const std::string& hypothesis, const std::vector<std::string>& references);

// sacreBLEU's compute_bleu from statistics, as a 0–100 score.
double bleu_from_stats(const std::vector<long>& matches, const std::vector<long>& totals, long sys_len, long ref_len,
                       bool effective_order);

struct RougeScore {
  double precision = 0, recall = 0, fmeasure = 0;
};

// rouge-score's default tokenizer: lowercase, every run of characters outside [a-z0-9] separates tokens.
std::vector<std::string> rouge_tokenize(const std::string& text);

// ROUGE-L of one pair: LCS / hypothesis tokens, LCS / reference tokens, and their harmonic mean (all 0 when
// either side has no tokens), as rouge_scorer.RougeScorer(["rougeL"]).score(reference, hypothesis).
RougeScore rouge_l(const std::string& reference, const std::string& hypothesis);

// The mean ROUGE-L F1 over pairs (0–1), as reported for spoken QA.
double mean_rouge_l(const std::vector<std::string>& references, const std::vector<std::string>& hypotheses);

}  // namespace vtb::eval
