#include "ckpt/model_weights.h"

#include "ckpt/layout.h"
#include "model/tensor_loading.h"

namespace vtb::ckpt {

void load_model_weights(const Hdf5Reader& state, const std::string& folder, model::SpeechLM& lm) {
  model::TensorLoad load(folder + ": the checkpoint does not fit this model (was the config changed?):");
  load.name_sizes(model::size_settings(lm->config()));
  auto copy = [&](const std::string& name, const at::Tensor& target) {
    const std::string path = schema::model_tensor(name);
    load.copy(name, target, state.exists(path) ? state.read(path) : at::Tensor());
  };
  for (const auto& p : lm->named_parameters())
    if (p.value().requires_grad()) copy(p.key(), p.value());  // the frozen LLM comes from model.llm
  for (const auto& b : lm->named_buffers()) copy(b.key(), b.value());
  load.finish();
}

void load_model_weights(const std::string& folder, model::SpeechLM& lm) {
  load_model_weights(Hdf5Reader(state_file(folder)), folder, lm);
}

std::string stored_config(const std::string& folder) {
  return Hdf5Reader(state_file(folder)).string_attribute(schema::kTrain, schema::kConfig);
}

}  // namespace vtb::ckpt
