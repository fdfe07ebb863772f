#include "data/sharded_source.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "data/audio.h"
#include "data/tar_stream.h"

namespace vtb::data {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// data.on_error for the problems a sharded source can have: fail names the place, skip counts by reason.
class Problems {
 public:
  Problems(const ManifestOptions& o, ManifestStats& stats) : o_(o), stats_(stats) {}
  void report(const std::string& where, const std::string& reason, const std::string& detail) const {
    if (!o_.skip_bad_lines)
      throw ManifestError(where + ": " + detail + " (set data.on_error = skip to skip and count such problems)");
    ++stats_.skipped[reason];
    spdlog::warn("{}: skipped: {}", where, detail);
  }

 private:
  const ManifestOptions& o_;
  ManifestStats& stats_;
};

// The shard files of a location: the directory's files whose names match `name`, ordered by the number in the
// pattern's first group, or the brace-expanded paths as given.
std::vector<std::string> shard_files(const std::string& location, const std::regex& name) {
  std::vector<std::pair<long, std::string>> found;
  if (fs::is_directory(location)) {
    for (const auto& e : fs::directory_iterator(location)) {
      const std::string base = e.path().filename().string();
      std::smatch m;
      if (std::regex_search(base, m, name))
        found.emplace_back(m.size() > 1 && m[1].matched ? std::stol(m[1]) : 0, e.path().string());
    }
    std::sort(found.begin(), found.end());
    std::vector<std::string> out;
    for (auto& [k, path] : found) out.push_back(std::move(path));
    if (out.empty()) throw ManifestError(location + ": no shard files in this folder");
    return out;
  }
  try {
    return expand_braces(location);
  } catch (const std::invalid_argument& e) {
    throw ManifestError(e.what());
  }
}

// A JSONL manifest line made from a layout's metadata, so that the same checks and the same Conversation
// shape apply to every source.
bool speech_example(json line, const std::string& tar, const std::string& member, const ManifestOptions& o,
                    Conversation& out) {
  line["audio_filepath"] = member.empty() ? std::string("member") : member;
  ManifestOptions unchecked = o;
  unchecked.check_audio_exists = false;  // the audio is a tar member, not a file
  if (!parse_manifest_line(line.dump(), "", unchecked, out)) return false;
  for (auto& turn : out.turns)
    for (auto& seg : turn.segments)
      if (seg.is_audio) {
        seg.audio.path = tar;
        seg.audio.member = member;
      }
  return true;
}

struct Builder {
  ShardedManifest m;
  void add_shard(const std::string& path, int64_t expected_members = -1) {
    m.index.paths.push_back(path);
    m.index.sizes.push_back(0);
    m.index.expected_members.push_back(expected_members);
  }
  void add(Conversation c, int64_t ordinal, std::string name) {
    m.index.members.push_back({static_cast<int32_t>(m.index.paths.size() - 1), ordinal, std::move(name)});
    ++m.index.sizes.back();
    m.examples.push_back(std::move(c));
    ++m.stats.kept;
  }
};

// ---- NeMo tarred -----------------------------------------------------------------------------------------

int64_t nemo_shard_id(const std::string& path) {
  static const std::regex id(R"(audio[^/]*_(\d+)[^/]*\.tar$)");
  std::smatch m;
  if (!std::regex_search(path, m, id))
    throw ManifestError(path + ": not a NeMo tarred shard name (NeMo's readers look for audio[...]_<k>[...].tar)");
  return std::stol(m[1]);
}

// Entries by shard id, each with where it came from ("file:line").
std::map<int64_t, std::vector<std::pair<std::string, std::string>>> nemo_manifests(const std::string& folder,
                                                                                   const std::set<int64_t>& ids) {
  std::map<int64_t, std::vector<std::pair<std::string, std::string>>> out;
  const fs::path sharded = fs::path(folder) / "sharded_manifests";
  if (fs::is_directory(sharded)) {
    for (int64_t id : ids) {
      const std::string path = (sharded / ("manifest_" + std::to_string(id) + ".json")).string();
      if (!fs::exists(path)) continue;  // reported with its shard
      const auto lines = read_text_lines(path);
      for (size_t i = 0; i < lines.size(); ++i)
        if (lines[i].find_first_not_of(" \t\r") != std::string::npos)
          out[id].emplace_back(path + ":" + std::to_string(i + 1), lines[i]);
    }
    return out;
  }
  const std::string path = (fs::path(folder) / "tarred_audio_manifest.json").string();
  if (!fs::exists(path))
    throw ManifestError(folder + ": neither sharded_manifests/manifest_<k>.json nor tarred_audio_manifest.json");
  const auto lines = read_text_lines(path);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find_first_not_of(" \t\r") == std::string::npos) continue;
    const json j = json::parse(lines[i], nullptr, /*allow_exceptions=*/false);
    const int64_t id = j.is_object() && j.contains("shard_id") && j["shard_id"].is_number_integer()
                           ? j["shard_id"].get<int64_t>()
                           : -1;
    out[id].emplace_back(path + ":" + std::to_string(i + 1), lines[i]);  // -1: reported as a bad line
  }
  return out;
}

