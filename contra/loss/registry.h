#pragma once
/// The loss registry: an explicit table of the built-in losses by name (DESIGN.md §3), each with
/// its paper, formula, forward signature and a factory that builds the module from a config
/// section.
///
/// Losses do not share one forward signature (scores, two views, embeddings + labels...);
/// `signature` says which one a module takes, and `torch::nn::AnyModule::forward` checks the
/// argument types at run time. An unknown name throws ConfigError listing the valid ones.
///
///   const auto& losses = contra::loss::builtin_losses();
///   torch::nn::AnyModule loss = losses.make(tree, "method.loss");  // {name: nt_xent, temperature:
///   0.5} torch::Tensor value = loss.forward(z1, z2);
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <torch/nn/modules/container/any.h>

#include "contra/core/config.h"

namespace contra::loss {

/// One registered loss.
struct LossEntry {
  std::string name;
  /// Forward arguments with shapes, e.g. "(z1 (N, D), z2 (N, D)[, memory_bank (M, D)])".
  std::string signature;
  /// Citation: authors, year, arXiv id or venue.
  std::string paper;
  /// The formula, in one line.
  std::string formula;
  /// Builds the module from the config section at `path` (its keys: `name` and the loss's options;
  /// an absent section gives the defaults). Throws ConfigError for unknown keys or bad values.
  std::function<torch::nn::AnyModule(const ConfigTree& tree, const std::string& path)> make;
};

class LossRegistry {
 public:
  /// Adds an entry; a duplicate name throws ConfigError.
  void add(LossEntry entry);
  /// The entry called `name`; throws ConfigError listing the valid names.
  const LossEntry& at(std::string_view name) const;
  bool contains(std::string_view name) const;
  /// Names in registration order.
  std::vector<std::string> names() const;
  const std::vector<LossEntry>& entries() const { return entries_; }

  /// Builds the loss named by `<path>.name`, with the options in the same section.
  torch::nn::AnyModule make(const ConfigTree& tree, const std::string& path) const;
  /// Builds the loss `name` with default options.
  torch::nn::AnyModule make(std::string_view name) const;

 private:
  std::vector<LossEntry> entries_;
};

/// Names of the built-in losses.
namespace names {
inline constexpr std::string_view kContrastive = "contrastive";
inline constexpr std::string_view kTriplet = "triplet";
inline constexpr std::string_view kLiftedStructured = "lifted_structured";
inline constexpr std::string_view kNCE = "nce";
inline constexpr std::string_view kInfoNCE = "info_nce";
inline constexpr std::string_view kNTXent = "nt_xent";
inline constexpr std::string_view kSoftNearestNeighbors = "soft_nearest_neighbors";
inline constexpr std::string_view kDebiased = "debiased";
inline constexpr std::string_view kHardNegative = "hard_negative";
inline constexpr std::string_view kSupCon = "supcon";
inline constexpr std::string_view kBarlowTwins = "barlow_twins";
inline constexpr std::string_view kByol = "byol";
inline constexpr std::string_view kClip = "clip";
inline constexpr std::string_view kSwAV = "swav";
}  // namespace names

/// Registers the built-in losses, one line each.
void register_builtin_losses(LossRegistry& registry);
/// A registry holding the built-in losses (built once).
const LossRegistry& builtin_losses();

}  // namespace contra::loss
