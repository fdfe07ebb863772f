#include "data/synthetic_corpus.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "data/audio.h"
#include "data/mixed_modal.h"
#include "data/speech_synthesizer.h"
#include "data/tokenizer.h"

namespace vtb::data {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::vector<std::string> kDigits{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"};
const std::vector<std::string> kNumbers{"zero",     "one",     "two",     "three",     "four",    "five",   "six",
                                        "seven",    "eight",   "nine",    "ten",       "eleven",  "twelve", "thirteen",
                                        "fourteen", "fifteen", "sixteen", "seventeen", "eighteen"};

struct Item {
  std::string spoken;       // what the voice says ("" for text SFT)
  json line;                // the manifest line, without audio fields
  std::string source_text;  // AST: the English sentence; SQA: the statement (for the LLM's pretraining text)
};

// The stand-in LLM's pretraining text (lm_train.jsonl), from the training splits only, so that the base
// model knows what a downloaded instruction-tuned LLM would: the English of the ASR sentences, German, how
// to translate and to answer a question about a text, and the text SFT conversations. Nothing of a test
// split is in it.
json lm_documents(const std::vector<Item>& asr, const std::vector<Item>& ast, const std::vector<Item>& sqa,
                  const std::vector<Item>& text, const std::vector<Item>& prose) {
  auto chat = [](const std::string& user, const std::string& answer) {
    return json{{"conversations", json::array({json{{"from", "User"}, {"value", user}},
                                               json{{"from", "Assistant"}, {"value", answer}}})}};
  };
  json docs = json::array();
  // Repeating a sentence is an ability every instruction-tuned LLM has, and the one ASR through the LLM
  // builds on (SQA likewise builds on answering from context): without it the LoRA must teach the frozen
  // base to copy text in order, which a small base learns far too slowly.
  for (const auto& i : asr) {
    docs.push_back(json{{"text", i.spoken}});
    docs.push_back(chat("Repeat this sentence: " + i.spoken, i.spoken));
  }
  for (const auto& i : ast) {
    docs.push_back(json{{"text", i.line["answer"]}});
    docs.push_back(chat("Translate into German: " + i.source_text, i.line["answer"]));
    docs.push_back(chat("Repeat this sentence: " + i.source_text, i.source_text));
  }
  for (const auto& i : sqa)
    docs.push_back(chat(i.source_text + " " + i.line["question"].get<std::string>(), i.line["answer"]));
  for (const auto& i : text) docs.push_back(i.line);
  for (const auto& i : prose) {  // real English, written (as a text) and transcribed (as ASR answers it)
    docs.push_back(json{{"text", i.spoken}});
    docs.push_back(chat("Repeat this sentence: " + i.spoken, i.line["answer"]));
  }
  return docs;
}

// All combinations of the lists, as index tuples.
std::vector<std::vector<size_t>> combinations(const std::vector<size_t>& sizes) {
  std::vector<std::vector<size_t>> out{{}};
  for (size_t n : sizes) {
    std::vector<std::vector<size_t>> next;
    for (const auto& prefix : out)
      for (size_t i = 0; i < n; ++i) {
        next.push_back(prefix);
        next.back().push_back(i);
      }
    out = std::move(next);
  }
  return out;
}

using Split = std::pair<std::vector<Item>, std::vector<Item>>;  // (train, test)

// Splits shuffled combinations: the first `test` for testing (never trained on), then `train` drawn
// with repetition allowed only if the pool is smaller than asked.
template <typename Make>
Split split(std::vector<std::vector<size_t>> combos, int train, int test, std::mt19937_64& rng, Make make) {
  std::shuffle(combos.begin(), combos.end(), rng);
  if (static_cast<int>(combos.size()) <= test)
    throw std::runtime_error("synth: too few combinations for the test split");
  std::vector<Item> tr, te;
  for (int i = 0; i < test; ++i) te.push_back(make(combos[static_cast<size_t>(i)]));
  const size_t pool = combos.size() - static_cast<size_t>(test);
  for (int i = 0; i < train; ++i) tr.push_back(make(combos[static_cast<size_t>(test) + static_cast<size_t>(i) % pool]));
  return {tr, te};
}

class Writer {
 public:
  Writer(const SynthOptions& o, SynthReport& report)
      : o_(o), report_(report), training_(training_voice_names(o.engines)) {
    for (const auto& engine : o.engines) held_out_.push_back(held_out_voice_name(engine));
  }

