#pragma once
/// A SentencePiece tokeniser for CLIP's text encoder, trained on the training captions and stored
/// with the checkpoint as the serialized model proto (a byte string).
///
/// SentencePiece runs inside the plug-in libcontra_sentencepiece.so (plugins/sentencepiece), opened
/// on first use: from $CONTRA_SENTENCEPIECE_PLUGIN, beside the executable (../lib or its own
/// folder), or at its build-tree path; UnavailableError lists the places tried when none opens.
///
/// Ids: 0 = padding, 1 = unknown, 2 = start of text (SOT), 3 = end of text (EOT), then the learned
/// pieces. Text is lower-cased by the normaliser (NFKC + case folding), so "Seven" and "seven" are
/// one token sequence. `encode` turns a caption into exactly `context_length` ids:
///
///   [SOT, p1, ..., pn, EOT, 0, 0, ...]        n ≤ context_length − 2
///
/// A caption with more pieces is truncated to its first context_length − 2 and still ends in EOT,
/// so the text encoder always finds an EOT to pool at (CLIP pools at the EOT position).
///
///   TokenizerConfig cfg;                 // bpe, 256 pieces
///   Tokenizer tok = Tokenizer::train(captions, cfg);
///   torch::Tensor ids = tok.encode_batch({"a thick seven"}, 16);   // (1, 16) int64
///   std::string bytes = tok.serialized();                          // save; Tokenizer::load(bytes)
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

namespace contra::text {

/// `method.text.tokenizer`: how the tokeniser is trained.
struct TokenizerConfig {
  std::string model_type = "bpe";  // bpe | unigram
  std::int64_t vocab_size = 256;   // including the 4 special ids
  template <class V>
  void visit(V& v) {
    v("model_type", model_type, "bpe | unigram (SentencePiece)");
    v("vocab_size", vocab_size,
      "pieces including pad/unk/sot/eot (8..65536; a small corpus may learn fewer)");
  }
  void validate() const;
};

class Tokenizer {
 public:
  static constexpr std::int64_t kPad = 0, kUnknown = 1, kStart = 2, kEnd = 3;

  /// Trains on `sentences` (at least one non-empty). Deterministic for the same input and config.
  /// Throws ConfigError (bad config), DataError (no usable text: SentencePiece's message).
  static Tokenizer train(const std::vector<std::string>& sentences, const TokenizerConfig& config);
  /// Loads a serialized model proto; DataError when the bytes are not one.
  static Tokenizer load(const std::string& serialized);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  /// Piece ids of `text` without SOT/EOT/padding.
  std::vector<int> pieces(const std::string& text) const;
  /// The pieces as strings ("▁a", "▁th", "ick"...), for inspection.
  std::vector<std::string> piece_strings(const std::string& text) const;
  /// Decodes ids back to text; special ids are skipped.
  std::string decode(const std::vector<int>& ids) const;
  /// (context_length) int64 ids: SOT, pieces (truncated), EOT, padding. context_length >= 3.
  torch::Tensor encode(const std::string& text, std::int64_t context_length) const;
  /// (N, context_length) int64.
  torch::Tensor encode_batch(const std::vector<std::string>& texts,
                             std::int64_t context_length) const;
  /// Number of ids (special + learned pieces).
  std::int64_t vocab_size() const;
  /// The model proto, for saving.
  const std::string& serialized() const { return serialized_; }

 private:
  Tokenizer() = default;
  struct Handle;
  std::unique_ptr<Handle> sp_;
  std::string serialized_;
  std::int64_t pieces_ = 0;
};

/// The model bytes as a (bytes) uint8 tensor (to keep in a module buffer, saved with checkpoints),
/// and back.
torch::Tensor bytes_to_tensor(const std::string& bytes);
std::string tensor_to_bytes(const torch::Tensor& tensor);

}  // namespace contra::text
