// The decoding options vtb generate, vtb chat and vtb eval share: one declaration, one reader.
#pragma once

#include <boost/program_options.hpp>

#include "data/tokenizer.h"
#include "eval/decoding.h"
#include "launch/command_line.h"

namespace vtb {

// --max-new-tokens, --beams, --length-penalty, --max-length, and with `sampling` --temperature, --top-p, --seed.
void add_decode_options(boost::program_options::options_description& options, int64_t max_new_tokens, bool sampling);

// The options add_decode_options declared, checked, with the tokenizer's stop pieces and vocabulary;
// --max-length 0 becomes `model_positions` (the LLM's max_position_embeddings).
eval::DecodeOptions read_decode_options(const ParsedCommand& cmd, const data::Tokenizer& tok, int64_t model_positions);

}  // namespace vtb
