// vtb model summary: parameter counts per part, from the configuration alone (no weights allocated).
#include <spdlog/fmt/fmt.h>

#include <iostream>
#include <string>
#include <utility>

#include "dist/exit_codes.h"
#include "launch/command_line.h"
#include "launch/commands.h"
#include "launch/model_settings.h"

namespace vtb {
namespace {

std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// The frozen LLM's bytes by how model.frozen_dtype stores it (Note [Frozen weights in bf16]).
struct FrozenBytes {
  double float32 = 0;           // everything float32
  double bf16_projections = 0;  // projections bf16; embedding and norms float32 (a float32 checkpoint)
  double bf16 = 0;              // projections and embedding bf16, norms float32 (a checkpoint published in bf16)
};

FrozenBytes frozen_bytes(const model::DecoderConfig& llm) {
  const double all = static_cast<double>(llm.parameter_count());
  const double embedding = static_cast<double>(llm.vocab * llm.hidden);
  const double norms = static_cast<double>((2 * llm.layers + 1) * llm.hidden);
  const double projections = all - embedding - norms;  // q k v o gate up down, and lm_head when untied
  return {4 * all, 2 * projections + 4 * (embedding + norms), 2 * (projections + embedding) + 4 * norms};
}

// Model state per rank in GB (1e9 bytes), as vtb holds it: float32 trainable parameters (their own master
// copy), float32 gradients, two float32 AdamW moments, the frozen LLM in float32 or, with model.frozen_dtype =
// bfloat16 (auto under bf16), its projections in bf16. dist.zero = 1 shards the moments, 2 the averaged
// gradients too (Note [Optimizer shards]: 1/N of every bucket, so 1/N here; Note [Scattered buckets]: between
// steps — during backward the buckets in flight are held whole). Activations, the data pipeline and
// allocator slack are not counted.
void print_memory(int64_t trainable, const FrozenBytes& frozen, int64_t ranks) {
  const double gb = 4 / 1e9, n = static_cast<double>(ranks);
  const double params = trainable * gb, grads = trainable * gb, moments = 2 * trainable * gb;
  std::cout << fmt::format("\nmodel state per rank, {} rank(s), GB {:>32} {:>13} {:>13}\n", ranks, "dist.zero 0",
                           "dist.zero 1", "dist.zero 2");
  auto line = [](const std::string& what, double a, double b, double c) {
    std::cout << fmt::format("{:<55} {:>13.2f} {:>13.2f} {:>13.2f}\n", what, a, b, c);
  };
  line("trainable parameters (float32)", params, params, params);
  line("gradients (float32)", grads, grads, grads / n);
  line("AdamW moments (2 x float32)", moments, moments / n, moments / n);
  const std::pair<const char*, double> llms[] = {
      {"frozen LLM, model.frozen_dtype = float32", frozen.float32 / 1e9},
      {"frozen LLM, bfloat16 (a float32 checkpoint)", frozen.bf16_projections / 1e9},
      {"frozen LLM, bfloat16 (a checkpoint published in bf16)", frozen.bf16 / 1e9}};
  for (const auto& [what, llm] : llms) line(what, llm, llm, llm);
  for (const auto& [what, llm] : llms)
    line(fmt::format("total, {}", std::string(what).substr(std::string("frozen LLM, ").size())),
         params + grads + moments + llm, params + grads + moments / n + llm, params + grads / n + moments / n + llm);
  std::cout << "bfloat16: the projections in bf16, the norms in float32, the embedding in bf16 only when every value "
               "is exact in bf16 (Note [Frozen weights in bf16]); auto = bfloat16 when the step computes in bf16.\n"
               "dist.zero 2: gradients between steps; during backward the buckets in flight are held whole. "
               "Activations are not counted.\n";
}

}  // namespace

int model_summary_command(int argc, char** argv) {
  boost::program_options::options_description options("Options");
  options.add_options()("ranks", boost::program_options::value<int64_t>()->default_value(0),
                        "also print the memory each of this many data-parallel ranks holds for dist.zero 0, 1, 2");
  const ParsedCommand cmd = parse_command(argc, argv, options);
  if (cmd.help) {
    std::cout << command_help("vtb model summary --config F [--ranks N] [--section.key=value ...]",
                              "Prints the parameter count of each part of the speech LM the config describes "
                              "(encoder, adapter, projection, LLM, LoRA; trainable and frozen), without building it; "
                              "with --ranks, the model state each rank holds with and without optimizer sharding.",
                              options);
    return kExitOk;
  }
  const int64_t ranks = cmd.options["ranks"].as<int64_t>();
  if (ranks < 0) throw ConfigError("--ranks must be at least 1 (or 0: no memory table), got " + std::to_string(ranks));
  const Config config = Config::load(cmd.options["config"].as<std::string>(), cmd.overrides);
  const model::SpeechLMConfig m = read_model_settings(config);
  const int64_t encoder = m.encoder.parameter_count();
  const int64_t adapter = m.adapter.parameter_count();
  const int64_t proj = m.adapter.projection_parameter_count();
  const int64_t llm = m.llm.parameter_count();
  const int64_t lora = model::lora_parameter_count(m.llm, m.lora);
  const int64_t trainable = encoder + adapter + proj + lora;

  auto row = [](const std::string& part, int64_t n, const std::string& note) {
    std::cout << fmt::format("{:<12} {:>15} {:>10.2f} M  {}\n", part, with_commas(n), n / 1e6, note);
  };
  std::cout << fmt::format("{:<12} {:>15}\n", "part", "parameters");
  row("encoder", encoder,
      fmt::format("trained; FastConformer {} layers, d {}, {} mels", m.encoder.conformer.layers,
                  m.encoder.conformer.d_model, m.encoder.n_mels));
  row("adapter", adapter,
      fmt::format("trained; Conformer {} layers, d {}", m.adapter.conformer.layers, m.adapter.conformer.d_model));
  row("projection", proj, fmt::format("trained; Linear {} -> {}", m.adapter.conformer.d_model, m.adapter.output_dim));
  row("llm", llm,
      fmt::format("frozen; {} {} layers, d {}, vocab {}{}", m.llm.family, m.llm.layers, m.llm.hidden, m.llm.vocab,
                  config.str("model.llm").empty() ? " (stand-in)" : ""));
  row("lora", lora,
      fmt::format("trained; rank {}, {} layout", m.lora.rank, choice_name(m.lora.layout, model::kLoraLayouts)));
  row("trainable", trainable, "");
  row("frozen", llm, "");
  row("total", trainable + llm, "");
  if (ranks > 0) print_memory(trainable, frozen_bytes(m.llm), ranks);
  return kExitOk;
}

}  // namespace vtb
