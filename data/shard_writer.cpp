#include "data/shard_writer.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "data/audio.h"
#include "data/tar_stream.h"
#include "io/atomic_file.h"

namespace vtb::data {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Entry {
  json line;              // the manifest's object, every key kept
  std::string where;      // manifest:line
  std::string audio;      // resolved path
  std::string key;        // unique, no dots or slashes: a WebDataset key, a Shar cut id
  std::string extension;  // ".wav"
  AudioInfo info;
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ManifestError(path + ": cannot read");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string numbered(const char* pattern, int64_t k) {
  char name[64];
  std::snprintf(name, sizeof name, pattern, static_cast<long long>(k));
  return name;
}

std::vector<Entry> read_entries(const std::string& manifest, ShardLayout layout) {
  std::ifstream in(manifest);
  if (!in) throw ManifestError(manifest + ": cannot open manifest");
  const fs::path folder = fs::path(manifest).parent_path();
  std::vector<Entry> out;
  std::set<std::string> keys;
  std::string text;
  for (int64_t number = 1; std::getline(in, text); ++number) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    Entry e;
    e.where = manifest + ":" + std::to_string(number);
    try {
      e.line = json::parse(text);
      ManifestOptions o;
      o.min_duration = 0;
      o.max_duration = 1e9;
      Conversation check;  // the line must be a speech example vtb reads
      parse_manifest_line(text, folder.string(), o, check);
      e.audio = check.turns.front().segments.back().audio.path;
    } catch (const std::exception& x) {
      throw ManifestError(e.where + ": " + x.what());
    }
    e.info = audio_info(e.audio);
    const double offset = e.line.value("offset", 0.0), duration = e.line["duration"].get<double>();
    const double whole = static_cast<double>(e.info.frames) / e.info.rate;
    if (layout != ShardLayout::NemoTarred && (offset > 0 || duration < whole - 0.1))
      throw ManifestError(e.where + ": the entry is a slice (" + std::to_string(offset) + " s + " +
                          std::to_string(duration) + " s of a " + std::to_string(whole) +
                          " s file); only --format nemo_tarred keeps slices (its entries carry offsets)");
    const fs::path audio(e.audio);
    e.extension = audio.extension().string();
    std::string key =
        e.line.contains("id") && e.line["id"].is_string() ? e.line["id"].get<std::string>() : audio.stem().string();
    for (char& ch : key)
      if (ch == '.' || ch == '/' || ch == ' ') ch = '_';
    std::string unique = key;
    for (int n = 1; !keys.insert(unique).second; ++n) unique = key + "_" + std::to_string(n);
    e.key = unique;
    out.push_back(std::move(e));
  }
  if (out.empty()) throw ManifestError(manifest + ": no examples");
  return out;
}

std::string answer_of(const json& line) {
  return line.contains("answer") ? line["answer"].get<std::string>() : line.value("text", std::string());
}

// NeMo's writer: members under flattened names; the first entry of a source file gets the file, later
// entries of the same file are "<stem>-subN<ext>" with no member of their own.
void write_nemo_shard(const std::vector<Entry>& entries, size_t begin, size_t end, int64_t k, const fs::path& out,
                      std::string& all, ShardWriteReport& report) {
  TarWriter tar((out / numbered("audio_%lld.tar", k)).string());
  std::map<std::string, int> copies;  // member → later entries that share it
  std::map<std::string, std::string> member_of;
  std::string lines;
  for (size_t i = begin; i < end; ++i) {
    const Entry& e = entries[i];
    json line = e.line;
    std::string member;
    if (const auto m = member_of.find(e.audio); m != member_of.end()) {
      const fs::path first(m->second);
      member = first.stem().string() + "-sub" + std::to_string(++copies[m->second]) + first.extension().string();
    } else {
      member = e.key + e.extension;
      member_of[e.audio] = member;
      const std::string bytes = read_bytes(e.audio);
      tar.add(member, bytes);
      report.bytes += static_cast<int64_t>(bytes.size());
    }
    line["audio_filepath"] = member;
    line["shard_id"] = k;
    if (!line.contains("text")) line["text"] = answer_of(line);  // NeMo's text_field
    lines += line.dump() + "\n";
  }
  tar.close();
  io::write_file_atomically((out / "sharded_manifests" / numbered("manifest_%lld.json", k)).string(), lines);
  all += lines;
}

void write_shar_shard(const std::vector<Entry>& entries, size_t begin, size_t end, int64_t k, const fs::path& out,
                      ShardWriteReport& report) {
  TarWriter tar((out / numbered("recording.%06lld.tar", k)).string());
  std::string cuts;
  for (size_t i = begin; i < end; ++i) {
    const Entry& e = entries[i];
    const double duration = static_cast<double>(e.info.frames) / e.info.rate;
    const json recording = {{"id", e.key},
                            {"sources", {{{"type", "shar"}, {"channels", json::array({0})}, {"source", ""}}}},
                            {"sampling_rate", e.info.rate},
                            {"num_samples", e.info.frames},
                            {"duration", duration},
                            {"channel_ids", json::array({0})}};
    json supervision = {{"id", e.key},          {"recording_id", e.key}, {"start", 0.0},
                        {"duration", duration}, {"channel", 0},          {"text", answer_of(e.line)}};
    if (e.line.contains("lang")) supervision["language"] = e.line["lang"];
    json cut = {{"id", e.key},
                {"start", 0.0},
                {"duration", duration},
                {"channel", 0},
                {"supervisions", {supervision}},
                {"recording", recording},
                {"type", "MonoCut"}};
    json custom = json::object();
    for (const char* key : {"context", "question"})
      if (e.line.contains(key)) custom[key] = e.line[key];
    if (!custom.empty()) cut["custom"] = custom;
    const std::string bytes = read_bytes(e.audio);
    tar.add(e.key + e.extension, bytes);  // the data member, then its json: Shar's pair
    tar.add(e.key + ".json", recording.dump());
    report.bytes += static_cast<int64_t>(bytes.size());
    cuts += cut.dump() + "\n";
  }
  tar.close();
  write_gzip_file((out / numbered("cuts.%06lld.jsonl.gz", k)).string(), cuts);
}

void write_webdataset_shard(const std::vector<Entry>& entries, size_t begin, size_t end, int64_t k, const fs::path& out,
                            ShardWriteReport& report) {
  TarWriter tar((out / numbered("shard-%06lld.tar", k)).string());
  for (size_t i = begin; i < end; ++i) {
    const Entry& e = entries[i];
    json meta = e.line;
    meta.erase("audio_filepath");
    meta.erase("offset");
    const std::string bytes = read_bytes(e.audio);
    tar.add(e.key + e.extension, bytes);
    tar.add(e.key + ".json", meta.dump());
    report.bytes += static_cast<int64_t>(bytes.size());
  }
  tar.close();
}

}  // namespace

