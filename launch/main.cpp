// vtb: the command line. Dispatches to a subcommand and turns its errors into messages and exit codes.
#include <mpi.h>
#include <spdlog/spdlog.h>
#include <torch/cuda.h>
#include <torch/version.h>

#ifdef VTB_WITH_CUDA
#include <cuda_runtime_api.h>
#include <nccl.h>
#endif

#include <cstring>
#include <iostream>
#include <string>

#include "dist/exit_codes.h"
#include "dist/parameter_check.h"
#include "dist/world.h"
#include "launch/commands.h"
#include "launch/config.h"

namespace {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(int, char**);
};

// Every command, in the order `vtb --help` lists them.
const Command kCommands[] = {
    {"train", "single-stage joint speech-text SFT (under mpirun/srun); resumes from the run folder",
     vtb::train_command},
    {"generate", "answer one mixed-modal prompt (text and <audio:PATH> segments) with a checkpoint",
     vtb::generate_command},
    {"chat", "a multi-turn conversation with a checkpoint in the terminal (text and <audio:PATH> turns)",
     vtb::chat_command},
    {"eval", "decode a manifest with a checkpoint, sharded over ranks, and score it (WER, BLEU, ROUGE-L, exact match)",
     vtb::eval_command},
    {"config", "print the resolved configuration, or every key with --keys", vtb::config_command},
    {"dist check", "verify collectives and measure bandwidth across the job's ranks (under mpirun/srun)",
     vtb::dist_check_command},
    {"ckpt inspect", "files, datasets and training attributes of a checkpoint (or a run's latest)",
     vtb::ckpt_inspect_command},
    {"ckpt verify", "read every dataset (fletcher32) and check a checkpoint's structure", vtb::ckpt_verify_command},
    {"ckpt diff", "per-tensor max |A - B| of two checkpoints", vtb::ckpt_diff_command},
    {"ckpt export", "LoRA as a PEFT adapter, speech modules as safetensors, optionally the merged LLM",
     vtb::ckpt_export_command},
    {"metrics wer", "corpus WER of hypothesis and reference files (English normaliser on by default)",
     vtb::metrics_wer_command},
    {"metrics bleu", "corpus BLEU as sacreBLEU's default, with its signature", vtb::metrics_bleu_command},
    {"model summary", "parameter counts per part of the configured speech LM, without building it",
     vtb::model_summary_command},
    {"data features", "log-mel features of an audio file as training computes them, as .npy",
     vtb::data_features_command},
    {"data synth", "make a speech corpus (ASR, AST, SQA, text SFT) with espeak-ng, flite, festival; its tokenizer",
     vtb::data_synth_command},
    {"data mixgen", "mixed-modal SFT from text SFT: spans of user turns replaced by synthesized speech",
     vtb::data_mixgen_command},
    {"data tokenizer", "train a SentencePiece tokenizer with vtb's special pieces", vtb::data_tokenizer_command},
    {"data shard", "write a speech manifest as NeMo tarred, Lhotse Shar or WebDataset tar shards",
     vtb::data_shard_command},
    {"data epoch", "read one epoch of a data source as training does (mpirun: each rank its part), timed",
     vtb::data_epoch_command},
    {"lm pretrain", "trains a small text LLM on all weights and saves it in Hugging Face layout (the stand-in base)",
     vtb::lm_pretrain_command},
    {"encoder pretrain",
     "trains the speech encoder alone with CTC on the asr sources (the stand-in pretrained encoder)",
     vtb::encoder_pretrain_command},
    {"encoder import", "a NeMo .nemo's FastConformer encoder as model.encoder safetensors, its settings checked",
     vtb::encoder_import_command},
    {"encoder forward", "the speech encoder on one utterance's features (and their gradient), as .npy",
     vtb::encoder_forward_command},
    {"lm logits", "float32 logits of a Hugging Face-layout LLM for given token ids, as .npy", vtb::lm_logits_command},
};

std::string version_text() {
  char mpi[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(mpi, &len);
  std::string mpi_text(mpi, static_cast<size_t>(len));
  mpi_text = mpi_text.substr(0, mpi_text.find(','));
#ifdef VTB_WITH_CUDA
  const std::string cuda = "CUDA/NCCL: built in (CUDA " + std::to_string(CUDART_VERSION / 1000) + "." +
                           std::to_string(CUDART_VERSION % 1000 / 10) + ", NCCL " + std::to_string(NCCL_MAJOR) + "." +
                           std::to_string(NCCL_MINOR) + "." + std::to_string(NCCL_PATCH) + "; " +
                           std::to_string(torch::cuda::device_count()) + " GPU(s) visible)";
#else
  const std::string cuda = "CUDA/NCCL: not built (CPU-only build)";
#endif
  return std::string("vtb ") + VTB_VERSION + " (LibTorch " + TORCH_VERSION + ", " + mpi_text + ", " + cuda + ")";
}

void print_help() {
  std::cout << "usage: vtb <command> [options] [--section.key=value ...]\n\n"
               "Trains speech language models the VoiceTextBlender way: a frozen LLM with LoRA, a speech encoder\n"
               "and a modality adapter, in one joint SFT stage. Distributed commands run under mpirun or srun.\n\n"
               "commands:\n";
  for (const auto& c : kCommands)
    std::cout << "  " << c.name << std::string(16 - std::strlen(c.name), ' ') << c.summary << "\n";
  std::cout << "\n'vtb <command> --help' documents each command. 'vtb --version' prints versions.\n";
}

int dispatch(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    print_help();
    return argc < 2 ? vtb::kExitUsage : vtb::kExitOk;
  }
  if (std::strcmp(argv[1], "--version") == 0) {
    std::cout << version_text() << "\n";
    return vtb::kExitOk;
  }
  for (const auto& c : kCommands) {
    // A two-word command ("dist check") consumes both words; the subcommand sees argv[0] = last word.
    const std::string name = c.name;
    const auto space = name.find(' ');
    if (space == std::string::npos && name == argv[1]) return c.run(argc - 1, argv + 1);
    if (space != std::string::npos && argc >= 3 && name.substr(0, space) == argv[1] &&
        name.substr(space + 1) == argv[2])
      return c.run(argc - 2, argv + 2);
  }
  std::cerr << "vtb: unknown command '" << argv[1] << (argc >= 3 ? std::string(" ") + argv[2] : "")
            << "'. Run 'vtb --help' for the list of commands.\n";
  return vtb::kExitUsage;
}

// Ends this rank after an error. A multi-rank job whose ranks may not all have failed ends through
// MPI_Abort, so no peer is left waiting in a collective; errors every rank raised alike end normally.
int fail(const std::string& message, int code, bool all_ranks_failed) {
  const auto& w = vtb::dist::world();
  if (w.size > 1 && !all_ranks_failed) vtb::dist::abort_job("error: " + message, code);
  if (spdlog::default_logger()->name() == "vtb") {
    spdlog::error("{}", message);
  } else {
    std::cerr << "vtb: error: " << message << "\n";
  }
  vtb::dist::finalize_world();
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const int code = dispatch(argc, argv);
    vtb::dist::finalize_world();
    return code;
  } catch (const vtb::ConfigError& e) {
    return fail(e.what(), vtb::kExitUsage, false);
  } catch (const vtb::dist::PeerMismatchError& e) {
    return fail(e.what(), vtb::kExitPeerMismatch, true);
  } catch (const std::exception& e) {
    return fail(e.what(), vtb::kExitError, false);
  }
}
