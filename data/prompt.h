// The Gemma chat template (docs/design.md §3) turning a Conversation into token ids, the answer-only loss mask and
// the audio segments in placeholder order:
//
//   <bos><start_of_turn>user\n{user}<end_of_turn>\n<start_of_turn>model\n{answer}<end_of_turn>\n … <eos>
//
// Each audio segment becomes one <audio> placeholder id. The loss mask is 1 on assistant content and its
// <end_of_turn> (every assistant turn of a multi-turn conversation), 0 elsewhere.
#pragma once

#include <cstdint>
#include <vector>

#include "data/conversation.h"
#include "data/tokenizer.h"

namespace vtb::data {

struct FormattedExample {
  std::vector<int> ids;
  std::vector<uint8_t> loss_mask;  // same length as ids
  std::vector<AudioRef> audio;     // one per placeholder, in order
};

// With `generation_prompt`, a conversation ending in a user turn gets "<start_of_turn>model\n" and no
// <eos>, ready for decoding.
FormattedExample format_conversation(const Conversation& c, const Tokenizer& tok, bool generation_prompt = false);

}  // namespace vtb::data
