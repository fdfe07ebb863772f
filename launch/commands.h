// The `vtb` subcommands. Each parses its own arguments (argv[0] is the subcommand) and returns an exit
// code (dist/exit_codes.h); errors reach main() as exceptions.
#pragma once

namespace vtb {

int config_command(int argc, char** argv);            // vtb config
int dist_check_command(int argc, char** argv);        // vtb dist check
int lm_logits_command(int argc, char** argv);         // vtb lm logits
int lm_pretrain_command(int argc, char** argv);       // vtb lm pretrain
int encoder_pretrain_command(int argc, char** argv);  // vtb encoder pretrain
int encoder_import_command(int argc, char** argv);    // vtb encoder import
int encoder_forward_command(int argc, char** argv);   // vtb encoder forward
int train_command(int argc, char** argv);             // vtb train
int eval_command(int argc, char** argv);              // vtb eval
int generate_command(int argc, char** argv);          // vtb generate
int chat_command(int argc, char** argv);              // vtb chat
int ckpt_inspect_command(int argc, char** argv);      // vtb ckpt inspect
int ckpt_verify_command(int argc, char** argv);       // vtb ckpt verify
int ckpt_diff_command(int argc, char** argv);         // vtb ckpt diff
int ckpt_export_command(int argc, char** argv);       // vtb ckpt export
int metrics_wer_command(int argc, char** argv);       // vtb metrics wer
int metrics_bleu_command(int argc, char** argv);      // vtb metrics bleu
int model_summary_command(int argc, char** argv);     // vtb model summary
int data_features_command(int argc, char** argv);     // vtb data features
int data_synth_command(int argc, char** argv);        // vtb data synth
int data_mixgen_command(int argc, char** argv);       // vtb data mixgen
int data_tokenizer_command(int argc, char** argv);    // vtb data tokenizer
int data_shard_command(int argc, char** argv);        // vtb data shard
int data_epoch_command(int argc, char** argv);        // vtb data epoch

}  // namespace vtb
