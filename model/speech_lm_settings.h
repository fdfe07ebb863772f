// The speech LM a run uses and where its weights start from, and the one function that builds it: training,
// encoder pretraining, eval, generate and chat all go through build_speech_lm.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "model/speech_lm.h"

namespace vtb::model {

// model.frozen_dtype: how the frozen LLM's projection weights are stored in training (Note [Frozen weights in
// bf16]). auto: bfloat16 when the step computes in bf16, float32 otherwise.
enum class FrozenDtype { Auto, Float32, Bfloat16 };
inline constexpr std::array<std::pair<std::string_view, FrozenDtype>, 3> kFrozenDtypes{
    {{"auto", FrozenDtype::Auto}, {"float32", FrozenDtype::Float32}, {"bfloat16", FrozenDtype::Bfloat16}}};

// Every default here is also the config key's default (launch/config_keys.cpp reads them).
struct SpeechLMSettings {
  SpeechLMConfig config = paper_model();  // [encoder], [adapter], [llm], [lora]; audio_token_id from the tokenizer
  std::string llm_dir;       // model.llm: Hugging Face folder of the frozen LLM; "" = a stand-in from the seed
  std::string encoder_init;  // model.encoder: safetensors of a pretrained encoder to start from; "" = random
  FrozenDtype frozen_dtype = FrozenDtype::Auto;  // model.frozen_dtype (training only)

  // The paper's model: SpeechLMConfig's shapes (Canary-1B encoder, 2-layer adapter, Gemma-1 2B) with
  // LoRA rank 32 on every projection.
  static SpeechLMConfig paper_model() {
    SpeechLMConfig m;
    m.lora.rank = 32;
    return m;
  }
};

// The speech LM of `settings` for a tokenizer whose <audio> piece is `audio_token_id` and which has
// `tokenizer_pieces` pieces: the same on every rank (ATen's generator is seeded with `seed` first), LLM base
// frozen, in training mode. Throws when the tokenizer has more pieces than the LLM's vocabulary.
SpeechLM build_speech_lm(const SpeechLMSettings& settings, int64_t audio_token_id, int64_t tokenizer_pieces,
                         int64_t seed);

// What a checkpoint records as the frozen LLM's origin: model.llm, or how the stand-in was made.
std::string llm_label(const SpeechLMSettings& settings, int64_t seed);

}  // namespace vtb::model
