#include "eval/metrics.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <regex>
#include <sstream>
#include <stdexcept>

namespace vtb::eval {
namespace {

std::vector<std::string> words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
}

}  // namespace

WordErrors word_errors(const std::string& reference, const std::string& hypothesis) {
  const auto r = words(reference), h = words(hypothesis);
  // cost[i][j]: edits turning r[0..i) into h[0..j); backtrack to split them into S, D, I.
  std::vector<std::vector<int>> cost(r.size() + 1, std::vector<int>(h.size() + 1));
  for (size_t i = 0; i <= r.size(); ++i) cost[i][0] = static_cast<int>(i);
  for (size_t j = 0; j <= h.size(); ++j) cost[0][j] = static_cast<int>(j);
  for (size_t i = 1; i <= r.size(); ++i)
    for (size_t j = 1; j <= h.size(); ++j)
      cost[i][j] =
          std::min({cost[i - 1][j - 1] + (r[i - 1] == h[j - 1] ? 0 : 1), cost[i - 1][j] + 1, cost[i][j - 1] + 1});
  WordErrors e;
  size_t i = r.size(), j = h.size();
  while (i > 0 || j > 0) {
    if (i > 0 && j > 0 && cost[i][j] == cost[i - 1][j - 1] + (r[i - 1] == h[j - 1] ? 0 : 1)) {
      (r[i - 1] == h[j - 1] ? e.hits : e.substitutions)++;
      --i, --j;
    } else if (i > 0 && cost[i][j] == cost[i - 1][j] + 1) {
      ++e.deletions;
      --i;
    } else {
      ++e.insertions;
      --j;
    }
  }
  return e;
}

std::string english_normalize(const std::string& text) {
  std::string s = text;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  s = std::regex_replace(s, std::regex(R"([<\[][^>\]]*[>\]])"), " ");
  s = std::regex_replace(s, std::regex(R"(\([^)]+?\))"), " ");
  s = std::regex_replace(s, std::regex(R"(\b(hmm|mm|mhm|mmm|uh|um)\b)"), " ");
  std::string out;
  for (size_t k = 0; k < s.size(); ++k) {
    const unsigned char c = static_cast<unsigned char>(s[k]);
    const bool apostrophe_in_word = c == '\'' && k > 0 && k + 1 < s.size() &&
                                    std::isalnum(static_cast<unsigned char>(s[k - 1])) &&
                                    std::isalnum(static_cast<unsigned char>(s[k + 1]));
    out += (c < 0x80 && std::ispunct(c) && !apostrophe_in_word) ? ' ' : static_cast<char>(c);
  }
  std::string collapsed;
  for (const auto& w : words(out)) collapsed += (collapsed.empty() ? "" : " ") + w;
  return collapsed;
}

double corpus_wer(const std::vector<std::string>& references, const std::vector<std::string>& hypotheses,
                  bool normalize, WordErrors* totals) {
  if (references.size() != hypotheses.size())
    throw std::invalid_argument("WER: " + std::to_string(references.size()) + " references but " +
                                std::to_string(hypotheses.size()) + " hypotheses");
  WordErrors sum;
  for (size_t i = 0; i < references.size(); ++i) {
    const WordErrors e = normalize ? word_errors(english_normalize(references[i]), english_normalize(hypotheses[i]))
                                   : word_errors(references[i], hypotheses[i]);
    sum.hits += e.hits;
    sum.substitutions += e.substitutions;
    sum.deletions += e.deletions;
    sum.insertions += e.insertions;
  }
  if (totals) *totals = sum;
  return sum.reference_words() == 0 ? static_cast<double>(sum.insertions)
                                    : static_cast<double>(sum.edits()) / static_cast<double>(sum.reference_words());
}

