#include "data/manifest.h"

#include <spdlog/spdlog.h>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace vtb::data {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr double kAbsurdDuration = 24 * 3600;  // no single example is a day long

const json& field(const json& j, const char* name) {
  if (!j.contains(name)) throw ManifestError(std::string("missing field \"") + name + "\"");
  return j.at(name);
}

std::string string_field(const json& j, const char* name) {
  const json& v = field(j, name);
  if (!v.is_string()) throw ManifestError(std::string("field \"") + name + "\" must be a string, got " + v.type_name());
  return v.get<std::string>();
}

double number_field(const json& j, const char* name, double fallback, bool required) {
  if (!j.contains(name)) {
    if (required) throw ManifestError(std::string("missing field \"") + name + "\"");
    return fallback;
  }
  const json& v = j.at(name);
  if (!v.is_number()) throw ManifestError(std::string("field \"") + name + "\" must be a number, got " + v.type_name());
  return v.get<double>();
}

AudioRef audio_ref(const json& j, const std::string& folder, const ManifestOptions& o) {
  AudioRef a;
  a.path = string_field(j, "audio_filepath");
  if (a.path.empty()) throw ManifestError("field \"audio_filepath\" is empty");
  if (fs::path(a.path).is_relative()) a.path = (fs::path(folder) / a.path).string();
  a.duration = number_field(j, "duration", 0, true);
  a.offset = number_field(j, "offset", 0, false);
  if (!std::isfinite(a.duration) || a.duration <= 0 || a.duration > kAbsurdDuration)
    throw ManifestError("absurd duration " + std::to_string(a.duration) + " s");
  if (!std::isfinite(a.offset) || a.offset < 0) throw ManifestError("absurd offset " + std::to_string(a.offset) + " s");
  if (o.check_audio_exists && !fs::exists(a.path)) throw ManifestError("audio file not found: " + a.path);
  return a;
}

Role role_of(const json& turn) {
  const std::string from = string_field(turn, "from");
  if (from == "User" || from == "user" || from == "human") return Role::User;
  if (from == "Assistant" || from == "assistant" || from == "gpt") return Role::Assistant;
  throw ManifestError("\"from\" must be User or Assistant, got \"" + from + "\"");
}

// Splits a user value on <audio> markers into text and audio segments.
void add_value(Turn& turn, const std::string& value, const std::vector<AudioRef>& audios, size_t& next_audio) {
  const std::string marker = "<audio>";
  size_t start = 0;
  for (size_t at = value.find(marker); at != std::string::npos; at = value.find(marker, start)) {
    if (at > start) turn.segments.push_back(Segment{false, value.substr(start, at - start), {}});
    if (next_audio >= audios.size()) throw ManifestError("more <audio> markers than entries in \"audios\"");
    turn.segments.push_back(Segment{true, {}, audios[next_audio++]});
    start = at + marker.size();
  }
  if (start < value.size() || turn.segments.empty()) turn.segments.push_back(Segment{false, value.substr(start), {}});
}

}  // namespace

SourceKind source_kind(Task task) {
  switch (task) {
    case Task::Text:
      return SourceKind::Text;
    case Task::Mixed:
      return SourceKind::Mixed;
    default:
      return SourceKind::Speech;
  }
}

