// Every configuration key vtb knows, with its meaning. Keep sections together: the resolved config prints in
// this order. A key's default is the default of the struct field it sets (train::TrainSettings and the
// component structs it holds: model::SpeechLMSettings, data::DataSettings, dist::DataParallelSettings,
// train::CheckpointSettings, ...), so each default has one home; only keys that set no struct (run.threads, log.*,
// ckpt.async, ...) keep theirs here.
#include <cstdint>
#include <string>

#include "launch/config.h"
#include "train/trainer.h"

namespace vtb {
namespace {

double mib(size_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

std::string targets(const model::LoraConfig& lora) {
  std::string out;
  for (const char* t : model::kLoraTargets)
    if (lora.targets.count(t)) out += (out.empty() ? "" : ",") + std::string(t);
  return out;
}

}  // namespace

bool model_defining(const std::string& key) {
  const std::string section = key.substr(0, key.find('.'));
  return section == "llm" || section == "encoder" || section == "adapter" || section == "lora" ||
         key == "features.n_mels" || key == "features.pad_mode" || key == "features.frame_rule" ||
         key == "data.audio_piece";
}

void declare_config_keys(boost::program_options::options_description& options) {
  namespace po = boost::program_options;
  const train::TrainSettings t;
  const train::ScheduleSettings& schedule = t.schedule;
  const data::DataSettings& d = t.data;
  const model::SpeechLMConfig& m = t.model.config;
  const data::FeatureConfig& f = d.loader.features;
  const data::SpecAugmentConfig& a = d.loader.spec_augment;
  // One key per entry, in the order the resolved config prints.
  // clang-format off
  options.add_options()
      // [run]
      ("run.dir", po::value<std::string>()->default_value(t.run_dir),
       "run folder: checkpoints, metrics.jsonl, logs")
      ("run.device", po::value<std::string>()->default_value("cpu"), "cpu (MPI collectives) or cuda (NCCL collectives)")
      ("run.threads", po::value<int64_t>()->default_value(0)->notifier(at_least<int64_t>(0)),
       "intra-op threads per rank; 0 = the CPUs this rank may use / ranks sharing them")
      ("run.deterministic", po::value<bool>()->default_value(false),
       "deterministic kernels only (LibTorch's use_deterministic_algorithms, cuDNN deterministic, no TF32): two "
       "runs on a GPU give the same losses bit for bit; slower. CPU runs are deterministic anyway")
      ("run.peak_tflops", po::value<double>()->default_value(t.metrics.peak_tflops)->notifier(at_least(0.0)),
       "peak TFLOP/s of one rank's device, for MFU in metrics.jsonl (H100 bf16 dense: 989); 0 = the matmul rate "
       "run.precision = auto measured, or no MFU")
      ("run.precision", po::value<std::string>()->default_value(choice_name(t.precision, train::kPrecisions))->notifier(
         [](const std::string& v) { parse_choice<train::Precision>("run.precision", v, train::kPrecisions); }),
       "fp32, bf16 (autocast; float32 weights, gradients and AdamW state) or auto: bf16 where a bf16 matmul on "
       "rank 0 runs at least 2x an fp32 one (Note [Choosing the precision]; pin fp32 or bf16 for bit-exact resumes)")
      // [log]
      ("log.level", po::value<std::string>()->default_value("info"), "trace, debug, info, warn, error")
      ("log.all_ranks", po::value<bool>()->default_value(false), "info lines from every rank, not only rank 0")
      // [dist]
      ("dist.timeout_s", po::value<double>()->default_value(dist::CommunicatorOptions{}.timeout_s)->notifier([](const double& v) {
         positive()(v);
         // Past a day the watchdog is off in all but name: a lost rank would hold the job (and its nodes) for days.
         if (v > 86400) throw OutOfRange("must be at most 86400 (a day): a longer deadline turns the watchdog off"); }),
       "deadline of every collective in seconds; past it the job ends with a message naming the collective")
      ("dist.first_bucket_mib", po::value<double>()->default_value(mib(t.parallel.buckets.first_bucket_bytes))->notifier(positive()),
       "size of the first gradient bucket (small, so reduction starts early in backward)")
      ("dist.bucket_mib", po::value<double>()->default_value(mib(t.parallel.buckets.bucket_bytes))->notifier(positive()), "size of the other gradient buckets")
      ("dist.zero", po::value<int64_t>()->default_value(t.parallel.zero)->notifier([](const int64_t& v) {
         if (v < 0 || v > 2) throw OutOfRange("must be 0, 1 or 2"); }),
       "0: every rank holds all AdamW state and gradients; 1: AdamW state sharded over the ranks (ZeRO-1, Note "
       "[Optimizer shards]); 2: and the averaged gradients, buckets reduce-scattered (ZeRO-2, Note [Scattered buckets])")
      // [features]: log-mel front end (docs/design.md §2); the rest of the recipe is fixed (data/features.h)
      ("features.n_mels", po::value<int64_t>()->default_value(f.n_mels)->notifier(at_least<int64_t>(1)), "mel bins (must equal encoder.n_mels)")
      ("features.pad_mode", po::value<std::string>()->default_value(choice_name(f.pad_mode, data::kPadModes)),
       "STFT centre padding: reflect (released FastConformer checkpoints) or constant (NeMo since 2025-07)")
      ("features.frame_rule", po::value<std::string>()->default_value(choice_name(f.frame_rule, data::kFrameRules)),
       "valid frames: plus_one = samples/160 + 1 (reflect era) or floor = samples/160")
      ("features.dither", po::value<double>()->default_value(f.dither)->notifier(at_least(0.0)), "dither added in training only")
      // SpecAugment in training (NeMo's FastConformer defaults); 0 masks turn a kind off
      ("features.freq_masks", po::value<int64_t>()->default_value(a.freq_masks)->notifier(at_least<int64_t>(0)), "SpecAugment: frequency masks per utterance")
      ("features.freq_width", po::value<int64_t>()->default_value(a.freq_width)->notifier(at_least<int64_t>(0)), "SpecAugment: widest frequency mask, mel bins")
      ("features.time_masks", po::value<int64_t>()->default_value(a.time_masks)->notifier(at_least<int64_t>(0)), "SpecAugment: time masks per utterance")
      ("features.time_width", po::value<double>()->default_value(a.time_width)->notifier(between(0, 1)), "SpecAugment: widest time mask, fraction of the frames")
      // [train]
      ("train.seed", po::value<int64_t>()->default_value(t.seed), "seed of initialisation, dropout and data order")
      ("train.max_steps", po::value<int64_t>()->default_value(schedule.max_steps)->notifier(at_least<int64_t>(1)), "the run stops here and commits a checkpoint")
      ("train.micro_batches", po::value<int64_t>()->default_value(schedule.micro_batches)->notifier(at_least<int64_t>(1)), "gradient accumulation: batches per step per rank")
      ("train.lr", po::value<double>()->default_value(schedule.lr)->notifier(positive()), "peak learning rate")
      ("train.lr_min", po::value<double>()->default_value(schedule.lr_min)->notifier(at_least(0.0)), "cosine floor")
      ("train.warmup_steps", po::value<int64_t>()->default_value(schedule.warmup_steps)->notifier(at_least<int64_t>(0)), "linear warmup")
      ("train.weight_decay", po::value<double>()->default_value(schedule.adamw.weight_decay)->notifier(at_least(0.0)), "AdamW decoupled weight decay (not on norms, biases, pos biases)")
      ("train.beta1", po::value<double>()->default_value(schedule.adamw.beta1)->notifier(between(0, 1, true)), "AdamW beta1")
      ("train.beta2", po::value<double>()->default_value(schedule.adamw.beta2)->notifier(between(0, 1, true)), "AdamW beta2")
      ("train.fused_adamw", po::value<std::string>()->default_value(choice_name(schedule.adamw.fused, optim::kFusedAdamW))->notifier(
         [](const std::string& v) { parse_choice<optim::AdamWOptions::Fused>("train.fused_adamw", v, optim::kFusedAdamW); }),
       "AdamW in LibTorch's fused kernel: on, off (written out in ATen ops) or auto (on for CUDA; off on CPU, where "
       "the fused kernel would make dist.zero 1/2 differ from 0 by an ulp; Note [Fused AdamW])")
      ("train.clip", po::value<double>()->default_value(schedule.clip)->notifier(at_least(0.0)), "global gradient-norm clip (0 = off)")
      ("train.max_bad_steps", po::value<int64_t>()->default_value(schedule.max_bad_steps)->notifier(at_least<int64_t>(1)), "consecutive NaN/Inf steps that stop the run")
      ("train.fixed_batch", po::value<std::string>()->default_value(t.fixed_batch), "benchmarks: a safetensors batch trained on every step instead of the data mix; writes RUN_DIR/initial_parameters.safetensors (Note [Fixed batch])")
      ("train.log_every", po::value<int64_t>()->default_value(t.metrics.log_every)->notifier(at_least<int64_t>(1)), "progress line every N steps (metrics.jsonl gets every step)")
      // [ckpt]
      ("ckpt.every_steps", po::value<int64_t>()->default_value(t.ckpt.every_steps)->notifier(at_least<int64_t>(0)), "checkpoint every N steps (0 = only at the end)")
      ("ckpt.keep_last", po::value<int64_t>()->default_value(t.ckpt.keep_last)->notifier(at_least<int64_t>(1)), "committed checkpoints kept")
      ("ckpt.async", po::value<bool>()->default_value(false),
       "write checkpoints in a background thread (one in flight) while training continues")
      ("ckpt.every_minutes", po::value<double>()->default_value(t.ckpt.every_minutes)->notifier(at_least(0.0)), "also checkpoint when this many minutes passed (0 = off)")
      // [data]
      ("data.on_error", po::value<std::string>()->default_value(choice_name(d.skip_bad_lines, data::kOnErrorSkips)),
       "a bad manifest line or unreadable audio: fail (error naming file:line) or skip (log and count)")
      ("data.tokenizer", po::value<std::string>()->default_value(d.tokenizer), "SentencePiece model")
      ("data.audio_piece", po::value<std::string>()->default_value(d.audio_piece), "the audio placeholder's piece (Gemma: <unused0>)")
      ("data.source", po::value<std::vector<std::string>>()->composing(),
       "one per source, repeatable: NAME KIND WEIGHT MANIFEST [DEFAULT PROMPT...] (KIND: asr, ast, sqa, text, mixed); "
       "sources given on the command line are added to those of the file")
      ("data.mix", po::value<std::string>()->default_value(choice_name(d.mix, data::kMixModes)), "per_batch (one source per step, the paper's) or per_sample")
      ("data.max_seconds", po::value<double>()->default_value(d.limits.max_seconds)->notifier(at_least(0.0)), "audio seconds per batch per rank (0 = unbounded)")
      ("data.max_tokens", po::value<int64_t>()->default_value(d.limits.max_tokens)->notifier(at_least<int64_t>(0)), "sequence tokens per batch per rank (0 = unbounded)")
      ("data.max_examples", po::value<int64_t>()->default_value(d.limits.max_examples)->notifier(at_least<int64_t>(0)), "examples per batch per rank (0 = unbounded)")
      ("data.bucket_window", po::value<int64_t>()->default_value(d.limits.bucket_window)->notifier(at_least<int64_t>(1)), "examples per length-bucketing chunk")
      ("data.min_duration", po::value<double>()->default_value(d.min_duration)->notifier(at_least(0.0)), "shorter audio is filtered out")
      ("data.max_duration", po::value<double>()->default_value(d.max_duration)->notifier(positive()), "longer audio is filtered out")
      ("data.workers", po::value<int64_t>()->default_value(d.loader.workers)->notifier(at_least<int64_t>(0)), "background loader threads per rank")
      // Waveform augmentation in training (data/augment.h); the defaults leave it off
      ("data.speed_factors", po::value<std::string>()->default_value("1.0"),
       "speed perturbation: factors drawn per utterance, comma-separated, each in [0.5, 2] (e.g. 0.9,1.0,1.1; 1.0 = off)")
      ("data.noise_prob", po::value<double>()->default_value(d.loader.augment.noise_prob)->notifier(between(0, 1)), "probability of additive white noise per utterance")
      ("data.noise_snr_min_db", po::value<double>()->default_value(d.loader.augment.noise_snr_min_db), "additive noise: lowest SNR, dB")
      ("data.noise_snr_max_db", po::value<double>()->default_value(d.loader.augment.noise_snr_max_db), "additive noise: highest SNR, dB")
      ("data.reverb_prob", po::value<double>()->default_value(d.loader.augment.reverb_prob)->notifier(between(0, 1)), "probability of synthetic reverberation per utterance")
      ("data.reverb_rt60_min_s", po::value<double>()->default_value(d.loader.augment.reverb_rt60_min_s)->notifier(positive()), "reverberation: shortest RT60, s")
      ("data.reverb_rt60_max_s", po::value<double>()->default_value(d.loader.augment.reverb_rt60_max_s)->notifier(positive()), "reverberation: longest RT60, s")
      // [model]
      ("model.llm", po::value<std::string>()->default_value(t.model.llm_dir),
       "Hugging Face folder of the pretrained LLM (config.json + safetensors); empty = a stand-in built from [llm]")
      ("model.encoder", po::value<std::string>()->default_value(t.model.encoder_init),
       "safetensors of a pretrained speech encoder (encoder.* names, e.g. from vtb encoder pretrain) to start "
       "from; empty = random initialisation")
      ("model.frozen_dtype", po::value<std::string>()->default_value(choice_name(t.model.frozen_dtype, model::kFrozenDtypes))->notifier(
         [](const std::string& v) { parse_choice<model::FrozenDtype>("model.frozen_dtype", v, model::kFrozenDtypes); }),
       "training: storage of the frozen LLM's projection weights. auto = bfloat16 when the step computes in bf16 "
       "(the same bits under autocast, half the memory; Note [Frozen weights in bf16]), float32 otherwise")
      // [llm]: the stand-in LLM's shape (ignored when model.llm is set). Defaults: Gemma-1 2B.
      ("llm.family", po::value<std::string>()->default_value(m.llm.family), "gemma or llama")
      ("llm.vocab", po::value<int64_t>()->default_value(m.llm.vocab)->notifier(at_least<int64_t>(1)), "vocabulary size")
      ("llm.hidden", po::value<int64_t>()->default_value(m.llm.hidden)->notifier(at_least<int64_t>(1)), "model width")
      ("llm.intermediate", po::value<int64_t>()->default_value(m.llm.intermediate)->notifier(at_least<int64_t>(1)), "feed-forward width")
      ("llm.layers", po::value<int64_t>()->default_value(m.llm.layers)->notifier(at_least<int64_t>(1)), "decoder layers")
      ("llm.heads", po::value<int64_t>()->default_value(m.llm.heads)->notifier(at_least<int64_t>(1)), "attention heads")
      ("llm.kv_heads", po::value<int64_t>()->default_value(m.llm.kv_heads)->notifier(at_least<int64_t>(1)), "key/value heads (1 = multi-query)")
      ("llm.head_dim", po::value<int64_t>()->default_value(m.llm.head_dim)->notifier(at_least<int64_t>(1)), "per-head width")
      ("llm.rms_eps", po::value<double>()->default_value(m.llm.rms_eps)->notifier(positive()), "RMSNorm epsilon")
      ("llm.rope_theta", po::value<double>()->default_value(m.llm.rope_theta)->notifier(positive()), "RoPE base")
      ("llm.tie_embeddings", po::value<bool>()->default_value(m.llm.tie_embeddings), "LM head shares the embedding matrix")
      // [encoder]: FastConformer. Defaults: Canary-1B's encoder.
      ("encoder.n_mels", po::value<int64_t>()->default_value(m.encoder.n_mels)->notifier(at_least<int64_t>(1)), "input mel bins")
      ("encoder.subsampling_factor", po::value<int64_t>()->default_value(m.encoder.subsampling_factor)->notifier(at_least<int64_t>(1)), "dw_striding time reduction (power of 2)")
      ("encoder.subsampling_channels", po::value<int64_t>()->default_value(m.encoder.subsampling_channels)->notifier(at_least<int64_t>(1)), "subsampling conv channels")
      ("encoder.d_model", po::value<int64_t>()->default_value(m.encoder.conformer.d_model)->notifier(at_least<int64_t>(1)), "width")
      ("encoder.layers", po::value<int64_t>()->default_value(m.encoder.conformer.layers)->notifier(at_least<int64_t>(1)), "Conformer layers")
      ("encoder.heads", po::value<int64_t>()->default_value(m.encoder.conformer.heads)->notifier(at_least<int64_t>(1)), "attention heads")
      ("encoder.ff_dim", po::value<int64_t>()->default_value(m.encoder.conformer.ff_dim)->notifier(at_least<int64_t>(1)), "feed-forward width")
      ("encoder.conv_kernel", po::value<int64_t>()->default_value(m.encoder.conformer.conv_kernel)->notifier(at_least<int64_t>(1)), "depthwise conv kernel (odd)")
      ("encoder.dropout", po::value<double>()->default_value(m.encoder.conformer.dropout)->notifier(between(0, 1, true)), "dropout in every block")
      ("encoder.xscaling", po::value<bool>()->default_value(m.encoder.conformer.xscaling), "scale inputs by sqrt(d_model)")
      // [adapter]: Conformer modality adapter, no time reduction, then a Linear to the LLM width.
      ("adapter.d_model", po::value<int64_t>()->default_value(m.adapter.conformer.d_model)->notifier(at_least<int64_t>(1)), "width")
      ("adapter.layers", po::value<int64_t>()->default_value(m.adapter.conformer.layers)->notifier(at_least<int64_t>(1)), "Conformer layers")
      ("adapter.heads", po::value<int64_t>()->default_value(m.adapter.conformer.heads)->notifier(at_least<int64_t>(1)), "attention heads")
      ("adapter.ff_dim", po::value<int64_t>()->default_value(m.adapter.conformer.ff_dim)->notifier(at_least<int64_t>(1)), "feed-forward width")
      ("adapter.conv_kernel", po::value<int64_t>()->default_value(m.adapter.conformer.conv_kernel)->notifier(at_least<int64_t>(1)), "depthwise conv kernel (odd)")
      ("adapter.dropout", po::value<double>()->default_value(m.adapter.conformer.dropout)->notifier(between(0, 1, true)), "dropout in every block")
      ("adapter.xscaling", po::value<bool>()->default_value(m.adapter.conformer.xscaling), "scale inputs by sqrt(d_model)")
      // [lora]
      ("lora.rank", po::value<int64_t>()->default_value(m.lora.rank)->notifier(at_least<int64_t>(0)), "adapter rank (0 = no LoRA)")
      ("lora.alpha", po::value<double>()->default_value(m.lora.alpha)->notifier(positive()), "scale = alpha / rank")
      ("lora.dropout", po::value<double>()->default_value(m.lora.dropout)->notifier(between(0, 1, true)), "dropout on the adapter input")
      ("lora.layout", po::value<std::string>()->default_value(choice_name(m.lora.layout, model::kLoraLayouts)),
       "fused (NeMo: shared A on q|k|v and gate|up, as the paper counts) or separate (PEFT)")
      ("lora.targets", po::value<std::string>()->default_value(targets(m.lora)), "projections that get adapters");
  // clang-format on
}

}  // namespace vtb
