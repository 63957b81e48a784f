#include "contra/data/captions.h"

#include <filesystem>
#include <sstream>

#include <fmt/format.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/data/images.h"

namespace contra::data {
namespace fs = std::filesystem;

DigitAttributes digit_attributes(const torch::Tensor& images) {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == 1,
              "digit_attributes: expected (N, 1, H, W), got ", images.sizes());
  torch::Tensor x = images.to(torch::kFloat32).squeeze(1);
  if (images.scalar_type() == torch::kUInt8) x = x / 255.0;
  const int64_t h = x.size(1), w = x.size(2);
  auto rows = torch::arange(h, torch::kFloat32).view({1, h, 1});
  auto cols = torch::arange(w, torch::kFloat32).view({1, 1, w});
  auto mass = x.sum({1, 2}).clamp_min(1e-6);
  auto my = (x * rows).sum({1, 2}) / mass;
  auto mx = (x * cols).sum({1, 2}) / mass;
  auto dy = rows - my.view({-1, 1, 1});
  auto dx = cols - mx.view({-1, 1, 1});
  auto cov = (x * dx * dy).sum({1, 2}) / mass;
  auto var = (x * dy * dy).sum({1, 2}) / mass;
  return {mass, -cov / var.clamp_min(1e-6)};
}

AttributeThresholds fit_attribute_thresholds(const DigitAttributes& a,
                                             const torch::Tensor& labels) {
  const int64_t classes = labels.max().item<int64_t>() + 1;
  auto q = torch::tensor({0.25, 0.75}, torch::kFloat32);
  AttributeThresholds t{torch::zeros({classes, 2}), torch::zeros({classes, 2})};
  for (int64_t c = 0; c < classes; ++c) {
    auto mask = labels.eq(c);
    check<DataError>(mask.any().item<bool>(), "captions: class {} has no training images", c);
    t.ink[c] = torch::quantile(a.ink.index({mask}), q);
    t.slant[c] = torch::quantile(a.slant.index({mask}), q);
  }
  return t;
}

std::vector<DigitDescription> describe_digits(const DigitAttributes& a, const torch::Tensor& labels,
                                              const AttributeThresholds& t) {
  const int64_t n = labels.numel();
  auto lab = labels.to(torch::kLong).contiguous();
  auto ink = a.ink.contiguous(), slant = a.slant.contiguous();
  auto ti = t.ink.contiguous(), ts = t.slant.contiguous();
  const auto* pl = lab.data_ptr<int64_t>();
  const auto* pi = ink.data_ptr<float>();
  const auto* ps = slant.data_ptr<float>();
  const auto* qi = ti.data_ptr<float>();
  const auto* qs = ts.data_ptr<float>();
  std::vector<DigitDescription> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = pl[i];
    check<DataError>(c >= 0 && c < ti.size(0), "captions: label {} of image {} has no thresholds",
                     c, i);
    auto& d = out[static_cast<size_t>(i)];
    d.digit = static_cast<int>(c);
    d.thickness = pi[i] < qi[2 * c] ? -1 : pi[i] > qi[2 * c + 1] ? 1 : 0;
    d.lean = ps[i] < qs[2 * c] ? -1 : ps[i] > qs[2 * c + 1] ? 1 : 0;
  }
  return out;
}

const std::vector<std::string>& train_templates() {
  static const std::vector<std::string> t = {
      "a photo of {a}",
      "{a}, written by hand",
      "the handwritten digit {}",
      "a scan of {a}",
      "a drawing of the number {}",
      "{a} on a black background",
      "an image showing {a}",
      "someone wrote {a}",
      "the number {} in white ink",
      "a blurry picture of {a}",
      "{a} from a form",
      "digit: {}",
  };
  return t;
}

const std::vector<std::string>& heldout_templates() {
  static const std::vector<std::string> t = {
      "this is {a}",          "a close-up of {a}",          "the digit {}, drawn with a pen",
      "a small image of {a}", "a sketch of the numeral {}",
  };
  return t;
}

