#include "train/pretrain_lm.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>

#include "data/manifest.h"
#include "data/prompt.h"
#include "data/tokenizer.h"
#include "model/decoder_lm.h"

namespace vtb::train {
namespace {

using Document = std::vector<int>;

std::vector<Document> read_documents(const std::vector<std::string>& corpora, const data::Tokenizer& tok) {
  if (corpora.empty()) throw std::runtime_error("lm pretrain: no corpus given (--corpus FILE)");
  data::ManifestOptions conversations;
  conversations.kind = data::SourceKind::Text;
  std::vector<Document> docs;
  for (const auto& path : corpora) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("lm pretrain: cannot read corpus " + path);
    const std::string folder = std::filesystem::path(path).parent_path().string();
    std::string line;
    for (int64_t n = 1; std::getline(in, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      try {
        const auto j = nlohmann::json::parse(line);
        if (j.contains("text")) {
          Document d{tok.special().bos};
          for (int id : tok.encode(j.at("text").get<std::string>())) d.push_back(id);
          d.push_back(tok.special().eos);
          docs.push_back(std::move(d));
        } else {
          data::Conversation c;
          data::parse_manifest_line(line, folder, conversations, c);
          docs.push_back(data::format_conversation(c, tok).ids);
        }
      } catch (const std::exception& e) {
        throw std::runtime_error(path + ":" + std::to_string(n) +
                                 ": not a document ({\"text\"} or {\"conversations\"}): " + e.what());
      }
    }
  }
  if (docs.empty()) throw std::runtime_error("lm pretrain: the corpora hold no documents");
  return docs;
}

// Inputs and targets of `batch` documents, right-padded; targets of padding are -100 (ignored).
std::pair<at::Tensor, at::Tensor> make_batch(const std::vector<Document>& docs, const std::vector<size_t>& pick,
                                             int pad) {
  size_t longest = 0;
  for (size_t i : pick) longest = std::max(longest, docs[i].size());
  const int64_t T = static_cast<int64_t>(longest) - 1;
  at::Tensor input = torch::full({static_cast<int64_t>(pick.size()), T}, pad, torch::kLong);
  at::Tensor target = torch::full({static_cast<int64_t>(pick.size()), T}, -100, torch::kLong);
  auto in = input.accessor<int64_t, 2>();
  auto tg = target.accessor<int64_t, 2>();
  for (size_t b = 0; b < pick.size(); ++b) {
    const Document& d = docs[pick[b]];
    for (size_t t = 0; t + 1 < d.size(); ++t) {
      in[static_cast<int64_t>(b)][static_cast<int64_t>(t)] = d[t];
      tg[static_cast<int64_t>(b)][static_cast<int64_t>(t)] = d[t + 1];
    }
  }
  return {input, target};
}

}  // namespace

PretrainReport pretrain_lm(dist::Communicator& comm, const PretrainSettings& s) {
  const auto start = std::chrono::steady_clock::now();
  const data::Tokenizer tok = data::Tokenizer::load(s.tokenizer, s.audio_piece);
  if (tok.vocab_size() > s.llm.vocab)
    throw std::runtime_error("lm pretrain: the tokenizer has " + std::to_string(tok.vocab_size()) +
                             " pieces but llm.vocab is " + std::to_string(s.llm.vocab));
  const std::vector<Document> docs = read_documents(s.corpora, tok);
  int64_t tokens = 0;
  for (const auto& d : docs) tokens += static_cast<int64_t>(d.size());
  spdlog::info("lm pretrain: {} documents, {} tokens; {} steps of {} documents on each of {} rank(s)", docs.size(),
               tokens, s.schedule.steps, s.batch, comm.size());

  torch::manual_seed(static_cast<uint64_t>(s.seed));  // the same initial weights on every rank
  model::DecoderLM lm(s.llm);
  lm->to(comm.device());
  lm->train();
  dist::NamedTensors params;
  for (const auto& p : lm->named_parameters()) params.emplace_back(p.key(), p.value());
  PretrainStepper stepper(comm, params, s.buckets, s.adamw, s.schedule, "lm pretrain");

  for (int64_t step = 1; step <= s.schedule.steps; ++step) {
    std::mt19937_64 rng(static_cast<uint64_t>(s.seed) * 1000003u + static_cast<uint64_t>(step) * 7919u +
                        static_cast<uint64_t>(comm.rank()));
    std::vector<size_t> pick(static_cast<size_t>(s.batch));
    for (auto& i : pick) i = rng() % docs.size();
    auto [input, target] = make_batch(docs, pick, tok.special().pad);
    input = input.to(comm.device());
    target = target.to(comm.device());

    stepper.before_backward();
    const at::Tensor logits = lm->forward(input);
    const at::Tensor loss = torch::nn::functional::cross_entropy(
        logits.reshape({-1, logits.size(-1)}).to(torch::kFloat), target.reshape({-1}),
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
    loss.backward();
    stepper.after_backward(step, loss);
  }
  PretrainReport report = stepper.report();
  report.documents = static_cast<int64_t>(docs.size());
  report.tokens = tokens;
  if (comm.rank() == 0) {
    lm->to(torch::kCPU);
    model::save_hf_decoder(lm, s.out_dir, /*merge_lora=*/false);
  }
  comm.barrier();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  spdlog::info("lm pretrain: loss {:.4f} → {:.4f} in {:.0f} s; saved {} (Hugging Face layout)", report.first_loss,
               report.last_loss, report.seconds, s.out_dir);
  return report;
}

}  // namespace vtb::train
