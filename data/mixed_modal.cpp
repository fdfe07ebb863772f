#include "data/mixed_modal.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

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

MixgenReport make_mixed_modal(const MixgenOptions& o) {
  namespace fs = std::filesystem;
  using nlohmann::json;
  ManifestOptions mo;
  mo.kind = SourceKind::Text;
  mo.skip_bad_lines = o.skip_bad_lines;
  const Manifest input = read_manifest(o.input, mo);
  const fs::path audio_dir = fs::path(o.out_dir) / "audio" / "mixed";
  fs::create_directories(audio_dir);
  std::ofstream out(fs::path(o.out_dir) / "mixed.jsonl");
  SpeechSynthesizer tts;
  std::mt19937_64 rng(o.seed);
  MixgenReport report;

  for (const Conversation& c : input.examples) {
    ++report.conversations;
    std::vector<size_t> user_turns;
    for (size_t t = 0; t < c.turns.size(); ++t)
      if (c.turns[t].role == Role::User) user_turns.push_back(t);
    std::set<std::tuple<size_t, size_t, size_t>> chosen;  // (turn, first, last) already made
    for (int v = 0; v < o.variants; ++v) {
      const size_t turn = user_turns[rng() % user_turns.size()];
      const std::vector<std::string> sentences = split_sentences(c.turns[turn].segments[0].text);
      const size_t first = rng() % sentences.size();
      const size_t last = first + rng() % (sentences.size() - first);
      if (!chosen.insert({turn, first, last}).second) continue;  // fewer than K distinct variants

      std::string spoken, before, after;
      for (size_t s = 0; s < sentences.size(); ++s) (s < first ? before : s > last ? after : spoken) += sentences[s];
      const size_t lead = spoken.find_first_not_of(' ');
      before += spoken.substr(0, lead);  // keep the spacing around the marker
      spoken = spoken.substr(lead);
      const auto& voices = training_voice_names();
      const Voice voice = vary(voices[rng() % voices.size()], rng);
      const std::string file = (audio_dir / (std::to_string(report.examples) + ".wav")).string();
      const std::vector<float> samples = tts.speak(spoken, voice);
      write_wav(file, samples);
      const double duration = static_cast<double>(samples.size()) / kSampleRate;
      report.audio_seconds += duration;

      json turns = json::array();
      for (size_t t = 0; t < c.turns.size(); ++t) {
        const std::string& text = c.turns[t].segments[0].text;
        turns.push_back({{"from", c.turns[t].role == Role::User ? "User" : "Assistant"},
                         {"value", t == turn ? before + "<audio>" + after : text}});
      }
      json audio = {{"audio_filepath", fs::relative(file, o.out_dir).string()},
                    {"duration", duration},
                    {"spoken", spoken},
                    {"voice", voice.name}};
      out << json{{"conversations", turns}, {"audios", json::array({audio})}, {"source", c.origin}}.dump() << "\n";
      ++report.examples;
    }
  }
  return report;
}

}  // namespace vtb::data
