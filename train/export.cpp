#include "train/export.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "model/safetensors.h"

namespace vtb::train {

std::map<std::string, at::Tensor> peft_adapter_tensors(model::SpeechLM& lm) {
  std::map<std::string, at::Tensor> out;
  auto put = [&](const std::string& module, const at::Tensor& A, const at::Tensor& B) {
    const std::string prefix = "base_model.model." + module;
    out[prefix + ".lora_A.weight"] = A.detach().clone();
    out[prefix + ".lora_B.weight"] = B.detach().clone();
  };
  auto& layers = lm->llm->model->layers;
  for (size_t i = 0; i < layers->size(); ++i) {
    auto* layer = layers[i]->as<model::DecoderLayer>();
    const std::string attn = "model.layers." + std::to_string(i) + ".self_attn.";
    const std::string mlp = "model.layers." + std::to_string(i) + ".mlp.";
    auto& a = layer->self_attn;
    auto& m = layer->mlp;
    // A fused adapter exports as one PEFT adapter per projection it covers: the shared A, its rows of B.
    auto put_group = [&](const std::string& module, const model::LoraGroup& group, std::vector<const char*> names) {
      for (size_t p = 0; p < names.size(); ++p)
        if (const auto [A, B] = group.peft_adapter(p); A.defined()) put(module + names[p], A, B);
    };
    put_group(attn, a->qkv, {"q_proj", "k_proj", "v_proj"});
    if (a->o_lora) put(attn + "o_proj", a->o_lora->A, a->o_lora->B);
    put_group(mlp, m->gate_up, {"gate_proj", "up_proj"});
    if (m->down_lora) put(mlp + "down_proj", m->down_lora->A, m->down_lora->B);
  }
  return out;
}

void export_checkpoint(model::SpeechLM& lm, const std::string& out_dir, const std::string& base_model, bool merged) {
  namespace fs = std::filesystem;
  fs::create_directories(fs::path(out_dir) / "adapter");
  const auto& lora = lm->llm->lora_config();
  std::vector<std::pair<std::string, at::Tensor>> adapter;
  std::set<std::string> modules;
  for (auto& [name, t] : peft_adapter_tensors(lm)) {
    adapter.emplace_back(name, t);
    const auto end = name.rfind(".lora_");
    modules.insert(name.substr(name.rfind('.', end - 1) + 1, end - name.rfind('.', end - 1) - 1));
  }
  model::write_safetensors((fs::path(out_dir) / "adapter" / "adapter_model.safetensors").string(), adapter,
                           {{"format", "pt"}});
  nlohmann::ordered_json config{{"peft_type", "LORA"},
                                {"task_type", "CAUSAL_LM"},
                                {"base_model_name_or_path", base_model},
                                {"r", lora.rank},
                                {"lora_alpha", lora.alpha},
                                {"lora_dropout", lora.dropout},
                                {"target_modules", std::vector<std::string>(modules.begin(), modules.end())},
                                {"bias", "none"},
                                {"fan_in_fan_out", false},
                                {"use_rslora", false},
                                {"inference_mode", true}};
  io::write_file_atomically((fs::path(out_dir) / "adapter" / "adapter_config.json").string(), config.dump(2) + "\n");

  const auto speech = model::module_tensors(*lm, "", /*buffers=*/true,
                                            [](const std::string& name) { return name.rfind("llm.", 0) != 0; });
  model::write_safetensors((fs::path(out_dir) / "speech.safetensors").string(), speech, {{"format", "pt"}});

  if (merged) model::save_hf_decoder(lm->llm, (fs::path(out_dir) / "merged").string(), /*merge_lora=*/true);
}

}  // namespace vtb::train
