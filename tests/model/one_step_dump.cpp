// One training step of the whole speech LM through vtb's own step — forward_backward (Note [Loss
// normalisation]) with the gradient bucketer's allreduce, then clip_and_step with AdamW — on 2 real ranks
// with uneven batches, written out for one_step_reference_check.py to redo in hand-written PyTorch:
//
//   OUT/config.json          shapes and step settings (what the reference needs beyond tensor shapes)
//   OUT/init.safetensors     every parameter before the step (vtb's names)
//   OUT/batch_<r>.safetensors rank r's batch: ids, lengths, loss_mask, features, feature_lengths
//   OUT/after.safetensors    every trainable parameter after the step
//   OUT/gradients.safetensors the gradient AdamW stepped with (averaged over ranks, clipped)
//   OUT/step.json            the logged loss, the gradient norm before clipping, the answer tokens
//
// The model is in training mode (BatchNorm on each rank's batch statistics) with dropout 0, so the step
// is deterministic. usage: mpirun -np 2 one_step_dump OUT
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/batch_loader.h"
#include "dist/gradient_bucketer.h"
#include "dist/world.h"
#include "model/safetensors.h"
#include "optim/adamw.h"
#include "tests/unit/tiny_speech_lm.h"
#include "train/train_step.h"

using namespace vtb;