  void write(const std::string& name, std::vector<Item>& items, bool test, std::mt19937_64& rng) {
    const fs::path manifest = fs::path(o_.out_dir) / (name + (test ? "_test.jsonl" : "_train.jsonl"));
    const fs::path audio_dir = fs::path(o_.out_dir) / "audio" / name / (test ? "test" : "train");
    std::ofstream out(manifest);
    for (size_t i = 0; i < items.size(); ++i) {
      json line = items[i].line;
      if (!items[i].spoken.empty()) {
        // Half of every test split is spoken by the voices training never hears (one per engine, in turn).
        const std::string& name =
            test && i % 2 == 1 ? held_out_[(i / 2) % held_out_.size()] : training_[rng() % training_.size()];
        speak(items[i].spoken, vary(name, rng), audio_dir / (std::to_string(i) + ".wav"), line);
      }
      out << line.dump() << "\n";
    }
    report_.examples[manifest.filename().string()] = static_cast<int>(items.size());
  }

  SpeechSynthesizer& tts() { return tts_; }

  // asr_<engine>_test.jsonl: the asr test items again, every one spoken by `engine`'s held-out voice, with
  // its own generator so that the rest of the corpus does not depend on which engines exist.
  void write_engine_split(const std::string& engine, const std::vector<Item>& items, uint64_t seed) {
    std::mt19937_64 rng(seed);
    const fs::path manifest = fs::path(o_.out_dir) / ("asr_" + engine + "_test.jsonl");
    const fs::path audio_dir = fs::path(o_.out_dir) / "audio" / ("asr_" + engine) / "test";
    std::ofstream out(manifest);
    for (size_t i = 0; i < items.size(); ++i) {
      json line = items[i].line;
      speak(items[i].spoken, vary(held_out_voice_name(engine), rng), audio_dir / (std::to_string(i) + ".wav"), line);
      out << line.dump() << "\n";
    }
    report_.examples[manifest.filename().string()] = static_cast<int>(items.size());
  }

 private:
  void speak(const std::string& text, const Voice& v, const fs::path& file, json& line) {
    fs::create_directories(file.parent_path());
    const std::vector<float> samples = tts_.speak(text, v);
    write_wav(file.string(), samples);
    line["audio_filepath"] = fs::relative(file, o_.out_dir).string();
    line["duration"] = static_cast<double>(samples.size()) / kSampleRate;
    line["voice"] = v.name;
    report_.audio_seconds += line["duration"].get<double>();
    ++report_.voices[v.name];
  }

