#include "contra/loss/registry.h"

#include <torch/torch.h>

#include "contra/loss/barlow_twins.h"
#include "contra/loss/byol.h"
#include "contra/loss/clip.h"
#include "contra/loss/contrastive.h"
#include "contra/loss/debiased.h"
#include "contra/loss/hard_negative.h"
#include "contra/loss/info_nce.h"
#include "contra/loss/lifted_structured.h"
#include "contra/loss/nce.h"
#include "contra/loss/nt_xent.h"
#include "contra/loss/soft_nearest_neighbors.h"
#include "contra/loss/supcon.h"
#include "contra/loss/swav.h"
#include "contra/loss/triplet.h"

namespace contra::loss {
namespace {

/// A config section holding `name` next to the loss's own options.
template <class Options>
struct NamedOptions {
  std::string name;
  Options options;
  template <class V>
  void visit(V& v) {
    v("name", name, "registered loss name");
    options.visit(v);
  }
  void validate() const { options.validate(); }
};

/// Entry for module `Module` (a TORCH_MODULE holder) built from `Options`.
template <class Module, class Options>
LossEntry entry(std::string_view name, std::string signature, std::string paper,
                std::string formula) {
  return LossEntry{
      std::string(name), std::move(signature), std::move(paper), std::move(formula),
      [](const ConfigTree& tree, const std::string& path) {
        return torch::nn::AnyModule(Module(tree.get<NamedOptions<Options>>(path).options));
      }};
}

}  // namespace

void LossRegistry::add(LossEntry entry) {
  check<ConfigError>(!contains(entry.name), "loss registry: '{}' is registered twice", entry.name);
  entries_.push_back(std::move(entry));
}

bool LossRegistry::contains(std::string_view name) const {
  for (const auto& e : entries_) {
    if (e.name == name) return true;
  }
  return false;
}

const LossEntry& LossRegistry::at(std::string_view name) const {
  for (const auto& e : entries_) {
    if (e.name == name) return e;
  }
  throw ConfigError(
      fmt::format("unknown loss '{}' (expected one of: {})", name, fmt::join(names(), ", ")));
}

std::vector<std::string> LossRegistry::names() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto& e : entries_) out.push_back(e.name);
  return out;
}

torch::nn::AnyModule LossRegistry::make(const ConfigTree& tree, const std::string& path) const {
  YAML::Node name = tree.node(path.empty() ? "name" : path + ".name");
  check<ConfigError>(name.IsDefined() && name.IsScalar(),
                     "{}: '{}.name' must name a loss (one of: {})", tree.source(), path,
                     fmt::join(names(), ", "));
  const std::string value = name.as<std::string>();
  try {
    return at(value).make(tree, path);
  } catch (const ConfigError& e) {
    // at() does not know where the name came from.
    if (!contains(value)) throw ConfigError(tree.where(path + ".name", name) + ": " + e.what());
    throw;
  }
}

torch::nn::AnyModule LossRegistry::make(std::string_view name) const {
  return at(name).make(ConfigTree(), "");
}

void register_builtin_losses(LossRegistry& r) {
  // clang-format off
  r.add(entry<Contrastive, ContrastiveOptions>(names::kContrastive, "(x1 (N, D), x2 (N, D), similar (N))", "Chopra, Hadsell & LeCun 2005; Hadsell et al. 2006", "y·d² + (1−y)·max(0, m − d)²"));
  r.add(entry<Triplet, TripletOptions>(names::kTriplet, "(embeddings (N, D), labels (N))", "Schroff et al. 2015, arXiv:1503.03832", "max(0, d(a,p) − d(a,n) + margin), mined batch_all | batch_hard | semi_hard"));
  r.add(entry<LiftedStructured, LiftedStructuredOptions>(names::kLiftedStructured, "(embeddings (N, D), labels (N))", "Song et al. 2016, arXiv:1511.06452", "1/(2|P|) Σ_P max(0, log(Σ_N_i e^{α−D} + Σ_N_j e^{α−D}) + D_ij)²"));
  r.add(entry<NCE, NCEOptions>(names::kNCE, "(data_scores (N), data_log_noise (N), noise_scores (N, K), noise_log_noise (N, K))", "Gutmann & Hyvärinen 2010", "−log σ(∆(x)) − Σ_k log(1 − σ(∆(y_k))), ∆ = s − log(ν q)"));
  r.add(entry<InfoNCE, InfoNCEOptions>(names::kInfoNCE, "(positive (N), negative (N, K))", "Oord et al. 2018, arXiv:1807.03748", "−log e^{s⁺/τ} / (e^{s⁺/τ} + Σ_k e^{s⁻_k/τ})"));
  r.add(entry<NTXent, NTXentOptions>(names::kNTXent, "(z1 (N, D), z2 (N, D)[, memory_bank (M, D)])", "Chen et al. 2020, arXiv:2002.05709", "−log e^{sim(i,j)/τ} / Σ_{k≠i} e^{sim(i,k)/τ} over 2N views"));
  r.add(entry<SoftNearestNeighbors, SoftNearestNeighborsOptions>(names::kSoftNearestNeighbors, "(embeddings (b, D), labels (b))", "Frosst et al. 2019, arXiv:1902.01889", "−1/b Σ_i log Σ_{j≠i, y_j=y_i} e^{−d_ij/T} / Σ_{k≠i} e^{−d_ik/T}"));
  r.add(entry<Debiased, DebiasedOptions>(names::kDebiased, "(positive (N), negative (N, K))", "Chuang et al. 2020, arXiv:2007.00224", "−log pos/(pos + max((Σneg − Kτ⁺pos)/(1−τ⁺), K e^{−1/t}))"));
  r.add(entry<HardNegative, HardNegativeOptions>(names::kHardNegative, "(positive (N), negative (N, K))", "Robinson et al. 2021, arXiv:2010.04592", "debiased loss with negatives weighted ∝ e^{βs/t}"));
  r.add(entry<SupCon, SupConOptions>(names::kSupCon, "(features (M, D) | (N, V, D)[, labels])", "Khosla et al. 2020, arXiv:2004.11362", "−(τ/τ_b) 1/|P(i)| Σ_p log e^{z_i·z_p/τ} / Σ_{a≠i} e^{z_i·z_a/τ}"));
  r.add(entry<BarlowTwins, BarlowTwinsOptions>(names::kBarlowTwins, "(z1 (N, D), z2 (N, D))", "Zbontar et al. 2021, arXiv:2103.03230", "Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij²"));
  r.add(entry<Byol, ByolOptions>(names::kByol, "(prediction (N, D), target (N, D))", "Grill et al. 2020, arXiv:2006.07733", "2 − 2 cos(p, z) (or −cos)"));
  r.add(entry<Clip, ClipOptions>(names::kClip, "(image (N, D), text (N, D))", "Radford et al. 2021, arXiv:2103.00020", "½[CE(s·îtᵀ, diag) + CE(s·tîᵀ, diag)], s ≤ 100 learnable"));
  r.add(entry<SwAV, SwAVOptions>(names::kSwAV, "(scores (V, B, K))", "Caron et al. 2020, arXiv:2006.09882", "−Σ_k q_k log softmax(s/τ)_k, q by Sinkhorn-Knopp, views swapped"));
  // clang-format on
}

const LossRegistry& builtin_losses() {
  static const LossRegistry registry = [] {
    LossRegistry r;
    register_builtin_losses(r);
    return r;
  }();
  return registry;
}

}  // namespace contra::loss
