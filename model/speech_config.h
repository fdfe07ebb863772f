// Shapes of the speech side: the FastConformer encoder and the Conformer modality adapter (docs/design.md §2).
// Defaults are the paper's (Canary-1B encoder, 2-layer adapter).
#pragma once

#include <cstdint>

namespace vtb::model {

struct ConformerShape {
  int64_t d_model = 1024;
  int64_t layers = 24;
  int64_t heads = 8;
  int64_t ff_dim = 4096;
  int64_t conv_kernel = 9;
  double dropout = 0.1;  // FF, attention output, conv output and pre-encoder dropout
  bool xscaling = true;  // multiply inputs by √d_model before the first layer

  int64_t layer_parameter_count() const;
};

struct EncoderConfig {
  int64_t n_mels = 128;
  int64_t subsampling_factor = 8;  // dw_striding: log2(factor) stride-2 stages
  int64_t subsampling_channels = 256;
  ConformerShape conformer;  // Canary-1B: xscaling UNCONFIRMED, kept on as NeMo's default

  int64_t subsampled_mels() const;  // frequency bins after the stride-2 stages
  // Encoder output frames for `feature_frames` input frames (NeMo's calc_length per stage), computed on the
  // host, so that splitting a batch's frames by length reads nothing back from the device.
  int64_t output_frames(int64_t feature_frames) const;
  int64_t parameter_count() const;
  void validate() const;
};

struct AdapterConfig {
  int64_t input_dim = 1024;   // the encoder's d_model
  int64_t output_dim = 2048;  // the LLM's width (the projection)
  ConformerShape conformer{1024, 2, 8, 4096, 9, 0.1, true};

  int64_t parameter_count() const;  // pre-encode Linear + layers (the projection is separate)
  int64_t projection_parameter_count() const { return conformer.d_model * output_dim + output_dim; }
};

}  // namespace vtb::model
