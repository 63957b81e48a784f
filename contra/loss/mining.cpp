#include "contra/loss/mining.h"

#include <limits>

#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/loss/common.h"

namespace contra::loss {

torch::Tensor get_negatives(const torch::Tensor& features, const torch::Tensor& memory, int64_t k,
                            const NegativeMiningOptions& options, const torch::Tensor& exclude) {
  detail::check_embeddings(features, "get_negatives", "features");
  TORCH_CHECK(memory.defined() && memory.dim() == 2 && memory.size(1) == features.size(1),
              "get_negatives: memory must be (M, ", features.size(1), "), got ",
              memory.defined() ? memory.sizes() : torch::IntArrayRef{});
  const int64_t b = features.size(0);
  const int64_t m = memory.size(0);
  const bool has_exclude = exclude.defined();
  check<ConfigError>(k >= 0 && k <= m - (has_exclude ? 1 : 0),
                     "get_negatives: k must be in 0..{} (got {})", m - (has_exclude ? 1 : 0), k);
  check<ConfigError>(options.num_random() >= 0 && options.num_random() <= b - 1,
                     "get_negatives: num_random must be in 0..{} (batch of {}) (got {})", b - 1, b,
                     options.num_random());
  std::vector<torch::Tensor> parts;
  if (options.num_random() > 0) {
    // Uniform random order of the others: random keys, the query itself sorted last.
    torch::Tensor keys = torch::rand({b, b}, features.options().dtype(torch::kFloat));
    keys = keys.masked_fill(torch::eye(b, keys.options().dtype(torch::kBool)), 2.0);
    torch::Tensor idx =
        keys.argsort(/*dim=*/1, /*descending=*/false).narrow(1, 0, options.num_random());  // (B, R)
    parts.push_back(features.index_select(0, idx.reshape({-1}))
                        .view({b, options.num_random(), features.size(1)}));
  }
  if (k > 0) {
    torch::NoGradGuard no_grad;
    torch::Tensor sims = torch::mm(l2_normalize(features.detach()), l2_normalize(memory).t());
    if (has_exclude) {
      TORCH_CHECK(exclude.dim() == 1 && exclude.size(0) == b, "get_negatives: exclude must be (", b,
                  "), got ", exclude.sizes());
      torch::Tensor rows = torch::arange(b, exclude.options().dtype(torch::kLong));
      torch::Tensor own = exclude.to(torch::kLong);
      torch::Tensor valid = own >= 0;
      sims.index_put_({rows.masked_select(valid), own.masked_select(valid)},
                      -std::numeric_limits<float>::infinity());
    }
    torch::Tensor idx = std::get<1>(sims.topk(k, 1));  // (B, k), most similar first
    parts.push_back(
        memory.detach().index_select(0, idx.reshape({-1})).view({b, k, memory.size(1)}));
  }
  if (parts.empty()) return torch::empty({b, 0, features.size(1)}, features.options());
  return parts.size() == 1 ? parts[0] : torch::cat(parts, 1);
}

torch::Tensor mochi_negatives(const torch::Tensor& query, const torch::Tensor& negatives,
                              const MoCHiOptions& options) {
  detail::check_embeddings(query, "mochi", "query");
  TORCH_CHECK(negatives.defined() && negatives.dim() == 2 && negatives.size(1) == query.size(1),
              "mochi: negatives must be (K, ", query.size(1), "), got ",
              negatives.defined() ? negatives.sizes() : torch::IntArrayRef{});
  const int64_t b = query.size(0);
  const int64_t d = query.size(1);
  const int64_t n = options.num_hard();
  const int64_t s = options.num_mixed();
  const int64_t s2 = options.num_query_mixed();
  check<ConfigError>(s >= 0 && s2 >= 0,
                     "mochi: num_mixed and num_query_mixed must be >= 0 (got {}, {})", s, s2);
  const int64_t lowest = s > 0 ? 2 : 1;
  check<ConfigError>(n >= lowest && n <= negatives.size(0),
                     "mochi: num_hard must be in {}..{} (got {})", lowest, negatives.size(0), n);
  torch::NoGradGuard no_grad;
  torch::Tensor q = l2_normalize(query.detach());
  torch::Tensor neg = negatives.detach();
  torch::Tensor hard = std::get<1>(torch::mm(q, neg.t()).topk(n, 1));  // (B, N) hardest first
  auto pick = [&](const torch::Tensor& slots) {  // slots (B, S) into `hard` → (B, S, D)
    torch::Tensor rows = hard.gather(1, slots);
    return neg.index_select(0, rows.reshape({-1})).view({b, slots.size(1), d});
  };
  auto long_opts = hard.options();
  std::vector<torch::Tensor> parts;
  if (s > 0) {
    torch::Tensor i = torch::randint(n, {b, s}, long_opts);
    torch::Tensor j = (i + torch::randint(1, n, {b, s}, long_opts)).remainder(n);  // j ≠ i
    torch::Tensor alpha = torch::rand({b, s, 1}, q.options());
    parts.push_back(l2_normalize(alpha * pick(i) + (1 - alpha) * pick(j)));
  }
  if (s2 > 0) {
    torch::Tensor j = torch::randint(n, {b, s2}, long_opts);
    torch::Tensor beta = torch::rand({b, s2, 1}, q.options()) * 0.5;
    parts.push_back(l2_normalize(beta * q.unsqueeze(1) + (1 - beta) * pick(j)));
  }
  if (parts.empty()) return torch::empty({b, 0, d}, q.options());
  return parts.size() == 1 ? parts[0] : torch::cat(parts, 1);
}

torch::Tensor mochi_logits(const torch::Tensor& query, const torch::Tensor& negatives,
                           const MoCHiOptions& options) {
  torch::Tensor synthetic = mochi_negatives(query, negatives, options);  // (B, S, D)
  torch::Tensor q = l2_normalize(query);
  return torch::bmm(synthetic, q.unsqueeze(2)).squeeze(2);
}

}  // namespace contra::loss