// "<stem>-sub3.wav" → "<stem>.wav": later entries of one source file share its member (NeMo's writer).
std::string nemo_member(const std::string& audio_filepath) {
  static const std::regex sub(R"(^(.+)-sub\d+(\.\w+)?$)");
  std::smatch m;
  return std::regex_match(audio_filepath, m, sub) ? m[1].str() + m[2].str() : audio_filepath;
}

ShardedManifest read_nemo_tarred(const std::string& location, const ManifestOptions& o) {
  static const std::regex tar_name(R"(^audio[^/]*_(\d+)[^/]*\.tar$)");
  const std::vector<std::string> tars = shard_files(location, tar_name);
  const std::string folder = fs::is_directory(location) ? location : fs::path(tars.front()).parent_path().string();
  std::set<int64_t> ids;
  for (const auto& t : tars) ids.insert(nemo_shard_id(t));
  auto manifests = nemo_manifests(folder, ids);
  Builder b;
  Problems problems(o, b.m.stats);
  for (const auto& [where, line] : manifests[-1]) {
    ++b.m.stats.lines;
    problems.report(where, "no shard_id", "the entry has no integer \"shard_id\"");
  }
  for (const std::string& tar : tars) {
    const int64_t id = nemo_shard_id(tar);
    const auto& entries = manifests[id];
    b.m.stats.lines += static_cast<int64_t>(entries.size());
    if (!fs::exists(tar)) {
      problems.report(tar, "shard missing",
                      "the shard is listed but absent (" + std::to_string(entries.size()) + " entries)");
      continue;
    }
    std::map<std::string, int64_t> ordinal;  // member → position in the tar
    try {
      for (TarReader r(tar); r.next();) ordinal.emplace(r.name(), r.ordinal());
    } catch (const ShardError& e) {  // skip: the members before the damage are still examples
      problems.report(tar, e.reason, e.what());
    }
    struct Found {
      int64_t ordinal;
      std::string name, audio_filepath;
      Conversation c;
    };
    std::vector<Found> found;
    std::set<std::string> used;
    for (const auto& [where, line] : entries) {
      Conversation c;
      try {
        const json j = json::parse(line);
        if (!j.is_object() || !j.contains("audio_filepath") || !j["audio_filepath"].is_string())
          throw ManifestError("missing field \"audio_filepath\"");
        const std::string path = j["audio_filepath"].get<std::string>();
        const std::string member = nemo_member(path);
        const auto at = ordinal.find(member);
        if (at == ordinal.end()) {
          problems.report(where, "entry without member", "no member '" + member + "' in " + tar);
          continue;
        }
        used.insert(member);
        if (!speech_example(j, tar, member, o, c)) {
          ++b.m.stats.filtered;
          continue;
        }
        c.origin = where;
        found.push_back({at->second, member, path, std::move(c)});
      } catch (const std::exception& e) {  // json's parse errors and ManifestError alike
        std::string reason = e.what();
        problems.report(where, reason.substr(0, reason.find(':')), e.what());
      }
    }
    for (const auto& [name, k] : ordinal)
      if (!used.count(name))
        problems.report(tar + ": member '" + name + "'", "member without entry", "no manifest entry names it");
    // Tar order, and a member's entries by audio_filepath: the order NeMo's own reader yields them in.
    std::sort(found.begin(), found.end(), [](const Found& x, const Found& y) {
      return x.ordinal != y.ordinal ? x.ordinal < y.ordinal : x.audio_filepath < y.audio_filepath;
    });
    b.add_shard(tar);
    for (auto& f : found) b.add(std::move(f.c), f.ordinal, f.name);
  }
  return std::move(b.m);
}

// ---- Lhotse Shar -----------------------------------------------------------------------------------------

