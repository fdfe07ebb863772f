// Every configuration key vtb knows, with its default and meaning. Keep sections together: the
// resolved config prints in this order.
#include <cstdint>
#include <string>

#include "launch/config.h"

namespace vtb {

void declare_config_keys(boost::program_options::options_description& options) {
  namespace po = boost::program_options;
  // One key per entry, in the order the resolved config prints.
  // clang-format off
  options.add_options()
      // [run]
      ("run.dir", po::value<std::string>()->default_value("runs/default"),
       "run folder: checkpoints, metrics.jsonl, logs")
      ("run.device", po::value<std::string>()->default_value("cpu"), "cpu (MPI collectives) or cuda (NCCL collectives)")
      ("run.threads", po::value<int64_t>()->default_value(0),
       "intra-op threads per rank; 0 = the CPUs this rank may use / ranks sharing them")
      ("run.deterministic", po::value<bool>()->default_value(false),
       "deterministic kernels only (LibTorch's use_deterministic_algorithms, cuDNN deterministic, no TF32): two "
       "runs on a GPU give the same losses bit for bit; slower. CPU runs are deterministic anyway")
      ("run.peak_tflops", po::value<double>()->default_value(0),
       "peak TFLOP/s of one rank's device, for MFU in metrics.jsonl (H100 bf16 dense: 989); 0 = no MFU")
      // [log]
      ("log.level", po::value<std::string>()->default_value("info"), "trace, debug, info, warn, error")
      ("log.all_ranks", po::value<bool>()->default_value(false), "info lines from every rank, not only rank 0")
      // [dist]
      ("dist.timeout_s", po::value<double>()->default_value(600),
       "deadline of every collective in seconds; past it the job ends with a message naming the collective")
      ("dist.first_bucket_mib", po::value<double>()->default_value(1),
       "size of the first gradient bucket (small, so reduction starts early in backward)")
      ("dist.bucket_mib", po::value<double>()->default_value(25), "size of the other gradient buckets")
      // [features]: log-mel front end (docs/design.md §2); the rest of the recipe is fixed (data/features.h)
      ("features.n_mels", po::value<int64_t>()->default_value(128), "mel bins (must equal encoder.n_mels)")
      ("features.pad_mode", po::value<std::string>()->default_value("reflect"),
       "STFT centre padding: reflect (released FastConformer checkpoints) or constant (NeMo since 2025-07)")
      ("features.frame_rule", po::value<std::string>()->default_value("plus_one"),
       "valid frames: plus_one = samples/160 + 1 (reflect era) or floor = samples/160")
      ("features.dither", po::value<double>()->default_value(1e-5), "dither added in training only")
      // SpecAugment in training (NeMo's FastConformer defaults); 0 masks turn a kind off
      ("features.freq_masks", po::value<int64_t>()->default_value(2), "SpecAugment: frequency masks per utterance")
      ("features.freq_width", po::value<int64_t>()->default_value(27), "SpecAugment: widest frequency mask, mel bins")
      ("features.time_masks", po::value<int64_t>()->default_value(10), "SpecAugment: time masks per utterance")
      ("features.time_width", po::value<double>()->default_value(0.05), "SpecAugment: widest time mask, fraction of the frames")
      // [train]
      ("train.seed", po::value<int64_t>()->default_value(1234), "seed of initialisation, dropout and data order")
      ("train.max_steps", po::value<int64_t>()->default_value(100000), "the run stops here and commits a checkpoint")
      ("train.micro_batches", po::value<int64_t>()->default_value(1), "gradient accumulation: batches per step per rank")
      ("train.lr", po::value<double>()->default_value(1e-4), "peak learning rate")
      ("train.lr_min", po::value<double>()->default_value(1e-6), "cosine floor")
      ("train.warmup_steps", po::value<int64_t>()->default_value(2500), "linear warmup")
      ("train.weight_decay", po::value<double>()->default_value(1e-3), "AdamW decoupled weight decay (not on norms, biases, pos biases)")
      ("train.beta1", po::value<double>()->default_value(0.9), "AdamW beta1")
      ("train.beta2", po::value<double>()->default_value(0.98), "AdamW beta2")
      ("train.clip", po::value<double>()->default_value(1.0), "global gradient-norm clip (0 = off)")
      ("train.max_bad_steps", po::value<int64_t>()->default_value(10), "consecutive NaN/Inf steps that stop the run")
      ("train.log_every", po::value<int64_t>()->default_value(10), "progress line every N steps (metrics.jsonl gets every step)")
      // [ckpt]
      ("ckpt.every_steps", po::value<int64_t>()->default_value(1000), "checkpoint every N steps (0 = only at the end)")
      ("ckpt.keep_last", po::value<int64_t>()->default_value(3), "committed checkpoints kept")
      ("ckpt.async", po::value<bool>()->default_value(false),
       "write checkpoints in a background thread (one in flight) while training continues")
      ("ckpt.every_minutes", po::value<double>()->default_value(0), "also checkpoint when this many minutes passed (0 = off)")
      // [data]
      ("data.on_error", po::value<std::string>()->default_value("fail"),
       "a bad manifest line or unreadable audio: fail (error naming file:line) or skip (log and count)")
      ("data.tokenizer", po::value<std::string>()->default_value("data/synth/tokenizer.model"), "SentencePiece model")
      ("data.audio_piece", po::value<std::string>()->default_value("<audio>"), "the audio placeholder's piece (Gemma: <unused0>)")
      ("data.source", po::value<std::vector<std::string>>()->composing(),
       "one per source, repeatable: NAME KIND WEIGHT MANIFEST [DEFAULT PROMPT...] (KIND: asr, ast, sqa, text, mixed); "
       "sources given on the command line are added to those of the file")
      ("data.mix", po::value<std::string>()->default_value("per_batch"), "per_batch (one source per step, the paper's) or per_sample")
      ("data.max_seconds", po::value<double>()->default_value(60), "audio seconds per batch per rank (0 = unbounded)")
      ("data.max_tokens", po::value<int64_t>()->default_value(4096), "sequence tokens per batch per rank (0 = unbounded)")
      ("data.max_examples", po::value<int64_t>()->default_value(0), "examples per batch per rank (0 = unbounded)")
      ("data.bucket_window", po::value<int64_t>()->default_value(512), "examples per length-bucketing chunk")
      ("data.min_duration", po::value<double>()->default_value(0.1), "shorter audio is filtered out")
      ("data.max_duration", po::value<double>()->default_value(40), "longer audio is filtered out")
      ("data.workers", po::value<int64_t>()->default_value(2), "background loader threads per rank")
      // [model]
      ("model.llm", po::value<std::string>()->default_value(""),
       "Hugging Face folder of the pretrained LLM (config.json + safetensors); empty = a stand-in built from [llm]")
      ("model.encoder", po::value<std::string>()->default_value(""),
       "safetensors of a pretrained speech encoder (encoder.* names, e.g. from vtb encoder pretrain) to start "
       "from; empty = random initialisation")
      // [llm]: the stand-in LLM's shape (ignored when model.llm is set). Defaults: Gemma-1 2B.
      ("llm.family", po::value<std::string>()->default_value("gemma"), "gemma or llama")
      ("llm.vocab", po::value<int64_t>()->default_value(256000), "vocabulary size")
      ("llm.hidden", po::value<int64_t>()->default_value(2048), "model width")
      ("llm.intermediate", po::value<int64_t>()->default_value(16384), "feed-forward width")
      ("llm.layers", po::value<int64_t>()->default_value(18), "decoder layers")
      ("llm.heads", po::value<int64_t>()->default_value(8), "attention heads")
      ("llm.kv_heads", po::value<int64_t>()->default_value(1), "key/value heads (1 = multi-query)")
      ("llm.head_dim", po::value<int64_t>()->default_value(256), "per-head width")
      ("llm.rms_eps", po::value<double>()->default_value(1e-6), "RMSNorm epsilon")
      ("llm.rope_theta", po::value<double>()->default_value(10000), "RoPE base")
      ("llm.tie_embeddings", po::value<bool>()->default_value(true), "LM head shares the embedding matrix")
      // [encoder]: FastConformer. Defaults: Canary-1B's encoder.
      ("encoder.n_mels", po::value<int64_t>()->default_value(128), "input mel bins")
      ("encoder.subsampling_factor", po::value<int64_t>()->default_value(8), "dw_striding time reduction (power of 2)")
      ("encoder.subsampling_channels", po::value<int64_t>()->default_value(256), "subsampling conv channels")
      ("encoder.d_model", po::value<int64_t>()->default_value(1024), "width")
      ("encoder.layers", po::value<int64_t>()->default_value(24), "Conformer layers")
      ("encoder.heads", po::value<int64_t>()->default_value(8), "attention heads")
      ("encoder.ff_dim", po::value<int64_t>()->default_value(4096), "feed-forward width")
      ("encoder.conv_kernel", po::value<int64_t>()->default_value(9), "depthwise conv kernel (odd)")
      ("encoder.dropout", po::value<double>()->default_value(0.1), "dropout in every block")
      ("encoder.xscaling", po::value<bool>()->default_value(true), "scale inputs by sqrt(d_model)")
      // [adapter]: Conformer modality adapter, no time reduction, then a Linear to the LLM width.
      ("adapter.d_model", po::value<int64_t>()->default_value(1024), "width")
      ("adapter.layers", po::value<int64_t>()->default_value(2), "Conformer layers")
      ("adapter.heads", po::value<int64_t>()->default_value(8), "attention heads")
      ("adapter.ff_dim", po::value<int64_t>()->default_value(4096), "feed-forward width")
      ("adapter.conv_kernel", po::value<int64_t>()->default_value(9), "depthwise conv kernel (odd)")
      ("adapter.dropout", po::value<double>()->default_value(0.1), "dropout in every block")
      ("adapter.xscaling", po::value<bool>()->default_value(true), "scale inputs by sqrt(d_model)")
      // [lora]
      ("lora.rank", po::value<int64_t>()->default_value(32), "adapter rank (0 = no LoRA)")
      ("lora.alpha", po::value<double>()->default_value(32), "scale = alpha / rank")
      ("lora.dropout", po::value<double>()->default_value(0), "dropout on the adapter input")
      ("lora.layout", po::value<std::string>()->default_value("fused"),
       "fused (NeMo: shared A on q|k|v and gate|up, as the paper counts) or separate (PEFT)")
      ("lora.targets", po::value<std::string>()->default_value("q,k,v,o,gate,up,down"), "projections that get adapters");
  // clang-format on
}

}  // namespace vtb
