// NeMo-style JSONL manifests (docs/design.md §4) parsed into Conversations, with a policy for bad lines.
//
//   speech (asr, ast, sqa): {"audio_filepath", "duration", "offset"?, "context"|"question"?, "answer", "lang"?}
//                           ("text" stands for "answer" when there is no "answer": NeMo's ASR manifests)
//   text:                   {"conversations": [{"from": "User"|"Assistant", "value": ...}, ...]}
//   mixed:                  text's "conversations" with <audio> markers in user values, and
//                           "audios": [{"audio_filepath", "duration", "offset"?}, ...] in marker order
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "data/conversation.h"

namespace vtb::data {

// How a manifest's lines read.
enum class SourceKind { Speech, Text, Mixed };

// What a source teaches (data.source's KIND, vtb eval --kind): decides how its manifest reads and how
// vtb eval scores it.
enum class Task { Asr, Ast, Sqa, Text, Mixed };
inline constexpr std::array<std::pair<std::string_view, Task>, 5> kTasks{
    {{"asr", Task::Asr}, {"ast", Task::Ast}, {"sqa", Task::Sqa}, {"text", Task::Text}, {"mixed", Task::Mixed}}};
SourceKind source_kind(Task task);  // asr, ast, sqa → Speech; text → Text; mixed → Mixed

// data.on_error: fail (an error naming file:line) or skip (log, count and go on) — true = skip.
inline constexpr std::array<std::pair<std::string_view, bool>, 2> kOnErrorSkips{{{"fail", false}, {"skip", true}}};

struct ManifestOptions {
  SourceKind kind = SourceKind::Speech;
  std::string default_prompt;   // speech lines without context/question
  bool skip_bad_lines = false;  // data.on_error = skip (count and go on) | fail (error naming file:line)
  double min_duration = 0.1;    // speech examples outside [min, max] seconds are filtered (counted)
  double max_duration = 40;
  bool check_audio_exists = true;
};

// A line that does not fit the kind: what and where.
struct ManifestError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ManifestStats {
  int64_t lines = 0;
  int64_t kept = 0;
  int64_t filtered = 0;                    // duration filter
  std::map<std::string, int64_t> skipped;  // reason → lines (skip policy)
};

struct Manifest {
  std::vector<Conversation> examples;
  ManifestStats stats;
};

Manifest read_manifest(const std::string& path, const ManifestOptions& options);

// Parses one line (for the fuzzer and tests); `folder` resolves relative audio paths. Returns false when
// the duration filter drops the example. Throws ManifestError with the reason (no file/line prefix).
bool parse_manifest_line(const std::string& line, const std::string& folder, const ManifestOptions& options,
                         Conversation& out);

}  // namespace vtb::data