ShardWriteReport write_shards(ShardLayout layout, const std::string& manifest, const std::string& out_dir,
                              int64_t shard_size) {
  if (shard_size <= 0) throw ManifestError("--shard-size must be positive");
  const std::vector<Entry> entries = read_entries(manifest, layout);
  const fs::path out(out_dir);
  fs::create_directories(layout == ShardLayout::NemoTarred ? out / "sharded_manifests" : out);
  ShardWriteReport report;
  std::string all;  // NeMo's tarred_audio_manifest.json
  for (size_t begin = 0; begin < entries.size(); begin += static_cast<size_t>(shard_size), ++report.shards) {
    const size_t end = std::min(entries.size(), begin + static_cast<size_t>(shard_size));
    switch (layout) {
      case ShardLayout::NemoTarred:
        write_nemo_shard(entries, begin, end, report.shards, out, all, report);
        break;
      case ShardLayout::LhotseShar:
        write_shar_shard(entries, begin, end, report.shards, out, report);
        break;
      case ShardLayout::WebDataset:
        write_webdataset_shard(entries, begin, end, report.shards, out, report);
        break;
    }
  }
  if (layout == ShardLayout::NemoTarred) io::write_file_atomically((out / "tarred_audio_manifest.json").string(), all);
  report.examples = static_cast<int64_t>(entries.size());
  return report;
}

}  // namespace vtb::data
