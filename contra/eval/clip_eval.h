#pragma once
/// Evaluation of joint embeddings (CLIP): zero-shot classification with prompt ensembling and
/// cross-modal retrieval recall@k.
///
/// Zero-shot (Radford et al. 2021, §3.1.4): each class c gets the text embeddings of every prompt
/// template filled with its name, each L2-normalised, averaged and re-normalised into w_c; an image
/// is assigned argmax_c cos(image, w_c).
///
/// Recall@k: a query counts as found when one of its k most similar gallery items is relevant.
/// With one relevant item per query (the paired caption) this is the usual R@k; with a relevance
/// mask by class ("the retrieved image shows the spoken digit") it is class-level R@k.
///
///   auto w = zero_shot_weights(embed_texts, {"zero", "one"}, {"a photo of {a}", "this is {a}"});
///   ZeroShotResult r = zero_shot(image_embeddings, labels, w);
///   auto recall = recall_at_k(q, g, relevant, {1, 5, 10});
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <torch/types.h>

namespace contra::eval {

/// Texts → their (N, D) embeddings (normalised or not).
using TextEmbedFn = std::function<torch::Tensor(const std::vector<std::string>&)>;

/// (classes, D) unit class weights: the normalised mean of the normalised embeddings of every
/// template filled with the class name (contra::data::fill_template: "{}" or "{a}").
torch::Tensor zero_shot_weights(const TextEmbedFn& embed, const std::vector<std::string>& classes,
                                const std::vector<std::string>& templates);

struct ZeroShotResult {
  double accuracy = 0;
  std::vector<double> per_class;  // accuracy on each class's images (NaN when a class has none)
  std::int64_t images = 0;
  torch::Tensor predictions;  // (N) int64
};
/// images (N, D) embeddings, labels (N) in [0, classes), weights (classes, D).
ZeroShotResult zero_shot(const torch::Tensor& images, const torch::Tensor& labels,
                         const torch::Tensor& weights);

/// queries (Q, D), gallery (G, D) embeddings (cosine similarity is used), relevant (Q, G) bool.
/// Returns k → fraction of queries with a relevant item in their top min(k, G).
std::map<std::int64_t, double> recall_at_k(const torch::Tensor& queries,
                                           const torch::Tensor& gallery,
                                           const torch::Tensor& relevant,
                                           const std::vector<std::int64_t>& ks);

/// (Q, G) relevance of items with equal labels: query_labels (Q), gallery_labels (G).
torch::Tensor same_label(const torch::Tensor& query_labels, const torch::Tensor& gallery_labels);

/// Softmax over captions of scale · cos(image, caption): probabilities (C) for one image embedding
/// (D) against caption embeddings (C, D) — CLIP's test-time use.
torch::Tensor caption_probabilities(const torch::Tensor& image, const torch::Tensor& captions,
                                    double logit_scale);

}  // namespace contra::eval
