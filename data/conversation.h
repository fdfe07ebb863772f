// The one shape every example takes (docs/design.md §3): turns of user/assistant, each a list of text and audio
// segments, so audio can sit anywhere, several times, in any turn.
#pragma once

#include <string>
#include <vector>

namespace vtb::data {

struct AudioRef {
  std::string path;  // absolute, or resolved against the manifest's folder at parse time; a shard's tar
  double offset = 0;
  double duration = 0;  // seconds
  std::string member;   // the member of the tar `path` that holds the audio; empty for a loose file
};

struct Segment {
  bool is_audio = false;
  std::string text;  // when !is_audio
  AudioRef audio;    // when is_audio
};

enum class Role { User, Assistant };

struct Turn {
  Role role = Role::User;
  std::vector<Segment> segments;
};

struct Conversation {
  std::vector<Turn> turns;
  std::string origin;  // "manifest.jsonl:12", for messages

  double audio_seconds() const {
    double s = 0;
    for (const auto& t : turns)
      for (const auto& seg : t.segments)
        if (seg.is_audio) s += seg.audio.duration;
    return s;
  }
  int audio_segments() const {
    int n = 0;
    for (const auto& t : turns)
      for (const auto& seg : t.segments) n += seg.is_audio;
    return n;
  }
};

}  // namespace vtb::data
