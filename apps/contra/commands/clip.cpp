// contra clip classify: CLIP's test-time use — one image against a list of captions, each
// caption's probability. contra clip zeroshot: zero-shot classification of a labelled image set
// from class names and prompt templates (ensembled).
#include <algorithm>
#include <cstdio>
#include <memory>
#include <sstream>

#include <fmt/format.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "commands/commands.h"
#include "contra/core/config.h"
#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/core/runtime.h"
#include "contra/data/captions.h"
#include "contra/data/image_batches.h"
#include "contra/data/images.h"
#include "contra/data/sentences.h"
#include "contra/eval/clip_eval.h"
#include "contra/method/clip.h"
#include "contra/method/registry.h"
#include "contra/train/checkpoint.h"
#include "contra/train/image_recipe.h"

namespace contra::cli {

namespace {

struct ClipModel {
  std::shared_ptr<method::Clip> clip;
  ConfigTree tree;
  std::int64_t step = 0;
};

ClipModel load_clip(const std::string& checkpoint_arg, const std::string& device_name) {
  const std::string checkpoint = train::resolve_checkpoint(checkpoint_arg);
  ClipModel m;
  m.tree = ConfigTree::from_string(train::read_checkpoint_meta(checkpoint).config_yaml,
                                   checkpoint + " (config)");
  m.clip = std::dynamic_pointer_cast<method::Clip>(method::make_method(m.tree));
  if (!m.clip || m.clip->is_audio()) {
    throw UsageError(
        fmt::format("clip: '{}' is not a checkpoint of method clip (image-text)", checkpoint));
  }
  m.step = train::load_checkpoint(checkpoint, *m.clip).step;
  m.clip->to(parse_device(device_name));
  m.clip->eval();
  return m;
}

data::ChannelStats stats_of(const method::Clip& clip) {
  auto [mean, std] = clip.image_stats();
  check<DataError>(!mean.empty(), "clip: the checkpoint stores no image normalisation");
  return {mean, std};
}

torch::Tensor embed_texts(method::Clip& clip, const std::vector<std::string>& texts) {
  torch::NoGradGuard guard;
  return clip.features(clip.tokenize(texts), "text_embedding").to(torch::kCPU);
}

std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> out;
  std::istringstream in(read_file(path));
  std::string line;
  while (std::getline(in, line)) {
    const auto b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos || line[b] == '#') continue;
    out.push_back(line.substr(b, line.find_last_not_of(" \t\r") - b + 1));
  }
  return out;
}

struct ClassifyOptions {
  std::string checkpoint, image, captions_file, device = "cpu";
  std::vector<std::string> captions;
  bool json = false;
};

int run_classify(const ClassifyOptions& o) {
  std::vector<std::string> captions = o.captions;
  if (!o.captions_file.empty()) {
    auto more = read_lines(o.captions_file);
    check<DataError>(!more.empty(), "{}: no captions (one a line)", o.captions_file);
    captions.insert(captions.end(), more.begin(), more.end());
  }
  if (captions.empty()) throw UsageError("clip classify: give --captions FILE or --caption TEXT");
  ClipModel m = load_clip(o.checkpoint, o.device);
  const auto& img = m.clip->image_config();
  torch::Tensor image = data::resize_image(
      data::read_image_file(o.image, static_cast<int>(img.in_channels)), img.image_size);
  torch::Tensor x =
      data::normalize_images(data::to_unit_float(image.unsqueeze(0)), stats_of(*m.clip));
  torch::Tensor image_embedding;
  {
    torch::NoGradGuard guard;
    image_embedding =
        m.clip->features(x.to(parse_device(o.device)), "image_embedding").to(torch::kCPU);
  }
  torch::Tensor probs = eval::caption_probabilities(
      image_embedding[0], embed_texts(*m.clip, captions), m.clip->logit_scale());
  std::vector<size_t> order(captions.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  auto p = probs.contiguous();
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return p[static_cast<int64_t>(a)].item<double>() > p[static_cast<int64_t>(b)].item<double>();
  });
  if (o.json) {
    nlohmann::json rows = nlohmann::json::array();
    for (size_t i : order)
      rows.push_back(
          {{"caption", captions[i]}, {"probability", p[static_cast<int64_t>(i)].item<double>()}});
    std::printf("%s\n", nlohmann::json({{"image", o.image}, {"captions", rows}}).dump(2).c_str());
    return 0;
  }
  std::printf("%-8s  %s\n", "prob", "caption");
  for (size_t i : order)
    std::printf("%7.2f%%  %s\n", 100 * p[static_cast<int64_t>(i)].item<double>(),
                captions[i].c_str());
  return 0;
}

struct ZeroShotOptions {
  std::string checkpoint, data = "mnist", split = "test", classes, device = "cpu";
  std::vector<std::string> templates;
  std::int64_t limit = 0;
  bool json = false;
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    const auto b = item.find_first_not_of(' ');
    if (b != std::string::npos) out.push_back(item.substr(b, item.find_last_not_of(' ') - b + 1));
  }
  return out;
}