  const SynthOptions& o_;
  SynthReport& report_;
  std::vector<std::string> training_, held_out_;
  SpeechSynthesizer tts_;
};

// Each task's (train, test) items; every text the tokenizer should know goes into `texts`.
Split asr_items(const SynthOptions& o, std::mt19937_64& rng, std::set<std::string>& texts) {
  // ASR: "<subject> <verb> <object> <place>" sentences, and digit strings.
  const std::vector<std::string> subjects{"the cat",     "a dog",       "my friend",  "the teacher",  "a small bird",
                                          "the old man", "her brother", "the farmer", "a young girl", "the doctor"};
  const std::vector<std::string> verbs{"sees", "likes", "finds", "carries", "paints", "watches", "buys", "moves"};
  const std::vector<std::string> objects{"a red ball",   "the green box", "two apples", "a long letter",
                                         "the blue car", "an old book",   "some bread", "the big table",
                                         "a warm coat",  "three cups"};
  const std::vector<std::string> places{"in the garden", "at the market", "near the river", "in the kitchen",
                                        "on the hill",   "at school",     "by the window",  "in the park"};
  return split(combinations({10, 8, 10, 8}), o.asr_train, o.asr_test, rng, [&](const std::vector<size_t>& c) {
    std::string s = subjects[c[0]] + " " + verbs[c[1]] + " " + objects[c[2]] + " " + places[c[3]];
    if (c[3] == 0 && c[1] < 4) {  // one in eight: a digit string instead
      s.clear();
      for (size_t k = 0; k < 3 + c[0] % 4; ++k)
        s += (k ? " " : "") + kDigits[(c[1] * 7 + c[2] * 3 + k * 5 + c[0]) % 10];
    }
    texts.insert(s);
    return Item{s, json{{"context", "Transcribe the audio."}, {"answer", s}, {"lang", "en"}}, ""};
  });
}

Split ast_items(const SynthOptions& o, std::mt19937_64& rng, std::set<std::string>& texts) {
  // AST: "<subject> is <adjective>" → German, from a phrase table.
  const std::vector<std::pair<std::string, std::string>> nouns{
      {"the cat", "die Katze"},     {"the dog", "der Hund"},   {"the house", "das Haus"},     {"the car", "das Auto"},
      {"the tree", "der Baum"},     {"the child", "das Kind"}, {"the teacher", "der Lehrer"}, {"the bird", "der Vogel"},
      {"the garden", "der Garten"}, {"the river", "der Fluss"}};
  const std::vector<std::pair<std::string, std::string>> adjectives{
      {"big", "groß"},        {"small", "klein"}, {"old", "alt"},      {"new", "neu"},     {"red", "rot"},
      {"happy", "glücklich"}, {"tired", "müde"},  {"fast", "schnell"}, {"quiet", "leise"}, {"warm", "warm"}};
  return split(combinations({10, 10}), o.ast_train, o.ast_test, rng, [&](const std::vector<size_t>& c) {
    const std::string en = nouns[c[0]].first + " is " + adjectives[c[1]].first;
    std::string de = nouns[c[0]].second + " ist " + adjectives[c[1]].second;
    de[0] = static_cast<char>(std::toupper(de[0]));
    texts.insert(de + ".");
    return Item{en, json{{"context", "Translate the audio into German."}, {"answer", de + "."}, {"lang", "de"}}, en};
  });
}

Split sqa_items(const SynthOptions& o, std::mt19937_64& rng, std::set<std::string>& texts) {
  // SQA: a spoken statement, a text question about it, a one-word answer.
  const std::vector<std::string> names{"Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hugo"};
  const std::vector<std::string> things{"apples", "books", "cats", "cups", "pens", "coins"};
  return split(combinations({8, 6, 8}), o.sqa_train, o.sqa_test, rng, [&](const std::vector<size_t>& c) {
    const std::string n = kNumbers[c[2] + 2];
    const std::string question = "How many " + things[c[1]] + " does " + names[c[0]] + " have?";
    texts.insert(names[c[0]] + " has " + n + " " + things[c[1]] + ". " + question + " " + n);
    const std::string statement = names[c[0]] + " has " + n + " " + things[c[1]] + ".";
    return Item{statement, json{{"question", question}, {"answer", n}}, statement};
  });
}

Split text_items(const SynthOptions& o, std::mt19937_64& rng, std::set<std::string>& texts) {
  // Text SFT: arithmetic in words, opposites; one in five has a second turn.
  const std::vector<std::pair<std::string, std::string>> opposites{
      {"big", "small"}, {"old", "new"}, {"fast", "slow"}, {"warm", "cold"}, {"happy", "sad"}, {"quiet", "loud"}};
  return split(combinations({10, 9, 6}), o.text_train, o.text_test, rng, [&](const std::vector<size_t>& c) {
    json turns = json::array();
    const std::string q = "What is " + kNumbers[c[0]] + " plus " + kNumbers[c[1]] + "?";
    turns.push_back({{"from", "User"}, {"value", q}});
    turns.push_back({{"from", "Assistant"}, {"value", kNumbers[c[0] + c[1]]}});
    if ((c[0] + c[1] + c[2]) % 5 == 0) {
      turns.push_back({{"from", "User"}, {"value", "What is the opposite of " + opposites[c[2]].first + "?"}});
      turns.push_back({{"from", "Assistant"}, {"value", opposites[c[2]].second}});
    }
    for (const auto& t : turns) texts.insert(t["value"].get<std::string>());
    return Item{"", json{{"conversations", turns}}, ""};
  });
}

// An ASR answer from a prose sentence: lowercase words, the punctuation gone (apostrophes kept), as the
// template sentences and pocketsphinx-testdata's transcripts are written.
std::string transcript_of(const std::string& sentence) {
  std::string out, word;
  for (char c : sentence + " ") {
    if (std::isalpha(static_cast<unsigned char>(c)) || (c == '\'' && !word.empty())) {
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!word.empty()) {
      out += (out.empty() ? "" : " ") + word;
      word.clear();
    }
  }
  return out;
}

// Real English spoken: prose sentences shuffled by their own generator, the first `prose_test` for testing.
Split prose_items(const SynthOptions& o, std::set<std::string>& texts) {
  std::vector<std::string> sentences = prose_sentences(o.prose_dir);
  std::mt19937_64 rng(o.seed ^ 0x9605eULL);
  std::shuffle(sentences.begin(), sentences.end(), rng);
  if (static_cast<int>(sentences.size()) < o.prose_train + o.prose_test)
    throw std::runtime_error("synth: " + o.prose_dir + " has " + std::to_string(sentences.size()) +
                             " prose sentences, fewer than the " + std::to_string(o.prose_train + o.prose_test) +
                             " asked for");
  Split out;
  for (int i = 0; i < o.prose_test + o.prose_train; ++i) {
    const std::string& s = sentences[static_cast<size_t>(i)];
    texts.insert(s);
    (i < o.prose_test ? out.second : out.first)
        .push_back(
            Item{s, json{{"context", "Transcribe the audio."}, {"answer", transcript_of(s)}, {"lang", "en"}}, ""});
  }
  return out;
}

// text_multiturn_test.jsonl: held-out arithmetic questions two at a time (the first question and answer of
// text test items 2k and 2k+1), and mixed_multiturn_test.jsonl: the same conversations with words inside
// the second question spoken by the held-out voices (`vtb data mixgen`'s WordsInLaterTurn), scored on the
// final answer.
void write_multiturn_splits(const SynthOptions& o, const std::vector<Item>& text_test, SpeechSynthesizer& tts,
                            SynthReport& report) {
  const fs::path text = fs::path(o.out_dir) / "text_multiturn_test.jsonl";
  {
    std::ofstream out(text);
    for (size_t k = 0; k + 1 < text_test.size(); k += 2) {
      json turns = json::array();
      for (size_t i : {k, k + 1})
        for (size_t t : {0, 1}) turns.push_back(text_test[i].line["conversations"][t]);
      out << json{{"conversations", turns}}.dump() << "\n";
    }
  }
  report.examples[text.filename().string()] = static_cast<int>(text_test.size() / 2);
  MixgenOptions m;
  m.input = text.string();
  m.out_dir = o.out_dir;
  m.output = "mixed_multiturn_test.jsonl";
  m.variants = 1;
  m.seed = o.seed ^ 0x3017170ULL;
  m.span = MixgenOptions::Span::WordsInLaterTurn;
  for (const auto& engine : o.engines) m.voices.push_back(held_out_voice_name(engine));
  const MixgenReport r = make_mixed_modal(m, tts);
  report.examples[m.output] = static_cast<int>(r.examples);
  report.audio_seconds += r.audio_seconds;
}

// asr_real_test.jsonl: pocketsphinx-testdata's LibriVox sentences and spoken card names, each folder's
// transcript lines "<s> words </s> (utterance-id)" naming <folder>/<utterance-id>.wav. Human voices and
// words the synthetic corpus never has: how far a model trained on espeak-ng speech carries.
void write_real_speech_split(const SynthOptions& o, SynthReport& report) {
  const fs::path root = o.real_speech_dir;
  const fs::path manifest = fs::path(o.out_dir) / "asr_real_test.jsonl";
  if (o.real_speech_dir.empty() || !fs::is_directory(root)) {
    spdlog::warn("synth: no real speech at {} (apt-get install pocketsphinx-testdata): {} not written", root.string(),
                 manifest.filename().string());
    return;
  }
  std::ofstream out(manifest);
  int lines = 0;
  for (const auto& [folder, transcript] : {std::pair{"librivox", "transcription"}, {"cards", "cards.transcription"}}) {
    std::ifstream in(root / folder / transcript);
    std::string line;
    while (std::getline(in, line)) {
      const size_t open = line.rfind('('), close = line.rfind(')');
      if (open == std::string::npos || close < open) continue;
      const std::string id = line.substr(open + 1, close - open - 1);
      std::string words;
      std::istringstream tokens(line.substr(0, open));
      for (std::string w; tokens >> w;)
        if (w != "<s>" && w != "</s>") words += (words.empty() ? "" : " ") + w;
      const fs::path audio = root / folder / (id + ".wav");
      if (words.empty() || !fs::exists(audio)) continue;
      const json item{{"audio_filepath", audio.string()},
                      {"duration", audio_duration(audio.string())},
                      {"context", "Transcribe the audio."},
                      {"answer", words},
                      {"lang", "en"},
                      {"voice", std::string("human (pocketsphinx-testdata ") + folder + ")"}};
      out << item.dump() << "\n";
      ++lines;
    }
  }
  report.examples[manifest.filename().string()] = lines;
}

// <task>_unseen_prompt_test.jsonl for asr and ast: the test split again (same audio, same answers) with
// instructions that training never uses, paraphrases cycled over the lines. Read back from the written test
// manifest, so no random draw changes the rest of the corpus; the paraphrases are kept out of the
// tokenizer's text too, as out of training.
void write_unseen_prompt_splits(const SynthOptions& o, SynthReport& report) {
  for (const auto& [task, prompts] : unseen_prompts()) {
    const fs::path test = fs::path(o.out_dir) / (task + "_test.jsonl");
    const fs::path manifest = fs::path(o.out_dir) / (task + "_unseen_prompt_test.jsonl");
    std::ifstream in(test);
    std::ofstream out(manifest);
    int lines = 0;
    for (std::string line; std::getline(in, line); ++lines) {
      json item = json::parse(line);
      item["context"] = prompts[static_cast<size_t>(lines) % prompts.size()];
      out << item.dump() << "\n";
    }
    report.examples[manifest.filename().string()] = lines;
  }
}

}  // namespace

const std::vector<std::string>& prose_files() {
  static const std::vector<std::string> files{"literature", "wisdom",    "people", "platitudes",
                                              "education",  "work",      "love",   "miscellaneous",
                                              "fortunes",   "humorists", "science"};
  return files;
}

std::vector<std::string> prose_sentences(const std::string& dir) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  auto keep = [&](const std::string& sentence) {
    size_t start = sentence.find_first_not_of(' ');
    if (start == std::string::npos) return;
    const std::string s = sentence.substr(start);
    for (char c : s)
      if (!std::isalpha(static_cast<unsigned char>(c)) && std::string(" ,;.!?'-").find(c) == std::string::npos) return;
    std::istringstream words(transcript_of(s));
    int n = 0;
    for (std::string w; words >> w;) ++n;
    if (n >= 5 && n <= 14 && seen.insert(s).second) out.push_back(s);
  };
  for (const auto& name : prose_files()) {
    std::ifstream in(fs::path(dir) / name);
    std::string entry;
    auto flush = [&] {
      for (const auto& s : split_sentences(entry)) keep(s);
      entry.clear();
    };
    for (std::string line; std::getline(in, line);) {
      if (line == "%") {
        flush();
        continue;
      }
      const size_t first = line.find_first_not_of(" \t");
      if (first == std::string::npos || line.compare(first, 2, "--") == 0) continue;  // blank, attribution
      std::istringstream words(line);
      for (std::string w; words >> w;) entry += (entry.empty() ? "" : " ") + w;
    }
    flush();
  }
  if (out.empty()) throw std::runtime_error("synth: no prose sentences in " + dir + " (apt-get install fortunes)");
  return out;
}

