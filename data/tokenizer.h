// SentencePiece tokenizer with the chat template's special tokens found by piece name.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace vtb::data {

struct TokenizerError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct SpecialTokens {
  int bos = -1, eos = -1, pad = -1, start_of_turn = -1, end_of_turn = -1, audio = -1;
};

class Tokenizer {
 public:
  // `audio_piece`: the placeholder's piece name ("<audio>" for vtb's tokenizers; "<unused0>" for Gemma's,
  // as VoiceTextBlender used). Throws TokenizerError naming the file and any special piece it lacks.
  static Tokenizer load(const std::string& model_path, const std::string& audio_piece = "<audio>");

  std::vector<int> encode(const std::string& text) const;  // no BOS/EOS added
  std::string decode(const std::vector<int>& ids) const;
  std::string piece(int id) const;
  int vocab_size() const;
  const SpecialTokens& special() const { return special_; }

 private:
  std::shared_ptr<void> sp_;  // a processor inside libvtb_sentencepiece (Note [SentencePiece isolation])
  SpecialTokens special_;
};

// Trains a unigram SentencePiece model on text files (one sentence per line) into `out_prefix`.model with
// Gemma's conventions: <pad>=0, <eos>=1, <bos>=2, <unk>=3, then <start_of_turn>, <end_of_turn>, <audio>
// and "\n" as user-defined pieces (4, 5, 6, 7); no dummy prefix, whitespace kept as is; digits split. vocab_size is an
// upper bound (small corpora give fewer pieces).
void train_tokenizer(const std::vector<std::string>& input_files, int vocab_size, const std::string& out_prefix);

}  // namespace vtb::data