ShardedManifest read_lhotse_shar(const std::string& location, const ManifestOptions& o) {
  static const std::regex cuts_name(R"(^cuts\.(\d+)\.jsonl(\.gz)?$)");
  Builder b;
  Problems problems(o, b.m.stats);
  for (const std::string& cuts : shard_files(location, cuts_name)) {
    static const std::regex suffix(R"(cuts\.(\d+)\.jsonl(\.gz)?$)");
    std::smatch m;
    if (!std::regex_search(cuts, m, suffix)) throw ManifestError(cuts + ": not a Shar cuts file (cuts.<k>.jsonl[.gz])");
    const std::string tar = cuts.substr(0, static_cast<size_t>(m.position(0))) + "recording." + m[1].str() + ".tar";
    if (!fs::exists(cuts) || !fs::exists(tar)) {
      problems.report(fs::exists(cuts) ? tar : cuts, "shard missing", "the shard is listed but absent");
      continue;
    }
    const auto lines = read_text_lines(cuts);
    b.add_shard(tar, 2 * std::count_if(lines.begin(), lines.end(), [](const std::string& l) {
                       return l.find_first_not_of(" \t\r") != std::string::npos;
                     }));
    int64_t position = 0;  // the cut's place in the shard: its pair of members
    for (size_t i = 0; i < lines.size(); ++i) {
      if (lines[i].find_first_not_of(" \t\r") == std::string::npos) continue;
      const std::string where = cuts + ":" + std::to_string(i + 1);
      const int64_t pair = position++;
      ++b.m.stats.lines;
      try {
        const json cut = json::parse(lines[i]);
        if (!cut.is_object() || !cut.contains("id") || !cut["id"].is_string())
          throw ManifestError("a cut needs a string \"id\"");
        if (!cut.contains("recording")) {
          problems.report(where, "cut without recording",
                          "cut '" + cut["id"].get<std::string>() + "' has no recording");
          continue;
        }
        json line = {{"duration", cut.value("duration", json())}, {"offset", cut.value("start", 0.0)}};
        std::string answer;
        for (const auto& s : cut.value("supervisions", json::array()))
          if (s.is_object() && s.contains("text") && s["text"].is_string() && !s["text"].get<std::string>().empty())
            answer += (answer.empty() ? "" : " ") + s["text"].get<std::string>();
        line["answer"] = answer;
        if (cut.contains("custom") && cut["custom"].is_object())
          for (const char* key : {"context", "question"})
            if (cut["custom"].contains(key)) line[key] = cut["custom"][key];
        Conversation c;
        if (!speech_example(line, tar, cut["id"].get<std::string>(), o, c)) {
          ++b.m.stats.filtered;
          continue;
        }
        c.origin = where + " cut " + cut["id"].get<std::string>();
        b.add(std::move(c), 2 * pair, cut["id"].get<std::string>());
      } catch (const std::exception& e) {
        std::string reason = e.what();
        problems.report(where, reason.substr(0, reason.find(':')), e.what());
      }
    }
  }
  return std::move(b.m);
}

// ---- WebDataset ------------------------------------------------------------------------------------------

bool is_audio_extension(const std::string& ext) {
  static const std::set<std::string> audio{"flac", "wav", "mp3", "ogg", "opus", "sph", "aiff", "aif", "au"};
  return audio.count(ext) > 0;
}

// Members grouped by the key before the first dot, as webdataset groups them: "a/b.flac", "a/b.json" → "a/b".
struct WebDatasetGroup {
  std::string key, audio, text;
  int64_t audio_ordinal = -1;
  json meta = json::object();
};

void scan_webdataset(const std::string& tar, std::vector<WebDatasetGroup>& groups) {
  for (TarReader r(tar); r.next();) {
    const fs::path name(r.name());
    const std::string base = name.filename().string();
    const size_t dot = base.find('.');
    const std::string key = (name.parent_path() / base.substr(0, dot)).string();
    std::string ext = dot == std::string::npos ? "" : base.substr(dot + 1);
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
    if (key != groups.back().key && !groups.back().key.empty()) groups.emplace_back();
    WebDatasetGroup& g = groups.back();
    g.key = key;
    if (is_audio_extension(ext)) {
      g.audio = r.name();
      g.audio_ordinal = r.ordinal();
    } else if (ext == "json") {
      const json meta = json::parse(r.read(1 << 20), nullptr, /*allow_exceptions=*/false);
      if (meta.is_object()) g.meta = meta;
    } else if (ext == "txt") {
      g.text = r.read(1 << 20);
      while (!g.text.empty() && (g.text.back() == '\n' || g.text.back() == '\r')) g.text.pop_back();
    }
  }
}

