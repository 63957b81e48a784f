#include "contra/method/instance_discrimination.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/data/sentences.h"
#include "contra/dist/collectives.h"
#include "contra/loss/nce.h"

namespace contra::method {

namespace F = torch::nn::functional;

void InstanceDiscriminationConfig::validate() const {
  encoder.validate();
  check<ConfigError>(embedding >= 1, "embedding: must be >= 1 (paper 128), got {}", embedding);
  check<ConfigError>(temperature > 0, "temperature: must be > 0 (paper 0.07), got {}", temperature);
  check<ConfigError>(loss == "nce" || loss == "softmax", "loss: must be nce or softmax, got '{}'",
                     loss);
  check<ConfigError>(negatives >= 1, "negatives: must be >= 1 (paper 4096), got {}", negatives);
  check<ConfigError>(momentum >= 0 && momentum < 1,
                     "momentum: must be in [0, 1) (paper 0.5), got {}", momentum);
  check<ConfigError>(bank_size >= 0, "bank_size: must be >= 0 (0 = the training set size), got {}",
                     bank_size);
  check<ConfigError>(online_probe_classes == 0 || online_probe_classes >= 2,
                     "online_probe_classes: must be 0 (off) or >= 2, got {}", online_probe_classes);
}

InstanceDiscrimination::InstanceDiscrimination(InstanceDiscriminationConfig config)
    : config_(std::move(config)) {
  config_.validate();
  const int64_t d = config_.encoder.output_size();
  encoder = nn::make_image_encoder(config_.encoder);
  register_module("encoder", encoder.ptr());
  head = register_module("head", torch::nn::Linear(d, config_.embedding));
  bank_size_ = config_.bank_size;
  // Until the recipe gives the size, a one-entry placeholder: a checkpoint's bank replaces it.
  bank = register_module(
      "bank",
      nn::MemoryBank(nn::MemoryBankOptions(std::max<int64_t>(bank_size_, 1), config_.embedding)
                         .momentum(config_.momentum)));
  if (config_.online_probe_classes > 0) {
    probe = register_module("probe", OnlineProbe(d, config_.online_probe_classes));
  }
  z = register_buffer("z", torch::full({}, -1.0));
  noise_seed = register_buffer(
      "noise_seed", torch::randint(std::numeric_limits<int64_t>::max(), {}, torch::kLong));
  steps_done = register_buffer("steps_done", torch::zeros({}, torch::kLong));
}

void InstanceDiscrimination::set_bank_size(int64_t size) {
  check<ConfigError>(size >= 1, "instance_discrimination: the training set is empty");
  if (config_.bank_size > 0) {
    check<ConfigError>(size == config_.bank_size,
                       "bank_size: {} entries but the training set has {} images (0 = the "
                       "training set size)",
                       config_.bank_size, size);
    return;
  }
  if (size == bank_size_) return;
  const torch::Tensor like = head->weight;
  bank = replace_module(
      "bank",
      nn::MemoryBank(nn::MemoryBankOptions(size, config_.embedding).momentum(config_.momentum)));
  bank->to(like.device(), like.scalar_type());
  bank_size_ = size;
}

void InstanceDiscrimination::check_batch(int64_t batch_size, int64_t views) const {
  check<ConfigError>(views >= 1,
                     "augment.views: instance discrimination needs >= 1 view (it uses the first), "
                     "got {}",
                     views);
  check<ConfigError>(
      batch_size >= 2,
      "train.batch_size: instance discrimination needs >= 2 images (BatchNorm), got {}",
      batch_size);
  check<ConfigError>(bank_size_ == 0 || batch_size <= bank_size_,
                     "train.batch_size: {} images per batch but the memory bank has only {} "
                     "entries (method.bank_size, 0 = the training set size)",
                     batch_size, bank_size_);
}

torch::Tensor InstanceDiscrimination::noise_indices(int64_t step, int64_t micro,
                                                    int64_t rows) const {
  check<ConfigError>(bank_size_ > 0, "instance_discrimination: the memory bank has no size yet");
  auto gen = at::make_generator<at::CPUGeneratorImpl>(
      data::mix_seed(static_cast<uint64_t>(noise_seed.item<int64_t>()), static_cast<uint64_t>(step),
                     static_cast<uint64_t>(micro)));
  return torch::randint(bank_size_, {rows, config_.negatives}, gen, torch::kLong);
}

StepOutput InstanceDiscrimination::step(const Batch& batch) {
  check<ConfigError>(bank_size_ > 0,
                     "instance_discrimination: the memory bank has no size (method.bank_size 0 = "
                     "the training set size, which the recipe sets with set_bank_size)");
  check<DataError>(bank->memory.size(0) == bank_size_,
                   "instance_discrimination: the memory bank holds {} entries but the training "
                   "set has {} (a checkpoint of another data set?)",
                   bank->memory.size(0), bank_size_);
  torch::Tensor x = batch.input.defined()  ? batch.input
                    : !batch.views.empty() ? batch.views[0]
                                           : torch::Tensor();
  check<DataError>(x.defined() && x.dim() == 4,
                   "instance_discrimination: the batch needs `input` images (B, C, H, W)");
  const int64_t B = x.size(0);
  check<DataError>(batch.index.defined() && batch.index.dim() == 1 && batch.index.size(0) == B &&
                       !batch.index.is_floating_point(),
                   "instance_discrimination: the batch needs `index` ({}) int64, the dataset "
                   "position of each image (its memory-bank entry)",
                   B);
  torch::Tensor memory = bank->memory;  // (n, D), a buffer: no gradient
  torch::Tensor idx = batch.index.to(memory.device(), torch::kLong);
  const int64_t lo = idx.min().item<int64_t>(), hi = idx.max().item<int64_t>();
  check<DataError>(lo >= 0 && hi < bank_size_,
                   "instance_discrimination: batch index {} out of range (expected 0..{}: one "
                   "memory-bank entry per training image)",
                   lo < 0 ? lo : hi, bank_size_ - 1);

  torch::Tensor h = encoder.forward(x);
  torch::Tensor f = F::normalize(head->forward(h), F::NormalizeFuncOptions().dim(1));  // (B, D)
  torch::Tensor positives = memory.index_select(0, idx);                               // (B, D)
  const double inv_t = 1.0 / config_.temperature;
  const auto n = static_cast<double>(bank_size_);
  StepOutput out;
  if (config_.loss == "softmax") {
    // Eq. 2: the non-parametric softmax over every entry, the item's own as the class.
    torch::Tensor logits = f.matmul(memory.t()) * inv_t;  // (B, n)
    out.loss = F::cross_entropy(logits, idx);
    out.metrics["instance_acc"] =
        logits.detach().argmax(1).eq(idx).to(torch::kDouble).mean().item<double>();
  } else {
    // This rank's rows of the global batch's noise draw: the same draws for any split of ranks.
    const dist::Group& group = dist::world();
    const int64_t K = config_.negatives;
    torch::Tensor noise = noise_indices(steps_done.item<int64_t>(), micro_, B * group.size())
                              .narrow(0, group.rank() * B, B)
                              .to(memory.device());  // (B, K)
    // Scores against the distinct sampled entries (B, U), then each row picks its own K: cheaper
    // than materialising (B, K, D) entries when many rows share entries.
    auto [distinct, inverse] = torch::_unique(noise.reshape({-1}), /*sorted=*/true,
                                              /*return_inverse=*/true);
    torch::Tensor s_noise = (f.matmul(memory.index_select(0, distinct).t()) * inv_t)
                                .gather(1, inverse.reshape({B, K}));  // (B, K)
    torch::Tensor s_pos = (f * positives).sum(1) * inv_t;             // (B)
    if (z.item<double>() < 0) {
      // Z ≈ n·E[exp(s)] over the first (global) batch's positive and noise scores, then fixed.
      torch::NoGradGuard no_grad;
      torch::Tensor sums = torch::stack(
          {torch::cat({s_pos.reshape({-1}), s_noise.reshape({-1})}).to(torch::kDouble).exp().sum(),
           torch::tensor(static_cast<double>(B * (K + 1)), torch::kDouble).to(memory.device())});
      sums = dist::all_reduce_sum(sums);
      z.fill_(n * (sums[0] / sums[1]).item<double>());
    }
    // log P(j|f) = s − log Z; log P_n = −log n; ν = m: h = P / (P + m·P_n), eq. 5 (nce.h).
    const double log_z = std::log(z.item<double>());
    torch::Tensor data_scores = s_pos - log_z, noise_scores = s_noise - log_z;
    out.loss = loss::functional::nce(data_scores, torch::full_like(data_scores, -std::log(n)),
                                     noise_scores, torch::full_like(noise_scores, -std::log(n)),
                                     loss::NCEOptions().noise_ratio(static_cast<double>(K)));
    out.metrics["log_z"] = log_z;
  }
  out.metrics["instance_loss"] = out.loss.item<double>();
  out.metrics["pos_sim"] = (f.detach() * positives).sum(1).mean().item<double>();
  pending_index_.push_back(idx);
  pending_features_.push_back(f.detach());
  ++micro_;
  if (probe) out.loss = out.loss + probe->forward(h, batch.labels, out.metrics);
  return out;
}

void InstanceDiscrimination::update_bank(const torch::Tensor& index,
                                         const torch::Tensor& features) {
  TORCH_CHECK(index.defined() && index.dim() == 1 && features.defined() && features.dim() == 2 &&
                  features.size(0) == index.size(0),
              "instance_discrimination: update_bank needs index (N) and features (N, D)");
  torch::Tensor cpu = index.to(torch::kCPU, torch::kLong).contiguous();
  const int64_t N = cpu.numel();
  // Round r updates the r-th occurrence of each index: every round's indices are distinct, and an
  // index seen twice (a batch across an epoch boundary) moves twice, in batch order.
  std::vector<int64_t> round(static_cast<size_t>(N));
  std::unordered_map<int64_t, int64_t> seen;
  int64_t rounds = 0;
  const int64_t* p = cpu.data_ptr<int64_t>();
  for (int64_t j = 0; j < N; ++j) {
    round[static_cast<size_t>(j)] = seen[p[j]]++;
    rounds = std::max(rounds, round[static_cast<size_t>(j)] + 1);
  }
  if (rounds <= 1) {
    bank->update(index, features);
    return;
  }
  torch::Tensor round_t = torch::tensor(round, torch::kLong);
  for (int64_t r = 0; r < rounds; ++r) {
    torch::Tensor rows = (round_t == r).nonzero().reshape({-1});
    bank->update(cpu.index_select(0, rows), features.index_select(0, rows.to(features.device())));
  }
}

void InstanceDiscrimination::after_optimizer_step(std::int64_t step) {
  if (!pending_index_.empty()) {
    // Every rank applies the global batch's updates, micro-batch by micro-batch in rank order —
    // the order of one process with the whole batch — so the banks stay identical.
    std::vector<torch::Tensor> index, features;
    for (size_t j = 0; j < pending_index_.size(); ++j) {
      index.push_back(dist::concat_all_gather(pending_index_[j]));
      features.push_back(dist::concat_all_gather(pending_features_[j]));
    }
    update_bank(torch::cat(index), torch::cat(features));
  }
  pending_index_.clear();
  pending_features_.clear();
  micro_ = 0;
  steps_done.fill_(step + 1);
}

torch::Tensor InstanceDiscrimination::features(const torch::Tensor& input,
                                               const std::string& kind) {
  if (kind == "encoder") return encoder.forward(input);
  if (kind == "embedding") {
    return F::normalize(head->forward(encoder.forward(input)), F::NormalizeFuncOptions().dim(1));
  }
  throw ConfigError(
      "features: instance_discrimination has 'encoder' (the representation) and 'embedding' (the "
      "normalised f of the memory bank), got '" +
      kind + "'");
}

}  // namespace contra::method
