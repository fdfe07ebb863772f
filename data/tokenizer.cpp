#include "data/tokenizer.h"

#include <dlfcn.h>

#include <cstdlib>
#include <utility>

#include "data/sentencepiece_shim.h"

namespace vtb::data {
namespace {

// The shim's functions, resolved once (Note [SentencePiece isolation] in sentencepiece_shim.h).
struct Shim {
  decltype(&vtb_spm_load) load;
  decltype(&vtb_spm_free) free;
  decltype(&vtb_spm_piece_to_id) piece_to_id;
  decltype(&vtb_spm_unk_id) unk_id;
  decltype(&vtb_spm_size) size;
  decltype(&vtb_spm_encode) encode;
  decltype(&vtb_spm_decode) decode;
  decltype(&vtb_spm_id_to_piece) id_to_piece;
  decltype(&vtb_spm_train) train;
};

const Shim& shim() {
  static const Shim s = [] {
    const char* env = std::getenv("VTB_SENTENCEPIECE_SHIM");
    const std::string path = env != nullptr ? env : VTB_SENTENCEPIECE_SHIM;
    void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (h == nullptr)
      throw TokenizerError("cannot load the SentencePiece shim " + path + ": " + dlerror() +
                           " (set VTB_SENTENCEPIECE_SHIM to the path of libvtb_sentencepiece.so)");
    auto get = [&](const char* name) {
      void* f = dlsym(h, name);
      if (f == nullptr) throw TokenizerError(path + ": missing symbol " + name);
      return f;
    };
    Shim r;
    r.load = reinterpret_cast<decltype(r.load)>(get("vtb_spm_load"));
    r.free = reinterpret_cast<decltype(r.free)>(get("vtb_spm_free"));
    r.piece_to_id = reinterpret_cast<decltype(r.piece_to_id)>(get("vtb_spm_piece_to_id"));
    r.unk_id = reinterpret_cast<decltype(r.unk_id)>(get("vtb_spm_unk_id"));
    r.size = reinterpret_cast<decltype(r.size)>(get("vtb_spm_size"));
    r.encode = reinterpret_cast<decltype(r.encode)>(get("vtb_spm_encode"));
    r.decode = reinterpret_cast<decltype(r.decode)>(get("vtb_spm_decode"));
    r.id_to_piece = reinterpret_cast<decltype(r.id_to_piece)>(get("vtb_spm_id_to_piece"));
    r.train = reinterpret_cast<decltype(r.train)>(get("vtb_spm_train"));
    return r;
  }();
  return s;
}

}  // namespace

Tokenizer Tokenizer::load(const std::string& model_path, const std::string& audio_piece) {
  char err[512] = {0};
  void* p = shim().load(model_path.c_str(), err, sizeof err);
  if (p == nullptr) throw TokenizerError(model_path + ": cannot load SentencePiece model: " + err);
  Tokenizer t;
  t.sp_ = std::shared_ptr<void>(p, [](void* q) { shim().free(q); });
  std::string missing;
  auto find = [&](const std::string& piece) {
    const int id = shim().piece_to_id(p, piece.c_str());
    if (id == shim().unk_id(p) && piece != "<unk>") missing += " " + piece;
    return id;
  };
  t.special_.bos = find("<bos>");
  t.special_.eos = find("<eos>");
  t.special_.pad = find("<pad>");
  t.special_.start_of_turn = find("<start_of_turn>");
  t.special_.end_of_turn = find("<end_of_turn>");
  t.special_.audio = find(audio_piece);
  if (!missing.empty())
    throw TokenizerError(model_path + ": the tokenizer lacks the special piece(s)" + missing +
                         " (train one with 'vtb data tokenizer', or set the audio placeholder piece)");
  return t;
}

std::vector<int> Tokenizer::encode(const std::string& text) const {
  char err[512] = {0};
  std::vector<int> ids(text.size() + 8);
  int n = shim().encode(sp_.get(), text.data(), text.size(), ids.data(), static_cast<int>(ids.size()), err, sizeof err);
  if (n > static_cast<int>(ids.size())) {
    ids.resize(static_cast<size_t>(n));
    n = shim().encode(sp_.get(), text.data(), text.size(), ids.data(), n, err, sizeof err);
  }
  if (n < 0) throw TokenizerError(std::string("tokenizer: cannot encode text: ") + err);
  ids.resize(static_cast<size_t>(n));
  return ids;
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
  char err[512] = {0};
  std::string text(ids.size() * 8 + 16, '\0');
  int n = shim().decode(sp_.get(), ids.data(), static_cast<int>(ids.size()), text.data(), static_cast<int>(text.size()),
                        err, sizeof err);
  if (n > static_cast<int>(text.size())) {
    text.resize(static_cast<size_t>(n));
    n = shim().decode(sp_.get(), ids.data(), static_cast<int>(ids.size()), text.data(), n, err, sizeof err);
  }
  if (n < 0) throw TokenizerError(std::string("tokenizer: cannot decode ids: ") + err);
  text.resize(static_cast<size_t>(n));
  return text;
}

std::string Tokenizer::piece(int id) const {
  std::string out(64, '\0');
  int n = shim().id_to_piece(sp_.get(), id, out.data(), static_cast<int>(out.size()));
  if (n > static_cast<int>(out.size())) {
    out.resize(static_cast<size_t>(n));
    n = shim().id_to_piece(sp_.get(), id, out.data(), n);
  }
  out.resize(static_cast<size_t>(n));
  return out;
}

int Tokenizer::vocab_size() const { return shim().size(sp_.get()); }

void train_tokenizer(const std::vector<std::string>& input_files, int vocab_size, const std::string& out_prefix) {
  std::string inputs;
  for (const auto& f : input_files) {
    // SentencePiece reads --input as a comma-separated list, with no way to quote a comma.
    if (f.find(',') != std::string::npos)
      throw TokenizerError("tokenizer training: the path '" + f +
                           "' has a comma, which SentencePiece's list of "
                           "input files cannot hold: choose a folder without one");
    inputs += (inputs.empty() ? "" : ",") + f;
  }
  const std::vector<std::pair<std::string, std::string>> args{
      {"input", inputs},
      {"model_prefix", out_prefix},
      {"model_type", "unigram"},
      {"vocab_size", std::to_string(vocab_size)},
      {"hard_vocab_limit", "false"},
      {"character_coverage", "1.0"},
      {"pad_id", "0"},
      {"eos_id", "1"},
      {"bos_id", "2"},
      {"unk_id", "3"},
      {"pad_piece", "<pad>"},
      {"eos_piece", "<eos>"},
      {"bos_piece", "<bos>"},
      {"unk_piece", "<unk>"},
      {"user_defined_symbols", "<start_of_turn>,<end_of_turn>,<audio>,\n"},
      {"add_dummy_prefix", "false"},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},  // as Gemma's: spaces around audio placeholders survive
      {"split_digits", "true"},
      {"num_threads", "2"},
      {"minloglevel", "2"},
  };
  std::vector<const char*> keys, values;
  for (const auto& [k, v] : args) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  char err[512] = {0};
  if (shim().train(keys.data(), values.data(), static_cast<int>(args.size()), err, sizeof err) != 0)
    throw TokenizerError(std::string("tokenizer training failed: ") + err);
}

}  // namespace vtb::data