std::string tokenize_13a(const std::string& text) {
  std::string s = text;
  replace_all(s, "<skipped>", "");
  replace_all(s, "-\n", "");
  std::replace(s.begin(), s.end(), '\n', ' ');
  if (s.find('&') != std::string::npos) {
    replace_all(s, "&quot;", "\"");
    replace_all(s, "&amp;", "&");
    replace_all(s, "&lt;", "<");
    replace_all(s, "&gt;", ">");
  }
  // Surround the mteval punctuation set with spaces: { | } ~  [ \ ] ^ _ `  space ! " # $ % &  ( ) * +
  // : ; < = > ? @  and /.
  std::string spaced = " ";
  for (unsigned char c : s) {
    const bool punct = (c >= 0x7B && c <= 0x7E) || (c >= 0x5B && c <= 0x60) || (c >= 0x20 && c <= 0x26) ||
                       (c >= 0x28 && c <= 0x2B) || (c >= 0x3A && c <= 0x40) || c == '/';
    if (punct) {
      spaced += ' ';
      spaced += static_cast<char>(c);
      spaced += ' ';
    } else {
      spaced += static_cast<char>(c);
    }
  }
  spaced += ' ';
  static const std::regex period_comma_after_nondigit(R"(([^0-9])([\.,]))"),
      period_comma_before_nondigit(R"(([\.,])([^0-9]))"), dash_after_digit(R"(([0-9])(-))");
  spaced = std::regex_replace(spaced, period_comma_after_nondigit, "$1 $2 ");
  spaced = std::regex_replace(spaced, period_comma_before_nondigit, " $1 $2");
  spaced = std::regex_replace(spaced, dash_after_digit, "$1 $2 ");
  std::string joined;
  for (const auto& w : words(spaced)) joined += (joined.empty() ? "" : " ") + w;
  return joined;
}

double bleu_from_stats(const std::vector<long>& matches, const std::vector<long>& totals, long sys_len, long ref_len,
                       bool effective_order) {
  const size_t max_order = matches.size();
  if (sys_len == 0 || matches[0] == 0) return 0.0;
  double k = 1.0, log_sum = 0;
  size_t order = max_order;
  for (size_t n = 0; n < max_order; ++n) {
    if (totals[n] == 0) {
      order = n;
      break;
    }
    double precision;
    if (matches[n] == 0) {  // 'exp' smoothing
      k *= 2;
      precision = 100.0 / (k * static_cast<double>(totals[n]));
    } else {
      precision = 100.0 * static_cast<double>(matches[n]) / static_cast<double>(totals[n]);
    }
    log_sum += std::log(precision);
  }
  const size_t eff = effective_order ? std::max<size_t>(order, 1) : max_order;
  if (!effective_order && order < max_order) log_sum += -9999999999.0 * static_cast<double>(max_order - order);
  const double bp =
      sys_len >= ref_len ? 1.0 : std::exp(1.0 - static_cast<double>(ref_len) / static_cast<double>(sys_len));
  return bp * std::exp(log_sum / static_cast<double>(eff));
}

namespace {

using Counts = std::map<std::vector<std::string>, long>;

Counts ngrams(const std::vector<std::string>& w, size_t max_order) {
  Counts c;
  for (size_t n = 1; n <= max_order; ++n)
    for (size_t i = 0; i + n <= w.size(); ++i) ++c[std::vector<std::string>(w.begin() + i, w.begin() + i + n)];
  return c;
}

// One segment's statistics, added to the corpus totals (sacreBLEU's _extract_corpus_statistics).
void add_segment(const std::string& hyp, const std::vector<std::string>& refs, std::vector<long>& matches,
                 std::vector<long>& totals, long& sys_len, long& ref_len) {
  const auto h = words(tokenize_13a(hyp));
  Counts ref_max;
  long closest = -1;
  for (const auto& r : refs) {
    const auto rw = words(tokenize_13a(r));
    const long len = static_cast<long>(rw.size());
    const long diff = std::abs(len - static_cast<long>(h.size()));
    if (closest < 0 || diff < std::abs(closest - static_cast<long>(h.size())) ||
        (diff == std::abs(closest - static_cast<long>(h.size())) && len < closest))
      closest = len;
    for (const auto& [g, n] : ngrams(rw, 4)) ref_max[g] = std::max(ref_max[g], n);
  }
  for (const auto& [g, n] : ngrams(h, 4)) {
    totals[g.size() - 1] += n;
    auto it = ref_max.find(g);
    if (it != ref_max.end()) matches[g.size() - 1] += std::min(n, it->second);
  }
  sys_len += static_cast<long>(h.size());
  ref_len += std::max(closest, 0L);
}

}  // namespace

