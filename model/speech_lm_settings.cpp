#include "model/speech_lm_settings.h"

#include <torch/torch.h>

#include <stdexcept>

namespace vtb::model {

SpeechLM build_speech_lm(const SpeechLMSettings& s, int64_t audio_token_id, int64_t tokenizer_pieces, int64_t seed) {
  SpeechLMConfig c = s.config;
  c.audio_token_id = audio_token_id;
  // Every rank seeds the same generator before building: identical stand-in LLM and initial weights.
  torch::manual_seed(static_cast<uint64_t>(seed));
  SpeechLM lm = s.llm_dir.empty() ? SpeechLM(c) : SpeechLM(c, load_hf_decoder(s.llm_dir, c.lora, torch::kFloat));
  if (tokenizer_pieces > lm->llm->config().vocab)
    throw std::runtime_error("the tokenizer has " + std::to_string(tokenizer_pieces) +
                             " pieces but the LLM's vocabulary is " + std::to_string(lm->llm->config().vocab) +
                             " (llm.vocab, or the model's embedding rows)");
  if (!s.encoder_init.empty()) load_encoder_weights(lm, s.encoder_init);
  lm->freeze_llm_base();
  lm->train();
  return lm;
}

std::string llm_label(const SpeechLMSettings& s, int64_t seed) {
  return s.llm_dir.empty() ? "stand-in from train.seed " + std::to_string(seed) : s.llm_dir;
}

}  // namespace vtb::model
