#include "train/pretrain_encoder.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <set>

#include "data/tokenizer.h"
#include "model/safetensors.h"
#include "model/speech_encoder.h"

namespace vtb::train {

PretrainReport pretrain_encoder_ctc(dist::Communicator& comm, const EncoderPretrainSettings& e) {
  const auto start = std::chrono::steady_clock::now();
  const data::DataSettings& d = e.data;
  const data::Tokenizer tok = data::Tokenizer::load(d.tokenizer, d.audio_piece);
  data::BatchLoader loader(data::read_sources(d, data::Task::Asr), tok, d.limits, d.mix, d.loader, comm.rank(),
                           comm.size());

  torch::manual_seed(static_cast<uint64_t>(e.seed));
  model::SpeechEncoder encoder(e.encoder);
  const int64_t blank = tok.vocab_size();
  torch::nn::Linear head(e.encoder.conformer.d_model, blank + 1);
  encoder->to(comm.device());
  head->to(comm.device());
  encoder->train();
  dist::NamedTensors params;
  for (const auto& p : encoder->named_parameters()) params.emplace_back("encoder." + p.key(), p.value());
  for (const auto& p : head->named_parameters()) params.emplace_back("ctc_head." + p.key(), p.value());
  PretrainStepper stepper(comm, params, e.buckets, e.adamw, e.schedule, "encoder pretrain");
  const std::set<int64_t> not_transcript{tok.special().end_of_turn, tok.special().eos};

  for (int64_t step = 1; step <= e.schedule.steps; ++step) {
    const data::Batch b = loader.next();
    // The transcript of example i (its answer tokens) belongs to audio segment i: ASR has one per example.
    std::vector<int64_t> targets, target_lengths;
    const auto ids = b.ids.accessor<int64_t, 2>();  // the loader's CPU tensors, read without a tensor per token
    const auto mask = b.loss_mask.accessor<bool, 2>();
    const auto lengths = b.lengths.accessor<int64_t, 1>();
    for (int64_t i = 0; i < ids.size(0); ++i) {
      int64_t n = 0;
      for (int64_t t = 0; t < lengths[i]; ++t)
        if (mask[i][t] && !not_transcript.count(ids[i][t])) targets.push_back(ids[i][t]), ++n;
      target_lengths.push_back(n);
    }
    stepper.before_backward();
    auto [frames, frame_lengths] = encoder(b.features.to(comm.device()), b.feature_lengths.to(comm.device()));
    const at::Tensor log_probs = torch::log_softmax(head(frames), -1).transpose(0, 1);  // [T, N, C]
    const at::Tensor loss = torch::ctc_loss(log_probs, torch::tensor(targets, torch::kLong).to(comm.device()),
                                            frame_lengths.to(torch::kCPU), torch::tensor(target_lengths, torch::kLong),
                                            blank, at::Reduction::Mean, /*zero_infinity=*/true);
    loss.backward();
    stepper.after_backward(step, loss);
  }
  PretrainReport report = stepper.report();
  if (comm.rank() == 0) {
    model::write_safetensors(e.out_file, model::module_tensors(*encoder, "encoder.", /*buffers=*/true),
                             {{"format", "pt"}, {"vtb", "encoder pretrained with CTC"}});
  }
  comm.barrier();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  spdlog::info("encoder pretrain: loss {:.4f} → {:.4f} in {:.0f} s (CTC); saved {}", report.first_loss,
               report.last_loss, report.seconds, e.out_file);
  return report;
}

}  // namespace vtb::train
