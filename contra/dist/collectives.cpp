#include "contra/dist/collectives.h"

#include <cstring>
#include <map>
#include <tuple>

#include <torch/autograd.h>
#include <torch/torch.h>

#include "contra/core/error.h"

namespace contra::dist {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class AllGatherFunction : public torch::autograd::Function<AllGatherFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x) {
    ctx->saved_data["rows"] = x.size(0);
    return torch::cat(world().all_gather(x.detach()), 0);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const int64_t rows = ctx->saved_data["rows"].toInt();
    torch::Tensor g = grads[0].contiguous().clone();
    Group& group = world();
    group.all_reduce_sum_(g);
    return {g.narrow(0, group.rank() * rows, rows)};
  }
};

class AllReduceSumFunction : public torch::autograd::Function<AllReduceSumFunction> {
 public:
  static torch::Tensor forward(AutogradContext*, const torch::Tensor& x) {
    torch::Tensor out = x.detach().contiguous().clone();
    world().all_reduce_sum_(out);
    return out;
  }
  static variable_list backward(AutogradContext*, variable_list grads) {
    torch::Tensor g = grads[0].contiguous().clone();
    world().all_reduce_sum_(g);
    return {g};
  }
};

}  // namespace

torch::Tensor all_gather(const torch::Tensor& x) {
  TORCH_CHECK(x.defined() && x.dim() >= 1, "all_gather: needs a tensor of at least 1 dim");
  if (world().size() == 1) return x;
  return AllGatherFunction::apply(x);
}

torch::Tensor concat_all_gather(const torch::Tensor& x) {
  TORCH_CHECK(x.defined() && x.dim() >= 1, "concat_all_gather: needs a tensor of at least 1 dim");
  if (world().size() == 1) return x.detach();
  torch::NoGradGuard no_grad;
  return torch::cat(world().all_gather(x.detach()), 0);
}

torch::Tensor all_reduce_sum(const torch::Tensor& x) {
  if (world().size() == 1) return x;
  return AllReduceSumFunction::apply(x);
}

void broadcast_module(torch::nn::Module& module) {
  Group& group = world();
  if (group.size() == 1) return;
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters(/*recurse=*/true)) {
    torch::Tensor t = p.detach();
    group.broadcast_(t, 0);
  }
  for (auto& b : module.buffers(/*recurse=*/true)) {
    torch::Tensor t = b.detach();
    group.broadcast_(t, 0);
  }
}

std::int64_t average_gradients(const std::vector<torch::Tensor>& parameters,
                               std::int64_t bucket_bytes) {
  Group& group = world();
  if (group.size() == 1) return 0;
  torch::NoGradGuard no_grad;
  // Buckets per (dtype, device), in parameter order: the same layout on every rank.
  struct Bucket {
    std::vector<torch::Tensor> params;
    std::int64_t bytes = 0;
  };
  std::vector<Bucket> buckets;
  std::map<std::tuple<int, int, int>, std::size_t> open;  // (dtype, device type, index) → bucket
  for (const auto& p : parameters) {
    const auto key =
        std::make_tuple(static_cast<int>(p.scalar_type()), static_cast<int>(p.device().type()),
                        static_cast<int>(p.device().index()));
    auto it = open.find(key);
    if (it == open.end() || buckets[it->second].bytes >= bucket_bytes) {
      buckets.emplace_back();
      open[key] = buckets.size() - 1;
      it = open.find(key);
    }
    Bucket& b = buckets[it->second];
    b.params.push_back(p);
    b.bytes += p.numel() * static_cast<std::int64_t>(p.element_size());
  }
  std::int64_t total = 0;
  const double scale = 1.0 / static_cast<double>(group.size());
  for (auto& b : buckets) {
    std::vector<torch::Tensor> flat_parts;
    flat_parts.reserve(b.params.size());
    for (const auto& p : b.params) {
      flat_parts.push_back(p.grad().defined() ? p.grad().reshape({-1})
                                              : torch::zeros({p.numel()}, p.options()));
    }
    torch::Tensor flat = torch::cat(flat_parts);
    group.all_reduce_sum_(flat);
    flat.mul_(scale);
    std::int64_t offset = 0;
    for (auto& p : b.params) {
      torch::Tensor slice = flat.narrow(0, offset, p.numel()).view(p.sizes());
      offset += p.numel();
      if (p.grad().defined()) {
        p.mutable_grad().copy_(slice);
      } else if (slice.ne(0).any().item<bool>()) {
        // Another rank had a gradient for it: take the average like everyone else.
        p.mutable_grad() = slice.clone();
      }
    }
    total += flat.numel() * static_cast<std::int64_t>(flat.element_size());
  }
  return total;
}

std::string broadcast_string(const std::string& text) {
  Group& group = world();
  if (group.size() == 1) return text;
  torch::Tensor size = torch::tensor({static_cast<int64_t>(text.size())}, torch::kLong);
  size = size.to(group.device());
  group.broadcast_(size, 0);
  const int64_t n = size.cpu().item<int64_t>();
  torch::Tensor bytes = torch::empty({n}, torch::kUInt8);
  if (group.is_main() && n > 0) std::memcpy(bytes.data_ptr<uint8_t>(), text.data(), text.size());
  bytes = bytes.to(group.device());
  if (n > 0) group.broadcast_(bytes, 0);
  bytes = bytes.cpu().contiguous();
  return std::string(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()),
                     static_cast<std::size_t>(n));
}

std::vector<double> all_reduce_sum(const std::vector<double>& values) {
  Group& group = world();
  if (group.size() == 1 || values.empty()) return values;
  torch::Tensor t = torch::tensor(values, torch::kDouble).to(group.device());
  group.all_reduce_sum_(t);
  t = t.cpu().contiguous();
  return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
}

bool any_rank(bool flag) { return all_reduce_sum(std::vector<double>{flag ? 1.0 : 0.0})[0] > 0; }

Shuffled batch_shuffle(const torch::Tensor& x) {
  Group& group = world();
  const int64_t n = x.size(0);
  torch::NoGradGuard no_grad;
  if (group.size() == 1) {
    torch::Tensor perm =
        torch::randperm(n, torch::TensorOptions().dtype(torch::kLong)).to(x.device());
    return {x.index_select(0, perm), torch::argsort(perm)};
  }
  torch::Tensor all = concat_all_gather(x);
  torch::Tensor perm =
      group.is_main() ? torch::randperm(all.size(0), torch::TensorOptions().dtype(torch::kLong))
                      : torch::empty({all.size(0)}, torch::kLong);
  perm = perm.to(group.device());
  group.broadcast_(perm, 0);
  perm = perm.to(x.device());
  return {all.index_select(0, perm.narrow(0, group.rank() * n, n)), torch::argsort(perm)};
}

torch::Tensor batch_unshuffle(const torch::Tensor& x, const torch::Tensor& unshuffle) {
  Group& group = world();
  torch::NoGradGuard no_grad;
  if (group.size() == 1) return x.index_select(0, unshuffle);
  const int64_t n = x.size(0);
  torch::Tensor all = concat_all_gather(x);
  return all.index_select(0, unshuffle.narrow(0, group.rank() * n, n));
}

}  // namespace contra::dist