std::string article_for(const std::string& phrase) {
  const char c = phrase.empty() ? 'x' : static_cast<char>(std::tolower(phrase[0]));
  // "one" (and "once", "one-…") starts with a /w/ sound: "a one".
  if (phrase.rfind("one", 0) == 0 || phrase.rfind("One", 0) == 0) return "a";
  return (c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u') ? "an" : "a";
}

std::string fill_template(const std::string& tmpl, const std::string& phrase) {
  std::string out = tmpl;
  bool filled = false;
  for (const auto& [key, value] :
       {std::pair<std::string, std::string>{"{a}", article_for(phrase) + " " + phrase},
        {"{}", phrase}}) {
    for (size_t p = out.find(key); p != std::string::npos; p = out.find(key, p + value.size())) {
      out.replace(p, key.size(), value);
      filled = true;
    }
  }
  check<ConfigError>(filled, "template '{}': needs a '{{}}' or '{{a}}' placeholder for the class",
                     tmpl);
  return out;
}

std::string digit_phrase(const DigitDescription& d, double attribute_p, SplitMix64& rng) {
  std::vector<std::string> adjectives;
  if (d.thickness != 0 && rng.uniform() < attribute_p)
    adjectives.push_back(d.thickness < 0 ? "thin" : "thick");
  const double lean_p = d.lean == 0 ? attribute_p / 2 : attribute_p;
  if (rng.uniform() < lean_p)
    adjectives.push_back(d.lean < 0 ? "left-slanted" : d.lean > 0 ? "right-slanted" : "upright");
  std::string phrase;
  for (size_t i = 0; i < adjectives.size(); ++i)
    phrase += adjectives[i] + (i + 1 < adjectives.size() ? ", " : " ");
  return phrase + number_word(d.digit);
}

std::string make_caption(const std::string& tmpl, const DigitDescription& d, double attribute_p,
                         SplitMix64& rng) {
  return fill_template(tmpl, digit_phrase(d, attribute_p, rng));
}

namespace {
std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}
}  // namespace

std::vector<CaptionPair> read_captions_tsv(const std::string& path) {
  const std::string text = read_file(path);
  const fs::path base = fs::path(path).parent_path();
  std::vector<CaptionPair> out;
  std::istringstream in(text);
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (trim(line).empty() || trim(line)[0] == '#') continue;
    const auto tab = line.find('\t');
    check<DataError>(tab != std::string::npos,
                     "{}:{}: expected '<image-path><TAB><caption>' (no tab in '{}')", path, number,
                     trim(line));
    CaptionPair p;
    p.line = number;
    const std::string image = trim(line.substr(0, tab));
    p.caption = trim(line.substr(tab + 1));
    check<DataError>(!image.empty(), "{}:{}: empty image path", path, number);
    check<DataError>(!p.caption.empty(), "{}:{}: empty caption for '{}'", path, number, image);
    fs::path resolved = fs::path(image).is_absolute() ? fs::path(image) : base / image;
    check<DataError>(fs::is_regular_file(resolved), "{}:{}: image '{}' not found (looked for '{}')",
                     path, number, image, resolved.string());
    p.image = resolved.string();
    out.push_back(std::move(p));
  }
  check<DataError>(!out.empty(), "{}: no '<image-path><TAB><caption>' lines", path);
  return out;
}

torch::Tensor resize_image(const torch::Tensor& image, std::int64_t side) {
  TORCH_CHECK(image.dim() == 3, "resize_image: expected (C, H, W), got ", image.sizes());
  if (image.size(1) == side && image.size(2) == side) return image;
  // The ATen op that F::interpolate(size, kBilinear, align_corners=false) calls. Not through
  // InterpolateFuncOptions: GCC 12 in C++20 (LibTorch 2.x) warns -Wmaybe-uninitialized on the
  // destructor of its unset scale_factor in a temporary.
  return torch::upsample_bilinear2d(image.unsqueeze(0).to(torch::kFloat32), {side, side},
                                    /*align_corners=*/false)
      .squeeze(0)
      .round()
      .clamp(0, 255)
      .to(torch::kUInt8);
}

torch::Tensor read_caption_images(const std::vector<CaptionPair>& pairs, const std::string& path,
                                  int channels, std::int64_t side) {
  torch::Tensor out =
      torch::empty({static_cast<int64_t>(pairs.size()), channels, side, side}, torch::kUInt8);
  for (size_t i = 0; i < pairs.size(); ++i) {
    torch::Tensor image;
    try {
      image = read_image_file(pairs[i].image, channels);
    } catch (const DataError& e) {
      throw DataError(fmt::format("{}:{}: {}", path, pairs[i].line, e.what()));
    } catch (const IoError& e) {
      throw IoError(fmt::format("{}:{}: {}", path, pairs[i].line, e.what()));
    }
    out[static_cast<int64_t>(i)].copy_(resize_image(image, side));
  }
  return out;
}

}  // namespace contra::data
