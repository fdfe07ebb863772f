#include "eval/vocabulary.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "eval/metrics.h"

namespace vtb::eval {
namespace {

using nlohmann::json;

void add_words(const std::string& text, std::set<std::string>& words) {
  std::istringstream in(english_normalize(text));
  for (std::string w; in >> w;) words.insert(w);
}

// Calls `f(line_number, json)` for each line of a JSONL file.
template <typename F>
void for_each_line(const std::string& path, F f) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open");
  int64_t n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    if (line.empty()) continue;
    json j;
    try {
      j = json::parse(line);
    } catch (const json::parse_error& e) {
      throw std::runtime_error(path + ":" + std::to_string(n) + ": not JSON (" + e.what() + ")");
    }
    f(n, j);
  }
}

}  // namespace

std::set<std::string> manifest_words(const std::vector<std::string>& manifests) {
  std::set<std::string> words;
  for (const auto& path : manifests)
    for_each_line(path, [&](int64_t, const json& j) {
      for (const char* field : {"text", "answer", "context", "question", "spoken"})
        if (j.contains(field) && j[field].is_string()) add_words(j[field].get<std::string>(), words);
      if (j.contains("conversations"))
        for (const auto& turn : j["conversations"])
          if (turn.contains("value") && turn["value"].is_string()) add_words(turn["value"].get<std::string>(), words);
    });
  return words;
}

OovRate out_of_vocabulary(const std::set<std::string>& vocabulary, const std::string& test_manifest) {
  OovRate r;
  for_each_line(test_manifest, [&](int64_t n, const json& j) {
    std::string reference;
    if (j.contains("answer") && j["answer"].is_string()) {
      reference = j["answer"].get<std::string>();
    } else if (j.contains("conversations") && j["conversations"].is_array()) {
      for (const auto& turn : j["conversations"])
        if (turn.value("from", "") == "Assistant" && turn.contains("value"))
          reference = turn["value"].get<std::string>();
    } else {
      throw std::runtime_error(test_manifest + ":" + std::to_string(n) + ": no answer and no conversations");
    }
    std::istringstream in(english_normalize(reference));
    for (std::string w; in >> w;) {
      ++r.words;
      if (vocabulary.count(w) == 0) {
        ++r.unseen;
        r.types.insert(w);
      }
    }
  });
  return r;
}

}  // namespace vtb::eval
