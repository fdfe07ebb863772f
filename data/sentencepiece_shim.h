// C interface of libvtb_sentencepiece, the one place that links SentencePiece.
//
// Note [SentencePiece isolation]: Debian's libsentencepiece embeds and exports its own copy of protobuf
// 3.14, while LibTorch loads libprotobuf 3.21; in one symbol scope the two clash and the process crashes
// while loading (protobuf's static initialisers bind to the wrong copy). So SentencePiece lives in this
// small shared library, opened with dlopen(RTLD_LOCAL | RTLD_DEEPBIND): its protobuf stays private to it.
#pragma once

#include <cstddef>

extern "C" {
// Each returns 0 on success, or writes a message to err (errlen bytes) and returns -1.
void* vtb_spm_load(const char* path, char* err, size_t errlen);
void vtb_spm_free(void* processor);
int vtb_spm_piece_to_id(void* processor, const char* piece);
int vtb_spm_unk_id(void* processor);
int vtb_spm_size(void* processor);
// Writes up to `cap` ids; returns the number of ids (call again with a larger buffer if > cap), or -1.
int vtb_spm_encode(void* processor, const char* text, size_t len, int* ids, int cap, char* err, size_t errlen);
// Writes up to `cap` bytes; returns the byte length (call again if > cap), or -1.
int vtb_spm_decode(void* processor, const int* ids, int n, char* out, int cap, char* err, size_t errlen);
int vtb_spm_id_to_piece(void* processor, int id, char* out, int cap);
// `keys` and `values`: n training flags (SentencePieceTrainer's map form).
int vtb_spm_train(const char* const* keys, const char* const* values, int n, char* err, size_t errlen);
}