BleuScore corpus_bleu(const std::vector<std::string>& hypotheses,
                      const std::vector<std::vector<std::string>>& references) {
  BleuScore b;
  b.matches.assign(4, 0);
  b.totals.assign(4, 0);
  for (const auto& stream : references)
    if (stream.size() != hypotheses.size())
      throw std::invalid_argument("BLEU: a reference stream has " + std::to_string(stream.size()) +
                                  " lines, the hypotheses " + std::to_string(hypotheses.size()));
  for (size_t i = 0; i < hypotheses.size(); ++i) {
    std::vector<std::string> refs;
    for (const auto& stream : references) refs.push_back(stream[i]);
    add_segment(hypotheses[i], refs, b.matches, b.totals, b.sys_len, b.ref_len);
  }
  b.score = bleu_from_stats(b.matches, b.totals, b.sys_len, b.ref_len, false);
  b.brevity_penalty = b.sys_len >= b.ref_len || b.sys_len == 0
                          ? (b.sys_len == 0 ? 0.0 : 1.0)
                          : std::exp(1.0 - static_cast<double>(b.ref_len) / b.sys_len);
  b.signature = "nrefs:" + std::to_string(references.size()) + "|case:mixed|eff:no|tok:13a|smooth:exp|version:vtb";
  return b;
}

double sentence_bleu(const std::string& hypothesis, const std::vector<std::string>& references) {
  std::vector<long> matches(4, 0), totals(4, 0);
  long sys_len = 0, ref_len = 0;
  add_segment(hypothesis, references, matches, totals, sys_len, ref_len);
  return bleu_from_stats(matches, totals, sys_len, ref_len, true);
}

std::vector<std::string> rouge_tokenize(const std::string& text) {
  std::vector<std::string> tokens;
  std::string current;
  for (char raw : text) {
    const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(raw)));
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      current += c;
    } else if (!current.empty()) {
      tokens.push_back(std::move(current));
      current.clear();
    }
  }
  if (!current.empty()) tokens.push_back(std::move(current));
  return tokens;
}

RougeScore rouge_l(const std::string& reference, const std::string& hypothesis) {
  const std::vector<std::string> ref = rouge_tokenize(reference), hyp = rouge_tokenize(hypothesis);
  if (ref.empty() || hyp.empty()) return {};
  // Longest common subsequence, one row at a time.
  std::vector<size_t> previous(hyp.size() + 1, 0), row(hyp.size() + 1, 0);
  for (size_t i = 1; i <= ref.size(); ++i) {
    for (size_t j = 1; j <= hyp.size(); ++j)
      row[j] = ref[i - 1] == hyp[j - 1] ? previous[j - 1] + 1 : std::max(previous[j], row[j - 1]);
    std::swap(previous, row);
  }
  const auto lcs = static_cast<double>(previous[hyp.size()]);
  RougeScore r;
  r.precision = lcs / static_cast<double>(hyp.size());
  r.recall = lcs / static_cast<double>(ref.size());
  r.fmeasure = lcs == 0 ? 0 : 2 * r.precision * r.recall / (r.precision + r.recall);
  return r;
}

double mean_rouge_l(const std::vector<std::string>& references, const std::vector<std::string>& hypotheses) {
  if (references.size() != hypotheses.size())
    throw std::invalid_argument("ROUGE-L: references and hypotheses differ in number");
  if (references.empty()) return 0;
  double sum = 0;
  for (size_t i = 0; i < references.size(); ++i) sum += rouge_l(references[i], hypotheses[i]).fmeasure;
  return sum / static_cast<double>(references.size());
}

}  // namespace vtb::eval
