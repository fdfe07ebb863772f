#include "launch/decode_options.h"

#include "launch/config.h"

namespace vtb {

void add_decode_options(boost::program_options::options_description& options, int64_t max_new_tokens, bool sampling) {
  namespace po = boost::program_options;
  options.add_options()("max-new-tokens", po::value<int64_t>()->default_value(max_new_tokens),
                        "generation limit per prompt")("beams", po::value<int64_t>()->default_value(1),
                                                       "beam search with this many beams (1 = greedy)")(
      "length-penalty", po::value<double>()->default_value(1), "beam search: rank by log p / length^this")(
      "max-length", po::value<int64_t>()->default_value(0),
      "longest prompt (text tokens and audio frames) + new tokens; 0 = the LLM's max_position_embeddings");
  if (sampling)
    options.add_options()("temperature", po::value<double>()->default_value(0), "0 = greedy")(
        "top-p", po::value<double>()->default_value(1), "nucleus sampling threshold")(
        "seed", po::value<uint64_t>()->default_value(0), "sampling seed");
}

eval::DecodeOptions read_decode_options(const ParsedCommand& cmd, const data::Tokenizer& tok, int64_t model_positions) {
  const auto& v = cmd.options;
  eval::DecodeOptions o;
  o.max_new_tokens = v["max-new-tokens"].as<int64_t>();
  o.beams = v["beams"].as<int64_t>();
  o.length_penalty = v["length-penalty"].as<double>();
  o.max_length = v["max-length"].as<int64_t>();
  if (v.count("temperature")) {
    o.temperature = v["temperature"].as<double>();
    o.top_p = v["top-p"].as<double>();
    o.seed = v["seed"].as<uint64_t>();
  }
  if (o.max_new_tokens < 1) throw ConfigError("--max-new-tokens must be at least 1");
  if (o.beams < 1) throw ConfigError("--beams must be at least 1");
  if (o.max_length < 0) throw ConfigError("--max-length must be ≥ 0 (0: the LLM's max_position_embeddings)");
  if (o.max_length == 0) o.max_length = model_positions;
  if (o.temperature < 0) throw ConfigError("--temperature must be ≥ 0");
  if (!(o.top_p > 0 && o.top_p <= 1)) throw ConfigError("--top-p must be in (0, 1]");
  o.stop_ids = {tok.special().end_of_turn, tok.special().eos};
  o.vocab_limit = tok.vocab_size();
  return o;
}

}  // namespace vtb
