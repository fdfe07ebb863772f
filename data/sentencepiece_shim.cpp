#include "data/sentencepiece_shim.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

int fail(const std::string& message, char* err, size_t errlen) {
  if (errlen > 0) {
    std::strncpy(err, message.c_str(), errlen - 1);
    err[errlen - 1] = '\0';
  }
  return -1;
}

sentencepiece::SentencePieceProcessor* sp(void* p) { return static_cast<sentencepiece::SentencePieceProcessor*>(p); }

}  // namespace

extern "C" {

void* vtb_spm_load(const char* path, char* err, size_t errlen) {
  auto* p = new sentencepiece::SentencePieceProcessor();
  const auto status = p->Load(path);
  if (!status.ok()) {
    fail(status.ToString(), err, errlen);
    delete p;
    return nullptr;
  }
  return p;
}

void vtb_spm_free(void* processor) { delete sp(processor); }
int vtb_spm_piece_to_id(void* processor, const char* piece) { return sp(processor)->PieceToId(piece); }
int vtb_spm_unk_id(void* processor) { return sp(processor)->unk_id(); }
int vtb_spm_size(void* processor) { return sp(processor)->GetPieceSize(); }

int vtb_spm_encode(void* processor, const char* text, size_t len, int* ids, int cap, char* err, size_t errlen) {
  std::vector<int> out;
  const auto status = sp(processor)->Encode(std::string(text, len), &out);
  if (!status.ok()) return fail(status.ToString(), err, errlen);
  for (size_t i = 0; i < out.size() && static_cast<int>(i) < cap; ++i) ids[i] = out[i];
  return static_cast<int>(out.size());
}

int vtb_spm_decode(void* processor, const int* ids, int n, char* out, int cap, char* err, size_t errlen) {
  std::string text;
  const auto status = sp(processor)->Decode(std::vector<int>(ids, ids + n), &text);
  if (!status.ok()) return fail(status.ToString(), err, errlen);
  std::memcpy(out, text.data(), std::min<size_t>(text.size(), static_cast<size_t>(cap)));
  return static_cast<int>(text.size());
}

int vtb_spm_id_to_piece(void* processor, int id, char* out, int cap) {
  const std::string piece = sp(processor)->IdToPiece(id);
  std::memcpy(out, piece.data(), std::min<size_t>(piece.size(), static_cast<size_t>(cap)));
  return static_cast<int>(piece.size());
}

int vtb_spm_train(const char* const* keys, const char* const* values, int n, char* err, size_t errlen) {
  std::unordered_map<std::string, std::string> args;
  for (int i = 0; i < n; ++i) args[keys[i]] = values[i];
  const auto status = sentencepiece::SentencePieceTrainer::Train(args);
  return status.ok() ? 0 : fail(status.ToString(), err, errlen);
}

}  // extern "C"
