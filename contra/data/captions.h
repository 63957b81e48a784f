#pragma once
/// Captions for image–text pretraining: the built-in captioned MNIST (captions that describe what
/// the pixels show, not only the class) and users' caption files.
///
/// Built-in captions. Each digit image gets attributes measured from its pixels:
///   - ink: Σ pixel / 255, the amount of stroke; within its class, the lightest quarter of the
///     training images is "thin", the heaviest quarter "thick";
///   - slant: −cov(col, row) / var(row) over the ink (columns per row; > 0 when the top leans
///     right); within its class, the lowest quarter is "left-slanted", the highest quarter
///     "right-slanted", the middle half "upright".
/// The quartiles come from the training images (`fit_attribute_thresholds`) and are applied to
/// the test images too. A caption is a template filled with a noun phrase: each attribute word is
/// included with probability `attribute_p`, so the text carries more than the class
/// ("a thick, right-slanted seven") and a model must read it.
///
/// Templates: "{}" is replaced by the phrase ("the digit thick seven"), "{a}" by the phrase with
/// its article ("a thick seven", "an eight"). The training and held-out template lists share no
/// template; evaluation (zero-shot, retrieval) uses the held-out ones.
///
///   auto attrs = digit_attributes(train.images);
///   auto th = fit_attribute_thresholds(attrs, train.labels);
///   auto d = describe_digits(attrs, train.labels, th);
///   SplitMix64 rng(1);
///   std::string c = make_caption(train_templates()[0], d[0], 0.5, rng);
///
/// Caption files: `<image-path>\t<caption>` a line, paths relative to the file's folder; blank
/// lines and lines starting with '#' are skipped.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include "contra/data/sentences.h"

namespace contra::data {

/// (N) ink and slant of uint8 or float digit images (N, 1, H, W).
struct DigitAttributes {
  torch::Tensor ink, slant;
};
DigitAttributes digit_attributes(const torch::Tensor& images);

/// Per-class quartiles: (classes, 2) = [q25, q75] of ink and of slant.
struct AttributeThresholds {
  torch::Tensor ink, slant;
};
AttributeThresholds fit_attribute_thresholds(const DigitAttributes& attributes,
                                             const torch::Tensor& labels);

/// What a caption may say of one image.
struct DigitDescription {
  int digit = 0;
  int thickness = 0;  // −1 thin, 0 (unremarkable), +1 thick
  int lean = 0;       // −1 left-slanted, 0 upright, +1 right-slanted
};
std::vector<DigitDescription> describe_digits(const DigitAttributes& attributes,
                                              const torch::Tensor& labels,
                                              const AttributeThresholds& thresholds);

const std::vector<std::string>& train_templates();
const std::vector<std::string>& heldout_templates();

/// Fills `{a}` (article + phrase) and `{}` (phrase) in `tmpl`. ConfigError when the template has
/// neither.
std::string fill_template(const std::string& tmpl, const std::string& phrase);
/// "a" or "an" for a phrase.
std::string article_for(const std::string& phrase);
/// The noun phrase of a description: attribute words (each with probability attribute_p; "upright"
/// with half that) before the digit word.
std::string digit_phrase(const DigitDescription& d, double attribute_p, SplitMix64& rng);
std::string make_caption(const std::string& tmpl, const DigitDescription& d, double attribute_p,
                         SplitMix64& rng);

/// One line of a caption file.
struct CaptionPair {
  std::string image;    // resolved path
  std::string caption;  // trimmed
  std::int64_t line = 0;
};
/// Reads a caption TSV. DataError naming file:line for a line without a tab, an empty path or
/// caption, or an image that does not exist; DataError for a file with no pairs; IoError when the
/// file cannot be read.
std::vector<CaptionPair> read_captions_tsv(const std::string& path);

/// uint8 (C, H, W) → uint8 (C, side, side), bilinear; returned as is when already that size.
torch::Tensor resize_image(const torch::Tensor& image, std::int64_t side);

/// Reads a caption file's images, each resized (bilinear) to side×side, as an ImageDataset-like
/// uint8 tensor (N, channels, side, side); DataError naming file:line when an image cannot be
/// decoded.
torch::Tensor read_caption_images(const std::vector<CaptionPair>& pairs, const std::string& path,
                                  int channels, std::int64_t side);

}  // namespace contra::data
