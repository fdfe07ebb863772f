#include "eval/evaluation.h"

#include <ATen/ATen.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <tuple>

#include "data/audio.h"
#include "data/batch_loader.h"
#include "data/prompt.h"
#include "eval/metrics.h"
#include "io/atomic_file.h"

namespace vtb::eval {
namespace {

// The prompt (every turn before the last assistant turn) and the reference (that turn's text).
std::pair<data::Conversation, std::string> split_reference(const data::Conversation& c) {
  data::Conversation prompt = c;
  if (prompt.turns.empty() || prompt.turns.back().role != data::Role::Assistant)
    throw std::runtime_error(c.origin + ": the conversation does not end with an assistant turn to score against");
  std::string reference;
  for (const auto& s : prompt.turns.back().segments) reference += s.text;
  prompt.turns.pop_back();
  return {prompt, reference};
}

}  // namespace

model::SpeechBatch prompt_batch(const std::vector<data::Conversation>& prompts, const data::Tokenizer& tok,
                                const data::LogMelExtractor& extractor, double max_audio_seconds) {
  std::vector<data::FormattedExample> formatted;
  std::vector<at::Tensor> feats;
  for (const auto& p : prompts) {
    formatted.push_back(data::format_conversation(p, tok, /*generation_prompt=*/true));
    const auto placeholders = std::count(formatted.back().ids.begin(), formatted.back().ids.end(), tok.special().audio);
    if (static_cast<size_t>(placeholders) != formatted.back().audio.size())
      throw std::invalid_argument((p.origin.empty() ? std::string() : p.origin + ": ") +
                                  "the text holds the audio placeholder token itself (" + std::to_string(placeholders) +
                                  " placeholders, " + std::to_string(formatted.back().audio.size()) +
                                  " recordings); a recording is written <audio:PATH>");
    for (const auto& a : formatted.back().audio)
      feats.push_back(
          extractor.compute(data::load_audio(a.path, a.offset, a.duration, data::kSampleRate, max_audio_seconds)));
  }
  data::PaddedTokens tokens = data::pad_tokens(formatted, tok.special().pad);
  model::SpeechBatch b;
  b.ids = std::move(tokens.ids);
  b.lengths = std::move(tokens.lengths);
  b.loss_mask = at::zeros_like(tokens.loss_mask);  // prompts: nothing to score
  std::tie(b.features, b.feature_lengths) = data::pad_features(feats);
  return b;
}

namespace {

// Why one of the example's recordings cannot be read, or "" when all can.
std::string audio_problem(const data::Conversation& c, double max_audio_seconds) {
  try {
    for (const auto& t : c.turns)
      for (const auto& seg : t.segments)
        if (seg.is_audio)
          data::load_audio(seg.audio.path, seg.audio.offset, seg.audio.duration, data::kSampleRate, max_audio_seconds);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// r.metric, r.value (and r.detail, r.also) from r.predictions, as `task` is scored.
void score(data::Task task, EvalResult& r) {
  std::vector<std::string> refs, hyps;
  for (const auto& p : r.predictions) {
    refs.push_back(p.reference);
    hyps.push_back(p.hypothesis);
  }
  if (task == data::Task::Asr) {
    r.metric = "wer";
    r.value = corpus_wer(refs, hyps, /*normalize=*/true);
  } else if (task == data::Task::Ast) {
    const BleuScore b = corpus_bleu(hyps, {refs});
    r.metric = "bleu";
    r.value = b.score;
    r.detail = b.signature;
  } else {
    size_t hits = 0;
    for (size_t k = 0; k < refs.size(); ++k) hits += english_normalize(refs[k]) == english_normalize(hyps[k]);
    const double exact = refs.empty() ? 0.0 : static_cast<double>(hits) / static_cast<double>(refs.size());
    if (task == data::Task::Sqa) {  // scored as the paper's SQA evaluation scores it, exact match beside it
      r.metric = "rouge_l";
      r.value = mean_rouge_l(refs, hyps);
      r.also["exact_match"] = exact;
    } else {
      r.metric = "exact_match";
      r.value = exact;
      if (task == data::Task::Mixed) r.also["rouge_l"] = mean_rouge_l(refs, hyps);  // partial credit, as sqa
    }
  }
}

}  // namespace

EvalResult evaluate(dist::Communicator& comm, model::SpeechLM& lm, const data::Tokenizer& tok,
                    const std::vector<data::Conversation>& examples, const EvalOptions& o) {
  const data::LogMelExtractor extractor(o.features);
  const double max_audio = audio_seconds_within(o.decode.max_length, lm->config().encoder.subsampling_factor);
  const c10::Device device = comm.device();
  std::vector<Prediction> mine;
  std::vector<size_t> mine_index;
  std::vector<data::Conversation> pending;
  std::vector<std::string> pending_refs;
  auto flush = [&] {
    if (pending.empty()) return;
    model::SpeechBatch b = prompt_batch(pending, tok, extractor, max_audio);
    auto to = [&](const at::Tensor& t) { return t.defined() ? t.to(device) : t; };
    b = model::SpeechBatch{to(b.ids), to(b.lengths), to(b.loss_mask), to(b.features), to(b.feature_lengths)};
    std::vector<std::vector<int64_t>> generated;
    try {
      generated = decode(lm, b, o.decode);
    } catch (const PromptTooLong& e) {
      throw PromptTooLong(e.example, pending[static_cast<size_t>(e.example)].origin + ": " + e.what());
    }
    for (size_t k = 0; k < pending.size(); ++k) {
      std::vector<int> ids(generated[k].begin(), generated[k].end());
      mine.push_back({pending[k].origin, pending_refs[k], tok.decode(ids)});
    }
    pending.clear();
    pending_refs.clear();
  };
  nlohmann::json local = nlohmann::json::array();
  for (size_t i = static_cast<size_t>(comm.rank()); i < examples.size(); i += static_cast<size_t>(comm.size())) {
    if (o.skip_bad_audio) {  // read once here to find out; a batch is not built around a bad file
      if (const std::string why = audio_problem(examples[i], max_audio); !why.empty()) {
        spdlog::warn("{}: left out of the score: {}", examples[i].origin, why);
        local.push_back({{"i", i}, {"skipped", examples[i].origin + ": " + why}});
        continue;
      }
    }
    auto [prompt, reference] = split_reference(examples[i]);
    prompt.origin = examples[i].origin;
    pending.push_back(prompt);
    pending_refs.push_back(reference);
    mine_index.push_back(i);
    if (static_cast<int64_t>(pending.size()) >= o.batch_size) flush();
  }
  flush();

  // Gather every rank's predictions (and skipped examples), then put them back in manifest order.
  for (size_t k = 0; k < mine.size(); ++k)
    local.push_back(
        {{"i", mine_index[k]}, {"origin", mine[k].origin}, {"ref", mine[k].reference}, {"hyp", mine[k].hypothesis}});
  std::map<size_t, nlohmann::json> ordered;
  for (const auto& text : dist::allgather_strings(comm, local.dump()))
    for (const auto& p : nlohmann::json::parse(text)) ordered[p["i"].get<size_t>()] = p;
  EvalResult r;
  for (const auto& [i, p] : ordered) {
    if (p.contains("skipped")) {
      r.skipped.push_back(p["skipped"]);
    } else {
      r.predictions.push_back({p["origin"], p["ref"], p["hyp"]});
    }
  }

  score(o.task, r);
  return r;
}

void write_results(const std::string& out_dir, const EvalResult& r, const nlohmann::json& about) {
  const std::filesystem::path out = out_dir;
  std::filesystem::create_directories(out);
  std::string predictions;
  for (const auto& p : r.predictions)
    predictions +=
        nlohmann::json{{"origin", p.origin}, {"reference", p.reference}, {"hypothesis", p.hypothesis}}.dump() + "\n";
  io::write_file_atomically((out / "predictions.jsonl").string(), predictions);
  nlohmann::json metrics = about;
  metrics["examples"] = r.predictions.size();
  if (!r.skipped.empty()) metrics["skipped"] = r.skipped;
  metrics[r.metric] = r.value;
  for (const auto& [name, value] : r.also) metrics[name] = value;
  if (!r.detail.empty()) metrics["signature"] = r.detail;
  io::write_file_atomically((out / "metrics.json").string(), metrics.dump(2) + "\n");
  std::string also;
  for (const auto& [name, value] : r.also) also += fmt::format(", {} = {:.4f}", name, value);
  spdlog::info("{} on {} examples: {} = {:.4f}{} {} (written to {})", metrics.value("kind", ""), r.predictions.size(),
               r.metric, r.value, also, r.detail, out.string());
}

}  // namespace vtb::eval