bool parse_manifest_line(const std::string& line, const std::string& folder, const ManifestOptions& o,
                         Conversation& out) {
  json j;
  try {
    j = json::parse(line);              // rejects invalid UTF-8 too
  } catch (const json::exception& e) {  // parse errors, invalid UTF-8, number overflow (found by the fuzzer)
    throw ManifestError(std::string("invalid JSON: ") + e.what());
  }
  if (!j.is_object()) throw ManifestError("a line must be a JSON object");
  out = Conversation{};

  if (o.kind == SourceKind::Speech) {
    const AudioRef audio = audio_ref(j, folder, o);
    if (audio.duration < o.min_duration || audio.duration > o.max_duration) return false;
    std::string prompt = o.default_prompt;
    if (j.contains("context"))
      prompt = string_field(j, "context");
    else if (j.contains("question"))
      prompt = string_field(j, "question");
    Turn user{Role::User, {}};
    if (!prompt.empty()) user.segments.push_back(Segment{false, prompt, {}});
    user.segments.push_back(Segment{true, {}, audio});
    out.turns.push_back(user);
    // NeMo's ASR manifests (and so its tarred corpora) carry the transcript as "text".
    const char* answer = !j.contains("answer") && j.contains("text") ? "text" : "answer";
    out.turns.push_back(Turn{Role::Assistant, {Segment{false, string_field(j, answer), {}}}});
    return true;
  }

  std::vector<AudioRef> audios;
  if (o.kind == SourceKind::Mixed) {
    const json& list = field(j, "audios");
    if (!list.is_array()) throw ManifestError("field \"audios\" must be an array");
    for (const auto& a : list) {
      if (!a.is_object()) throw ManifestError("entries of \"audios\" must be objects");
      audios.push_back(audio_ref(a, folder, o));
    }
  }
  const json& turns = field(j, "conversations");
  if (!turns.is_array() || turns.empty()) throw ManifestError("field \"conversations\" must be a non-empty array");
  size_t next_audio = 0;
  bool has_answer = false;
  for (const auto& t : turns) {
    if (!t.is_object()) throw ManifestError("entries of \"conversations\" must be objects");
    Turn turn{role_of(t), {}};
    const std::string value = string_field(t, "value");
    if (turn.role == Role::User && o.kind == SourceKind::Mixed) {
      add_value(turn, value, audios, next_audio);
    } else {
      turn.segments.push_back(Segment{false, value, {}});
    }
    has_answer |= turn.role == Role::Assistant;
    if (!out.turns.empty() && out.turns.back().role == turn.role)
      throw ManifestError("roles must alternate between User and Assistant");
    out.turns.push_back(std::move(turn));
  }
  if (out.turns.front().role != Role::User) throw ManifestError("a conversation must start with a User turn");
  if (!has_answer) throw ManifestError("a conversation needs at least one Assistant turn");
  if (next_audio != audios.size())
    throw ManifestError(std::to_string(audios.size()) + " entries in \"audios\" but " + std::to_string(next_audio) +
                        " <audio> markers");
  for (const auto& a : audios)
    if (a.duration < o.min_duration || a.duration > o.max_duration) return false;
  return true;
}

Manifest read_manifest(const std::string& path, const ManifestOptions& o) {
  std::ifstream in(path);
  if (!in) throw ManifestError(path + ": cannot open manifest");
  const std::string folder = fs::path(path).parent_path().string();
  Manifest m;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank lines are not examples
    ++m.stats.lines;
    Conversation c;
    try {
      if (!parse_manifest_line(line, folder, o, c)) {
        ++m.stats.filtered;
        continue;
      }
    } catch (const ManifestError& e) {
      const std::string where = path + ":" + std::to_string(number);
      if (!o.skip_bad_lines)
        throw ManifestError(where + ": " + e.what() + " (set data.on_error = skip to skip and count such lines)");
      std::string reason = e.what();
      reason = reason.substr(0, reason.find(':'));  // group by the kind of problem
      ++m.stats.skipped[reason];
      spdlog::warn("{}: skipped: {}", where, e.what());
      continue;
    }
    c.origin = path + ":" + std::to_string(number);
    m.examples.push_back(std::move(c));
    ++m.stats.kept;
  }
  std::string skipped;
  for (const auto& [reason, n] : m.stats.skipped) skipped += fmt::format(", {} skipped ({})", n, reason);
  spdlog::info("{}: {} lines, {} kept, {} outside [{:g}, {:g}] s{}", path, m.stats.lines, m.stats.kept,
               m.stats.filtered, o.min_duration, o.max_duration, skipped);
  return m;
}

}  // namespace vtb::data