int run_zeroshot(const ZeroShotOptions& o) {
  ClipModel m = load_clip(o.checkpoint, o.device);
  data::ImageDataset ds;
  std::vector<std::string> classes;
  if (o.data == "mnist") {
    train::ImageRecipe ir;
    ir.data.root = m.tree.get_string("data.root", "data/mnist");
    ir.data.generate = false;
    auto d = train::open_image_data(ir);
    ds = o.split == "train" ? d.train : d.test;
    for (int c = 0; c < 10; ++c) classes.push_back(data::number_word(c));
  } else {
    ds = data::read_image_dataset(o.data, o.split);
    classes = ds.classes;
  }
  if (!o.classes.empty()) classes = split_list(o.classes);
  check<DataError>(ds.size() > 0 && ds.labels.min().item<int64_t>() >= 0,
                   "clip zeroshot: '{}' ({}) has no labelled images", o.data, o.split);
  const int64_t max_label = ds.labels.max().item<int64_t>();
  if (static_cast<int64_t>(classes.size()) <= max_label) {
    throw UsageError(
        fmt::format("clip zeroshot: --classes names {} classes but the labels go up "
                    "to {} (give one name per class, in label order)",
                    classes.size(), max_label));
  }
  const int64_t n = o.limit > 0 ? std::min(o.limit, ds.size()) : ds.size();
  const auto& img = m.clip->image_config();
  check<DataError>(ds.images.size(1) == img.in_channels,
                   "clip zeroshot: images have {} channels, the model takes {}", ds.images.size(1),
                   img.in_channels);
  auto stats = stats_of(*m.clip);
  std::vector<torch::Tensor> embeddings;
  {
    torch::NoGradGuard guard;
    for (int64_t s = 0; s < n; s += 500) {
      auto part = ds.images.narrow(0, s, std::min<int64_t>(500, n - s));
      if (part.size(2) != img.image_size || part.size(3) != img.image_size) {
        std::vector<torch::Tensor> resized;
        for (int64_t i = 0; i < part.size(0); ++i)
          resized.push_back(data::resize_image(part[i], img.image_size));
        part = torch::stack(resized);
      }
      auto x = data::normalize_images(data::to_unit_float(part), stats).to(parse_device(o.device));
      embeddings.push_back(m.clip->features(x, "image_embedding").to(torch::kCPU));
    }
  }
  const auto templates = o.templates.empty() ? data::heldout_templates() : o.templates;
  auto weights = eval::zero_shot_weights(
      [&](const std::vector<std::string>& t) { return embed_texts(*m.clip, t); }, classes,
      templates);
  auto r = eval::zero_shot(torch::cat(embeddings), ds.labels.narrow(0, 0, n), weights);
  if (o.json) {
    nlohmann::json j = {{"accuracy", r.accuracy}, {"images", r.images},       {"classes", classes},
                        {"templates", templates}, {"per_class", r.per_class}, {"step", m.step}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("zero-shot accuracy  %.2f%% on %lld images (%zu classes, %zu templates)\n",
              100 * r.accuracy, static_cast<long long>(r.images), classes.size(), templates.size());
  for (size_t c = 0; c < classes.size(); ++c)
    std::printf("  %-16s %6.2f%%\n", classes[c].c_str(), 100 * r.per_class[c]);
  return 0;
}

}  // namespace

void register_clip(CLI::App& app) {
  auto* clip = app.add_subcommand("clip", "use a trained CLIP checkpoint (image ↔ text)");
  clip->require_subcommand(1);

  auto c = std::make_shared<ClassifyOptions>();
  auto* classify = clip->add_subcommand(
      "classify",
      "probability of each caption for one image (softmax of scaled cosine similarity)");
  classify->add_option("--checkpoint", c->checkpoint, "run directory or checkpoint file")
      ->required();
  classify->add_option("--image", c->image, "PNG or JPEG image")->required();
  classify->add_option("--captions", c->captions_file, "text file, one caption a line");
  classify->add_option("--caption", c->captions, "a caption (repeatable)");
  classify->add_option("--device", c->device, "cpu | cuda | cuda:N");
  classify->add_flag("--json", c->json, "print JSON");
  classify->callback([c] { set_runner([c] { return run_classify(*c); }); });

  auto z = std::make_shared<ZeroShotOptions>();
  auto* zeroshot = clip->add_subcommand(
      "zeroshot", "zero-shot classification of a labelled image set from class names and prompts");
  zeroshot->add_option("--checkpoint", z->checkpoint, "run directory or checkpoint file")
      ->required();
  zeroshot->add_option("--data", z->data,
                       "mnist (the checkpoint's data.root) or an image dataset folder (MNIST IDX, "
                       "CIFAR-10 binary, <class>/*.png)");
  zeroshot->add_option("--split", z->split, "train | test")
      ->check(CLI::IsMember({"train", "test"}));
  zeroshot->add_option("--template", z->templates,
                       "prompt template with {} or {a} (repeatable; ensembled; default: the "
                       "held-out built-ins)");
  zeroshot->add_option("--classes", z->classes,
                       "class names in label order, comma-separated (default: MNIST's number "
                       "words, or the folder's class names)");
  zeroshot->add_option("--limit", z->limit, "first N images only (0 = all)");
  zeroshot->add_option("--device", z->device, "cpu | cuda | cuda:N");
  zeroshot->add_flag("--json", z->json, "print JSON");
  zeroshot->callback([z] { set_runner([z] { return run_zeroshot(*z); }); });
}

}  // namespace contra::cli