ShardedManifest read_webdataset(const std::string& location, const ManifestOptions& o) {
  static const std::regex tar_name(R"(\.tar$)");
  Builder b;
  Problems problems(o, b.m.stats);
  for (const std::string& tar : shard_files(location, tar_name)) {
    if (!fs::exists(tar)) {
      problems.report(tar, "shard missing", "the shard is listed but absent");
      continue;
    }
    b.add_shard(tar);
    std::vector<WebDatasetGroup> groups(1);
    try {
      scan_webdataset(tar, groups);
    } catch (const ShardError& e) {  // skip: the members before the damage are still examples
      problems.report(tar, e.reason, e.what());
    }
    if (groups.back().key.empty()) groups.pop_back();
    // No "duration" in the json: read those members once, now, to measure it (and say so: it costs a pass).
    std::map<int64_t, WebDatasetGroup*> unmeasured;
    for (WebDatasetGroup& g : groups)
      if (!g.meta.contains("duration") && g.audio_ordinal >= 0) unmeasured.emplace(g.audio_ordinal, &g);
    if (!unmeasured.empty()) {
      spdlog::warn("{}: {} examples have no \"duration\" in their json; reading their audio once to measure it", tar,
                   unmeasured.size());
      try {
        for (TarReader r(tar); r.next();)
          if (const auto at = unmeasured.find(r.ordinal()); at != unmeasured.end()) {
            try {
              at->second->meta["duration"] = audio_duration_of(r.read(), tar + ": member '" + r.name() + "'");
            } catch (const std::runtime_error& e) {     // AudioError, or ShardError for a member cut short
              at->second->meta["duration"] = e.what();  // reported below as a bad field, by key
            }
          }
      } catch (const ShardError&) {  // the scan reported the damage
      }
    }
    for (WebDatasetGroup& g : groups) {
      const std::string where = tar + ": key '" + g.key + "'";
      ++b.m.stats.lines;
      try {
        if (g.audio_ordinal < 0) throw ManifestError("no audio member (" + g.key + ".flac, .wav, ...)");
        json& line = g.meta;
        if (!line.contains("answer")) {
          for (const char* key : {"text", "transcript", "sentence"})
            if (line.contains(key)) {
              line["answer"] = line[key];
              break;
            }
          if (!line.contains("answer") && !g.text.empty()) line["answer"] = g.text;
        }
        Conversation c;
        if (!speech_example(line, tar, g.audio, o, c)) {
          ++b.m.stats.filtered;
          continue;
        }
        c.origin = where;
        b.add(std::move(c), g.audio_ordinal, g.audio);
      } catch (const std::exception& e) {
        std::string reason = e.what();
        problems.report(where, reason.substr(0, reason.find(':')), e.what());
      }
    }
  }
  return std::move(b.m);
}

}  // namespace

std::optional<std::pair<ShardLayout, std::string>> sharded_location(const std::string& manifest) {
  for (const auto& [name, layout] : kShardLayouts)
    if (manifest.size() > name.size() && manifest.compare(0, name.size(), name) == 0 && manifest[name.size()] == ':')
      return std::make_pair(layout, manifest.substr(name.size() + 1));
  return std::nullopt;
}

ShardedManifest read_sharded_manifest(ShardLayout layout, const std::string& location, const ManifestOptions& o) {
  if (o.kind != SourceKind::Speech)
    throw ManifestError(location +
                        ": sharded sources hold speech examples (asr, ast, sqa); text and mixed sources "
                        "are JSONL manifests");
  ShardedManifest m;
  try {
    m = layout == ShardLayout::NemoTarred   ? read_nemo_tarred(location, o)
        : layout == ShardLayout::LhotseShar ? read_lhotse_shar(location, o)
                                            : read_webdataset(location, o);
  } catch (const ShardError& e) {
    throw ManifestError(e.what());
  }
  m.index.layout = layout;
  std::string skipped;
  for (const auto& [reason, n] : m.stats.skipped) skipped += fmt::format(", {} skipped ({})", n, reason);
  const auto [smallest, largest] = std::minmax_element(m.index.sizes.begin(), m.index.sizes.end());
  spdlog::info("{}: {} shards ({}..{} examples each), {} entries, {} kept, {} outside [{:g}, {:g}] s{}", location,
               m.index.paths.size(), m.index.sizes.empty() ? 0 : *smallest, m.index.sizes.empty() ? 0 : *largest,
               m.stats.lines, m.stats.kept, m.stats.filtered, o.min_duration, o.max_duration, skipped);
  return m;
}

}  // namespace vtb::data
