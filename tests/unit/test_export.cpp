// vtb ckpt export: the merged LLM and the PEFT adapter (applied to the base by name, a second mapping
// written here) both reproduce the trained model's outputs; speech.safetensors holds the speech modules.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>

#include "model/safetensors.h"
#include "tests/unit/tiny_speech_lm.h"
#include "train/export.h"

namespace vtb::train {
namespace {

model::SpeechLMConfig tiny() { return vtb::testing::tiny_speech_lm_config(); }

TEST(Export, MergedLlmAndPeftAdapterReproduceTheTrainedModel) {
  for (const auto& [name, layout] : model::kLoraLayouts) {
    torch::manual_seed(3);
    model::SpeechLMConfig c = tiny();
    c.lora.layout = layout;
    c.lora.targets = {"q", "v", "o", "up", "down"};  // a subset, so fused rows must map by coverage
    model::SpeechLM lm(c);
    {
      torch::NoGradGuard no_grad;
      for (auto& p : lm->named_parameters())
        if (model::is_lora_parameter(p.key())) p.value().normal_(0, 0.3);
    }
    lm->eval();
    const std::string dir = ::testing::TempDir() + "vtb_export_" + std::string(name) + "_" + std::to_string(getpid());
    std::filesystem::remove_all(dir);
    export_checkpoint(lm, dir, "", /*merged=*/true);
    torch::NoGradGuard no_grad;
    const at::Tensor ids = torch::randint(0, 40, {2, 9}, torch::kLong);
    const at::Tensor expected = lm->llm->forward(ids);

    // (a) the merged Hugging Face folder.
    EXPECT_LE((model::load_hf_decoder(dir + "/merged", {})->forward(ids) - expected).abs().max().item<double>(), 1e-5)
        << name;

    // (b) the base plus the PEFT adapter, applied by PEFT name to a separate-layout model.
    model::save_hf_decoder(lm->llm, dir + "/base", /*merge_lora=*/false);
    model::LoraConfig peft = c.lora;
    peft.layout = model::LoraLayout::Separate;
    model::DecoderLM applied = model::load_hf_decoder(dir + "/base", peft);
    auto params = applied->named_parameters();
    auto adapter = model::SafetensorsFile::open(dir + "/adapter/adapter_model.safetensors");
    int copied = 0;
    for (const auto& e : adapter->header().tensors) {
      // base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight → model.layers.0.self_attn.q_lora.A
      std::string name = e.name.substr(std::string("base_model.model.").size());
      const auto proj = name.find("_proj.lora_");
      ASSERT_NE(proj, std::string::npos) << e.name;
      name = name.substr(0, proj) + "_lora." + name.substr(proj + 11, 1);
      ASSERT_TRUE(params.contains(name)) << name;
      params[name].copy_(adapter->tensor(e.name));
      ++copied;
    }
    EXPECT_EQ(copied, 2 * 2 * 5);  // 2 layers × 5 targets × (A, B)
    EXPECT_LE((applied->forward(ids) - expected).abs().max().item<double>(), 1e-5) << name;

    // (c) the speech modules.
    auto speech = model::SafetensorsFile::open(dir + "/speech.safetensors");
    int speech_tensors = 0;
    for (const auto& p : lm->named_parameters()) {
      if (p.key().rfind("llm.", 0) == 0) continue;
      ASSERT_NE(speech->find(p.key()), nullptr) << p.key();
      EXPECT_TRUE(torch::equal(speech->tensor(p.key()), p.value())) << p.key();
      ++speech_tensors;
    }
    EXPECT_GT(speech_tensors, 10);
  }
}

}  // namespace
}  // namespace vtb::train
