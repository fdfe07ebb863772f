#include "data/mixed_modal.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <tuple>

#include "data/audio.h"
#include "data/manifest.h"
#include "data/speech_synthesizer.h"

namespace vtb::data {

std::vector<std::string> split_sentences(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const bool end =
        (text[i] == '.' || text[i] == '!' || text[i] == '?') && (i + 1 == text.size() || text[i + 1] == ' ');
    if (!end) continue;
    out.push_back(text.substr(start, i + 1 - start));
    start = i + 1;
  }
  if (start < text.size()) out.push_back(text.substr(start));
  return out;
}

namespace {

// Where one variant's speech goes: `turn`'s text is before + <audio> + after, the audio speaking `spoken`.
struct Placement {
  size_t turn = 0;
  std::string before, spoken, after;
};

// The paper's recipe: a random contiguous span of whole sentences of a random user turn.
template <typename Rng>
Placement whole_sentences(const Conversation& c, const std::vector<size_t>& user_turns, Rng& rng,
                          std::set<std::tuple<size_t, size_t, size_t>>& chosen, bool& repeated) {
  Placement p;
  p.turn = user_turns[rng() % user_turns.size()];
  const std::vector<std::string> sentences = split_sentences(c.turns[p.turn].segments[0].text);
  const size_t first = rng() % sentences.size();
  const size_t last = first + rng() % (sentences.size() - first);
  repeated = !chosen.insert({p.turn, first, last}).second;
  for (size_t s = 0; s < sentences.size(); ++s) (s < first ? p.before : s > last ? p.after : p.spoken) += sentences[s];
  const size_t lead = p.spoken.find_first_not_of(' ');
  p.before += p.spoken.substr(0, lead);  // keep the spacing around the marker
  p.spoken = p.spoken.substr(lead);
  return p;
}

// A span of words strictly inside one sentence (≥ 3 words) of a user turn other than the first; nullopt
// where there is none.
template <typename Rng>
std::optional<Placement> words_in_later_turn(const Conversation& c, const std::vector<size_t>& user_turns, Rng& rng,
                                             std::set<std::tuple<size_t, size_t, size_t>>& chosen, bool& repeated) {
  if (user_turns.size() < 2) return std::nullopt;
  Placement p;
  p.turn = user_turns[1 + rng() % (user_turns.size() - 1)];
  const std::vector<std::string> sentences = split_sentences(c.turns[p.turn].segments[0].text);
  auto words_of = [](const std::string& sentence) {
    std::vector<std::string> words;
    std::istringstream in(sentence);
    for (std::string w; in >> w;) words.push_back(w);
    return words;
  };
  std::vector<size_t> eligible;
  for (size_t s = 0; s < sentences.size(); ++s)
    if (words_of(sentences[s]).size() >= 3) eligible.push_back(s);
  if (eligible.empty()) return std::nullopt;
  const size_t s = eligible[rng() % eligible.size()];
  const std::vector<std::string> words = words_of(sentences[s]);
  const size_t first = 1 + rng() % (words.size() - 2);
  const size_t last = first + rng() % (words.size() - 1 - first);
  repeated = !chosen.insert({p.turn, s * 1000 + first, last}).second;
  for (size_t k = 0; k < s; ++k) p.before += sentences[k];
  p.before += sentences[s].substr(0, sentences[s].find_first_not_of(' '));
  auto join = [&](size_t from, size_t to) {  // words [from, to)
    std::string out;
    for (size_t w = from; w < to; ++w) out += (w > from ? " " : "") + words[w];
    return out;
  };
  p.before += join(0, first) + " ";
  p.spoken = join(first, last + 1);
  p.after = " " + join(last + 1, words.size());
  for (size_t k = s + 1; k < sentences.size(); ++k) p.after += sentences[k];
  return p;
}

}  // namespace

MixgenReport make_mixed_modal(const MixgenOptions& o) {
  SpeechSynthesizer tts;
  return make_mixed_modal(o, tts);
}

MixgenReport make_mixed_modal(const MixgenOptions& o, SpeechSynthesizer& tts) {
  namespace fs = std::filesystem;
  using nlohmann::json;
  ManifestOptions mo;
  mo.kind = SourceKind::Text;
  mo.skip_bad_lines = o.skip_bad_lines;
  const Manifest input = read_manifest(o.input, mo);
  const fs::path audio_dir = fs::path(o.out_dir) / "audio" / fs::path(o.output).stem();
  fs::create_directories(audio_dir);
  std::ofstream out(fs::path(o.out_dir) / o.output);
  std::mt19937_64 rng(o.seed);
  MixgenReport report;
  const std::vector<std::string> voices = o.voices.empty() ? training_voice_names(o.engines) : o.voices;

  for (const Conversation& c : input.examples) {
    ++report.conversations;
    std::vector<size_t> user_turns;
    for (size_t t = 0; t < c.turns.size(); ++t)
      if (c.turns[t].role == Role::User) user_turns.push_back(t);
    std::set<std::tuple<size_t, size_t, size_t>> chosen;  // (turn, first, last) already made
    for (int v = 0; v < o.variants; ++v) {
      bool repeated = false;
      std::optional<Placement> placed;
      if (o.span == MixgenOptions::Span::Sentences) {
        placed = whole_sentences(c, user_turns, rng, chosen, repeated);
      } else {
        placed = words_in_later_turn(c, user_turns, rng, chosen, repeated);
      }
      if (!placed || repeated) continue;  // fewer than K distinct variants
      const Placement& p = *placed;
      const Voice voice = vary(voices[rng() % voices.size()], rng);
      const std::string file = (audio_dir / (std::to_string(report.examples) + ".wav")).string();
      const std::vector<float> samples = tts.speak(p.spoken, voice);
      write_wav(file, samples);
      const double duration = static_cast<double>(samples.size()) / kSampleRate;
      report.audio_seconds += duration;

      json turns = json::array();
      for (size_t t = 0; t < c.turns.size(); ++t) {
        const std::string& text = c.turns[t].segments[0].text;
        turns.push_back({{"from", c.turns[t].role == Role::User ? "User" : "Assistant"},
                         {"value", t == p.turn ? p.before + "<audio>" + p.after : text}});
      }
      json audio = {{"audio_filepath", fs::relative(file, o.out_dir).string()},
                    {"duration", duration},
                    {"spoken", p.spoken},
                    {"voice", voice.name}};
      out << json{{"conversations", turns}, {"audios", json::array({audio})}, {"source", c.origin}}.dump() << "\n";
      ++report.examples;
    }
  }
  return report;
}

}  // namespace vtb::data