namespace {

constexpr int64_t kAudio = 7, kBos = 2;
constexpr double kLr = 2e-3, kClip = 0.1;  // the clip is below the norm (0.31), so clipping is part of the check

struct Example {
  std::vector<int64_t> ids;
  std::vector<bool> answer;
  std::vector<at::Tensor> audio;  // [20, frames] each, in placeholder order
};

// Example i of rank r: a prompt with 0, 1 or 2 <audio> placeholders, then 2 + 3i + r answer tokens.
Example example(int rank, int i, int segments) {
  Example e;
  e.ids = {kBos, 10 + i};
  for (int s = 0; s < segments; ++s) {
    e.ids.push_back(kAudio);
    e.ids.push_back(12 + s);
    e.audio.push_back(torch::randn({20, 30 + 11 * i + 7 * s + 5 * rank}));
  }
  e.answer.assign(e.ids.size(), false);
  for (int j = 0; j < 2 + 3 * i + rank; ++j) {
    e.ids.push_back(20 + (7 * i + 3 * j + rank) % 19);
    e.answer.push_back(true);
  }
  return e;
}

data::Batch batch_of(const std::vector<Example>& ex) {
  size_t longest = 0;
  for (const auto& e : ex) longest = std::max(longest, e.ids.size());
  const auto B = static_cast<int64_t>(ex.size());
  data::Batch b;
  b.ids = torch::zeros({B, static_cast<int64_t>(longest)}, torch::kLong);
  b.loss_mask = torch::zeros_like(b.ids, torch::kBool);
  b.lengths = torch::zeros({B}, torch::kLong);
  std::vector<at::Tensor> audio;
  for (int64_t r = 0; r < B; ++r) {
    const Example& e = ex[static_cast<size_t>(r)];
    for (size_t t = 0; t < e.ids.size(); ++t) {
      b.ids[r][static_cast<int64_t>(t)] = e.ids[t];
      b.loss_mask[r][static_cast<int64_t>(t)] = static_cast<bool>(e.answer[t]);
    }
    b.lengths[r] = static_cast<int64_t>(e.ids.size());
    audio.insert(audio.end(), e.audio.begin(), e.audio.end());
    b.sources.push_back(0);
  }
  std::tie(b.features, b.feature_lengths) = data::pad_features(audio);
  b.answer_tokens = b.loss_mask.sum().item<int64_t>();
  return b;
}

model::SpeechLMConfig step_config() {
  model::SpeechLMConfig c = vtb::testing::tiny_speech_lm_config();
  c.encoder.conformer.dropout = 0;
  c.adapter.conformer.dropout = 0;
  return c;
}

dist::NamedTensors all_parameters(model::SpeechLM& lm, bool trainable_only) {
  dist::NamedTensors out;
  for (const auto& p : lm->named_parameters())
    if (!trainable_only || p.value().requires_grad()) out.emplace_back(p.key(), p.value().detach().clone());
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: mpirun -np 2 one_step_dump OUT_DIR\n");
    return 2;
  }
  const std::filesystem::path out = argv[1];
  const auto& world = dist::init_world(&argc, &argv);
  torch::set_num_threads(1);
  int status = 0;
  {
    auto comm = dist::make_communicator("cpu", {/*timeout_s=*/60});
    torch::manual_seed(5);  // the same model on every rank
    const model::SpeechLMConfig c = step_config();
    model::SpeechLM lm(c);
    {
      torch::NoGradGuard no_grad;  // LoRA's B starts at zero, which would leave A without a gradient
      for (auto& p : lm->named_parameters())
        if (model::is_lora_parameter(p.key()) && p.key().back() == 'B') p.value().normal_(0, 0.1);
    }
    lm->freeze_llm_base();
    lm->train();

    // Rank 0: two examples (1 and 2 audio segments); rank 1: three (1 segment, text only, 1 segment).
    torch::manual_seed(100 + static_cast<uint64_t>(world.rank));
    const data::Batch batch = world.rank == 0 ? batch_of({example(0, 0, 1), example(0, 1, 2)})
                                              : batch_of({example(1, 0, 1), example(1, 1, 0), example(1, 2, 1)});
    std::filesystem::create_directories(out);
    if (world.rank == 0) model::write_safetensors((out / "init.safetensors").string(), all_parameters(lm, false));
    model::write_safetensors((out / ("batch_" + std::to_string(world.rank) + ".safetensors")).string(),
                             {{"ids", batch.ids},
                              {"lengths", batch.lengths},
                              {"loss_mask", batch.loss_mask.to(torch::kLong)},
                              {"features", batch.features},
                              {"feature_lengths", batch.feature_lengths}});

    dist::NamedTensors live;
    for (const auto& p : lm->named_parameters())
      if (p.value().requires_grad()) live.emplace_back(p.key(), p.value());
    dist::GradientBucketer bucketer(live, *comm);
    const optim::AdamWOptions adamw;
    optim::AdamW optimizer(live, adamw);
    train::StepStatistics stats = train::forward_backward(lm, {batch}, bucketer, *comm, train::StepOptions{});
    stats.allreduce(*comm);
    const train::Update update = train::clip_and_step(optimizer, kClip, kLr, stats.loss_sum);
    status = update.applied ? 0 : 1;

    if (world.rank == 0) {
      model::write_safetensors((out / "after.safetensors").string(), all_parameters(lm, true));
      dist::NamedTensors gradients;  // averaged over the ranks and clipped: what AdamW stepped with
      for (const auto& [name, p] : live) gradients.emplace_back(name, p.grad());
      model::write_safetensors((out / "gradients.safetensors").string(), gradients);
      const auto& l = c.llm;
      nlohmann::json config = {
          {"ranks", world.size},
          {"audio_token_id", c.audio_token_id},
          {"encoder", {{"heads", c.encoder.conformer.heads}, {"xscaling", c.encoder.conformer.xscaling}}},
          {"adapter", {{"heads", c.adapter.conformer.heads}, {"xscaling", c.adapter.conformer.xscaling}}},
          {"llm",
           {{"family", l.family},
            {"heads", l.heads},
            {"kv_heads", l.kv_heads},
            {"head_dim", l.head_dim},
            {"rms_eps", l.rms_eps},
            {"rope_theta", l.rope_theta},
            {"tie_embeddings", l.tie_embeddings}}},
          {"lora", {{"rank", c.lora.rank}, {"alpha", c.lora.alpha}}},
          {"lr", kLr},
          {"clip", kClip},
          {"adamw",
           {{"beta1", adamw.beta1}, {"beta2", adamw.beta2}, {"eps", adamw.eps}, {"weight_decay", adamw.weight_decay}}}};
      std::ofstream(out / "config.json") << config.dump(2) << "\n";
      std::ofstream(out / "step.json") << nlohmann::json{{"loss", stats.loss()},
                                                         {"grad_norm", update.grad_norm},
                                                         {"tokens", stats.tokens},
                                                         {"applied", update.applied}}
                                              .dump(2)
                                       << "\n";
      std::printf("one_step_dump: loss %.6f, grad norm %.6f, %g answer tokens over %d ranks → %s\n", stats.loss(),
                  update.grad_norm, stats.tokens, world.size, out.c_str());
    }
  }
  dist::finalize_world();
  return status;
}
