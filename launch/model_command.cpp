// vtb model summary: parameter counts per part, from the configuration alone (no weights allocated).
#include <spdlog/fmt/fmt.h>

#include <iostream>

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

}  // namespace

int model_summary_command(int argc, char** argv) {
  boost::program_options::options_description options("Options");
  const ParsedCommand cmd = parse_command(argc, argv, options);
  if (cmd.help) {
    std::cout << command_help("vtb model summary --config F [--section.key=value ...]",
                              "Prints the parameter count of each part of the speech LM the config describes "
                              "(encoder, adapter, projection, LLM, LoRA; trainable and frozen), without building it.",
                              options);
    return kExitOk;
  }
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
  return kExitOk;
}

}  // namespace vtb
