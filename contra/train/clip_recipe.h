#pragma once
/// CLIP recipes (method clip: image ↔ caption; method clip_audio: image ↔ spoken digit): one YAML
/// file with sections run, data, method, train, optim, eval, probe. `contra train` and
/// `contra probe` use these when the method's modality is image_text or audio_image.
///
///   ClipRecipe r = load_clip_recipe(ConfigTree::load_file("configs/clip_mnist.yaml"));
///   train_clip_recipe(r, /*resume=*/false);
///   ClipEvaluation e = evaluate_clip_recipe(r, latest_checkpoint(r.run_dir()), r.run_dir());
///
/// Data formats (`data.format`):
///   - mnist_captions (clip): MNIST digits with generated captions (contra/data/captions.h):
///     training templates while training, the held-out templates for zero-shot and retrieval.
///   - tsv (clip): users' `<image-path>\t<caption>` files (data.captions, data.test_captions),
///     images resized to method.image.image_size.
///   - spoken_mnist (clip_audio): spoken digit words from the built-in synthesiser (generated into
///     data.speech_root on first use, `contra corpus speech` with text: digits), each paired with
///     an MNIST image of the same digit drawn anew every step. The last data.test_speakers speakers
///     (in sorted order) are held out entirely: evaluation is on unseen speakers.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "contra/core/config.h"
#include "contra/data/image_batches.h"
#include "contra/data/images.h"
#include "contra/eval/image_eval.h"
#include "contra/train/recipe.h"
#include "contra/train/train_config.h"
#include "contra/train/trainer.h"

namespace contra::train {

/// `data:` of CLIP recipes.
struct ClipDataConfig {
  std::string format = "mnist_captions";    // mnist_captions | tsv | spoken_mnist
  std::string root = "data/mnist";          // MNIST (mnist_captions, spoken_mnist)
  bool generate = true;                     // fetch MNIST / synthesise the spoken digits if missing
  double attribute_p = 0.5;                 // mnist_captions: chance of each attribute word
  std::int64_t tokenizer_captions = 20000;  // captions drawn to train the tokeniser
  std::string captions, test_captions;      // tsv
  std::string speech_root = "data/spoken_digits";
  std::int64_t speakers = 48, utterances = 20, test_speakers = 8, corpus_seed = 1, jobs = 0;
  double clip_seconds = 1.0;   // audio window (centred; shorter words are padded with silence)
  double shift_seconds = 0.1;  // training: random shift of the word within ±this
  std::vector<double> mean, std;
  template <class V>
  void visit(V& v) {
    v("format", format, "mnist_captions | tsv | spoken_mnist");
    v("root", root, "MNIST folder (IDX files)");
    v("generate", generate, "fetch MNIST / synthesise the spoken digits when missing");
    v("attribute_p", attribute_p, "mnist_captions: probability of each attribute word");
    v("tokenizer_captions", tokenizer_captions,
      "mnist_captions: captions drawn to train the tokeniser");
    v("captions", captions, "tsv: training pairs, '<image-path>\\t<caption>' a line");
    v("test_captions", test_captions, "tsv: held-out pairs for retrieval (\"\" = none)");
    v("speech_root", speech_root, "spoken_mnist: the spoken-digit corpus folder");
    v("speakers", speakers, "spoken_mnist: synthetic speakers when generating");
    v("utterances", utterances, "spoken_mnist: words per speaker when generating");
    v("test_speakers", test_speakers, "spoken_mnist: speakers held out for evaluation");
    v("corpus_seed", corpus_seed, "spoken_mnist: seed of the generated corpus");
    v("jobs", jobs, "spoken_mnist: synthesiser processes (0 = all cores)");
    v("clip_seconds", clip_seconds, "spoken_mnist: audio window in seconds");
    v("shift_seconds", shift_seconds, "spoken_mnist: random shift while training (± seconds)");
    v("mean", mean, "image normalisation mean per channel ([] = the training images' own)");
    v("std", std, "image normalisation std per channel ([] = the training images' own)");
  }
  void validate() const;
};

/// `eval:` zero-shot and retrieval settings.
struct ClipEvalConfig {
  std::vector<std::string> templates;   // zero-shot prompts; [] = the held-out built-ins
  std::int64_t retrieval_pairs = 1000;  // held-out pairs (clip) / gallery images (clip_audio)
  std::int64_t batch_size = 500;
  std::int64_t seed = 7;  // captions of the held-out pairs, gallery choice
  template <class V>
  void visit(V& v) {
    v("templates", templates, "zero-shot prompt templates ({} or {a}); [] = held-out built-ins");
    v("retrieval_pairs", retrieval_pairs,
      "clip: held-out (image, caption) pairs; clip_audio: gallery images");
    v("batch_size", batch_size, "items per forward pass");
    v("seed", seed, "seed of the held-out captions and the gallery");
  }
  void validate() const;
};

struct ClipRecipe {
  ConfigTree tree;
  RunConfig run;
  ClipDataConfig data;
  TrainConfig train;
  OptimConfig optim;
  ClipEvalConfig eval;
  eval::ImageProbeConfig probe;
  bool audio = false;  // clip_audio

  std::string run_dir() const { return run.dir + "/" + run.name; }
  std::string resolved_yaml() const;
};

ClipRecipe load_clip_recipe(const ConfigTree& tree);

TrainSummary train_clip_recipe(const ClipRecipe& recipe, bool resume);

struct ClipEvaluation {
  // clip (mnist_captions): held-out templates, ensembled; clip_audio: each held-out spoken word
  // classified by the nearest class mean of the gallery images' embeddings.
  std::string zero_shot_name = "zero-shot accuracy";
  double zero_shot = -1;
  double zero_shot_train_templates = -1;  // the training templates, for comparison
  std::vector<std::pair<std::string, double>> zero_shot_per_template;
  std::vector<double> zero_shot_per_class;
  // Attribute reading (mnist_captions): among test images of one digit, does the held-out prompt
  // with the right attribute ("a thick seven") beat the opposite one ("a thin seven")? Chance 50%.
  struct Attribute {
    std::string name;  // "thin vs thick", "left- vs right-slanted"
    double accuracy = 0;
    std::int64_t images = 0;
  };
  std::vector<Attribute> attributes;
  // Retrieval directions ("image→text", "text→image", "… (same digit)", "audio→image (same
  // digit)"): recall@k, and the R@1 a random ranking would get (mean share of relevant items).
  struct Retrieval {
    std::string name;
    std::map<std::int64_t, double> recall;
    double chance = 0;
  };
  std::vector<Retrieval> retrieval;
  std::int64_t retrieval_queries = 0, retrieval_gallery = 0;
  std::vector<eval::ImageProbeRow> probe;
  double logit_scale = 0;
  std::int64_t step = 0;
};

/// Zero-shot (mnist_captions), retrieval and the linear probe / kNN of the image encoder (with the
/// probe section's baselines); writes results.json and results.md into out_dir.
ClipEvaluation evaluate_clip_recipe(const ClipRecipe& recipe, const std::string& checkpoint,
                                    const std::string& out_dir);
std::string clip_evaluation_markdown(const ClipEvaluation& e);

}  // namespace contra::train
