#include "train/export.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

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
    if (a->qkv_lora) {  // rows of B in q, k, v order, for the projections the fused adapter covers
      int64_t row = 0;
      const std::pair<const char*, torch::nn::Linear> bases[] = {
          {"q_proj", a->q_proj}, {"k_proj", a->k_proj}, {"v_proj", a->v_proj}};
      for (int p = 0; p < 3; ++p) {
        if (!a->fused_covers(p)) continue;
        const int64_t rows = bases[p].second->weight.size(0);
        put(attn + bases[p].first, a->qkv_lora->A, a->qkv_lora->B.narrow(0, row, rows));
        row += rows;
      }
    }
    for (auto [name, ad] :
         {std::pair{"q_proj", a->q_lora}, {"k_proj", a->k_lora}, {"v_proj", a->v_lora}, {"o_proj", a->o_lora}})
      if (ad) put(attn + name, ad->A, ad->B);
    if (m->gate_up_lora) {
      const int64_t rows = m->gate_proj->weight.size(0);
      int64_t row = 0;
      for (int p = 0; p < 2; ++p) {
        if (!m->fused_covers(p)) continue;
        put(mlp + (p == 0 ? "gate_proj" : "up_proj"), m->gate_up_lora->A, m->gate_up_lora->B.narrow(0, row, rows));
        row += rows;
      }
    }
    for (auto [name, ad] : {std::pair{"gate_proj", m->gate_lora}, {"up_proj", m->up_lora}, {"down_proj", m->down_lora}})
      if (ad) put(mlp + name, ad->A, ad->B);
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
  std::ofstream((fs::path(out_dir) / "adapter" / "adapter_config.json").string()) << config.dump(2) << "\n";

  std::vector<std::pair<std::string, at::Tensor>> speech;
  for (const auto& p : lm->named_parameters())
    if (p.key().rfind("llm.", 0) != 0) speech.emplace_back(p.key(), p.value().detach());
  for (const auto& b : lm->named_buffers())
    if (b.key().rfind("llm.", 0) != 0) speech.emplace_back(b.key(), b.value().detach());
  model::write_safetensors((fs::path(out_dir) / "speech.safetensors").string(), speech, {{"format", "pt"}});

  if (merged) model::save_hf_decoder(lm->llm, (fs::path(out_dir) / "merged").string(), /*merge_lora=*/true);
}

}  // namespace vtb::train