const std::vector<std::pair<std::string, std::vector<std::string>>>& unseen_prompts() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> prompts{
      {"asr",
       {"Write down what is said.", "What does the speaker say?", "Please type out the words in this recording.",
        "Give me a transcript of this.", "Which words do you hear?", "Put this recording into writing.",
        "Can you tell me word for word what was said?", "Dictation: write what you hear."}},
      {"ast",
       {"What is this in German?", "Say what the speaker says, in German.", "Give the German translation of this.",
        "Render the recording in German, please.", "How would a German say what you hear?",
        "Put the spoken English into German words.", "I only read German: what was said?",
        "German version of this clip, please."}}};
  return prompts;
}

SynthReport make_synthetic_corpus(const SynthOptions& o) {
  fs::create_directories(o.out_dir);
  std::mt19937_64 rng(o.seed);
  SynthReport report;
  Writer writer(o, report);
  std::set<std::string> texts;  // everything the tokenizer should know

  // The splits are drawn in this order from one generator: the corpus of a seed never changes.
  Split asr = asr_items(o, rng, texts);
  Split ast = ast_items(o, rng, texts);
  Split sqa = sqa_items(o, rng, texts);
  Split text = text_items(o, rng, texts);

  writer.write("asr", asr.first, false, rng);
  writer.write("asr", asr.second, true, rng);
  writer.write("ast", ast.first, false, rng);
  writer.write("ast", ast.second, true, rng);
  writer.write("sqa", sqa.first, false, rng);
  writer.write("sqa", sqa.second, true, rng);
  writer.write("text", text.first, false, rng);
  writer.write("text", text.second, true, rng);
  Split prose;
  if (o.prose_train > 0 || o.prose_test > 0) {
    prose = prose_items(o, texts);
    writer.write("asr_prose", prose.first, false, rng);
    writer.write("asr_prose", prose.second, true, rng);
  }
  write_real_speech_split(o, report);
  write_unseen_prompt_splits(o, report);
  write_multiturn_splits(o, text.second, writer.tts(), report);
  for (const auto& engine : synthesis_engines()) {
    if (const std::string missing = engine_missing(engine); !missing.empty()) {
      spdlog::warn("synth: {}: asr_{}_test.jsonl not written", missing, engine);
      continue;
    }
    writer.write_engine_split(engine, asr.second, o.seed ^ 0x7e57e5a1ULL);
  }
  {
    std::ofstream out(fs::path(o.out_dir) / "lm_train.jsonl");
    const json docs = lm_documents(asr.first, ast.first, sqa.first, text.first, prose.first);
    for (const auto& d : docs) out << d.dump() << "\n";
    report.examples["lm_train.jsonl"] = static_cast<int>(docs.size());
  }

  // The tokenizer: trained on every text of the corpus plus the prompts.
  const std::string corpus = (fs::path(o.out_dir) / "corpus.txt").string();
  {
    std::ofstream out(corpus);
    for (const auto& t : texts) out << t << "\n";
    for (const char* p : {"Transcribe the audio.", "Translate the audio into German.", "Translate into German:",
                          "Repeat this sentence:", "user", "model", "What is the opposite of", "How many"})
      out << p << "\n";
  }
  train_tokenizer({corpus}, o.tokenizer_vocab, (fs::path(o.out_dir) / "tokenizer").string());
  return report;
}

}  // namespace vtb::data
