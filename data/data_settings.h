// What a training run reads: the tokenizer, the weighted sources of the mix, batching and the loader. The
// speech LM's and the schedule's settings live beside what reads them (model/, train/).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "data/batch_loader.h"
#include "data/manifest.h"

namespace vtb::data {

// One data.source line: NAME KIND WEIGHT MANIFEST [DEFAULT PROMPT...].
struct SourceSettings {
  std::string name;
  Task task = Task::Asr;
  std::string manifest, prompt;
  double weight = 1;
};

// Every default here is also the config key's default (launch/config_keys.cpp reads them).
struct DataSettings {
  std::string tokenizer = "data/synth/tokenizer.model";  // SentencePiece; the default is the quickstart's
  std::string audio_piece = "<audio>";
  std::vector<SourceSettings> sources;
  MixMode mix = MixMode::PerBatch;
  BatchLimits limits;
  LoaderOptions loader;
  double min_duration = 0.1, max_duration = 40;
  bool skip_bad_lines = false;  // data.on_error = skip (the loader's skip_bad_audio follows it)
};

// The manifests of settings.sources (only those of task `only`, when given), read with the data settings'
// policy; no source, or a source with no usable example, is an error.
std::vector<LoaderSource> read_sources(const DataSettings& settings, std::optional<Task> only = std::nullopt);

}  // namespace vtb::data
