#include "data/prompt.h"

namespace vtb::data {
namespace {

std::string trim_front(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\n");
  return b == std::string::npos ? std::string() : s.substr(b);
}
std::string trim_back(const std::string& s) {
  const auto e = s.find_last_not_of(" \t\n");
  return e == std::string::npos ? std::string() : s.substr(0, e + 1);
}

}  // namespace

FormattedExample format_conversation(const Conversation& c, const Tokenizer& tok, bool generation_prompt) {
  const SpecialTokens& sp = tok.special();
  FormattedExample out;
  auto emit = [&out](const std::vector<int>& ids, bool train) {
    out.ids.insert(out.ids.end(), ids.begin(), ids.end());
    out.loss_mask.insert(out.loss_mask.end(), ids.size(), train ? 1 : 0);
  };
  const std::vector<int> user_header = tok.encode("user\n"), model_header = tok.encode("model\n"),
                         newline = tok.encode("\n");

  emit({sp.bos}, false);
  for (const Turn& turn : c.turns) {
    const bool answer = turn.role == Role::Assistant;
    emit({sp.start_of_turn}, false);
    emit(answer ? model_header : user_header, false);
    for (size_t i = 0; i < turn.segments.size(); ++i) {
      const Segment& seg = turn.segments[i];
      if (seg.is_audio) {
        emit({sp.audio}, false);
        out.audio.push_back(seg.audio);
        continue;
      }
      std::string text = seg.text;  // the template trims each message
      if (i == 0) text = trim_front(text);
      if (i + 1 == turn.segments.size()) text = trim_back(text);
      if (!text.empty()) emit(tok.encode(text), answer);
    }
    emit({sp.end_of_turn}, answer);
    emit(newline, false);
  }
  if (generation_prompt && !c.turns.empty() && c.turns.back().role == Role::User) {
    emit({sp.start_of_turn}, false);
    emit(model_header, false);
  } else {
    emit({sp.eos}, false);
  }
  return out;
}

}  // namespace vtb::data
