// model.encoder: a pretrained encoder's weights (NeMo names, encoder.*) land in the SpeechLM's encoder
// exactly, buffers included; a file that does not fit names every offender.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "model/safetensors.h"
#include "tests/unit/tiny_speech_lm.h"
#include "train/pretrain_encoder.h"

namespace vtb::train {
namespace {

std::vector<std::pair<std::string, at::Tensor>> encoder_tensors(model::SpeechLM& lm) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& p : lm->encoder->named_parameters())
    out.emplace_back("encoder." + p.key(), p.value().detach().clone());
  for (const auto& b : lm->encoder->named_buffers()) out.emplace_back("encoder." + b.key(), b.value().detach().clone());
  return out;
}

TEST(PretrainedEncoder, LoadsEveryTensorExactly) {
  torch::manual_seed(1);
  model::SpeechLM source(vtb::testing::tiny_speech_lm_config());
  for (auto& b : source->encoder->named_buffers())  // running statistics differ from a fresh model's
    if (b.key().find("running_mean") != std::string::npos) b.value().uniform_(-1, 1);
  torch::manual_seed(2);
  model::SpeechLM target(vtb::testing::tiny_speech_lm_config());
  const auto file = (std::filesystem::temp_directory_path() / "vtb_test_encoder.safetensors").string();
  const auto written = encoder_tensors(source);
  model::write_safetensors(file, written);
  const at::Tensor adapter_before = target->modality_adapter->parameters()[0].detach().clone();
  load_encoder_weights(target, file);
  const auto loaded = encoder_tensors(target);
  ASSERT_EQ(loaded.size(), written.size());
  for (size_t i = 0; i < loaded.size(); ++i) {
    EXPECT_EQ(loaded[i].first, written[i].first);
    EXPECT_TRUE(torch::equal(loaded[i].second, written[i].second)) << loaded[i].first;
  }
  EXPECT_TRUE(torch::equal(target->modality_adapter->parameters()[0], adapter_before)) << "only the encoder changes";
  std::filesystem::remove(file);
}

TEST(PretrainedEncoder, AMisfitNamesEveryOffender) {
  torch::manual_seed(1);
  model::SpeechLM lm(vtb::testing::tiny_speech_lm_config());
  auto tensors = encoder_tensors(lm);
  const std::string dropped = tensors.back().first;
  tensors.pop_back();
  const std::string reshaped = tensors.front().first;
  tensors.front().second = torch::zeros({3});
  tensors.emplace_back("encoder.extra.weight", torch::zeros({2}));
  const auto file = (std::filesystem::temp_directory_path() / "vtb_test_encoder_bad.safetensors").string();
  model::write_safetensors(file, tensors);
  try {
    load_encoder_weights(lm, file);
    FAIL() << "a misfit file was accepted";
  } catch (const std::runtime_error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("missing (1):\n    " + dropped), std::string::npos) << m;
    EXPECT_NE(m.find("wrong shape (1):\n    " + reshaped + " (file [3], model ["), std::string::npos) << m;
    EXPECT_NE(m.find("unexpected (1):\n    encoder.extra.weight"), std::string::npos) << m;
  }
  std::filesystem::remove(file);
}

}  // namespace
}  // namespace vtb::train
