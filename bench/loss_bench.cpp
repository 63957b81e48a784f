// Forward + backward of every contra loss at realistic sizes (batch 256, dim 128; InfoNCE against a
// 65536-entry queue; triplet batch-hard on 512), float32 on the CPU. bench/loss_bench.sh runs this
// and bench/python/loss_bench.py (the same computations with scripts/loss_reference.py) and prints
// the ratio. Threads: CONTRA_THREADS (default 1). The allocator is tuned as contra ships
// (contra::configure_allocator); denormals are flushed to zero on both sides.
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "contra/core/runtime.h"
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

namespace {

using namespace contra::loss;
using Inputs = std::vector<torch::Tensor>;

constexpr int64_t kBatch = 256;
constexpr int64_t kDim = 128;

torch::Tensor leaf(torch::Tensor t) { return t.requires_grad_(true); }
torch::Tensor embeddings(int64_t n, int64_t d = kDim) { return leaf(torch::randn({n, d})); }
torch::Tensor unit_embeddings(int64_t n) { return leaf(l2_normalize(torch::randn({n, kDim}))); }
torch::Tensor cosine_scores(std::vector<int64_t> shape) { return leaf(torch::rand(shape) * 2 - 1); }
torch::Tensor class_labels(int64_t n, int64_t per_class) {
  return torch::arange(n, torch::kLong).floor_divide(per_class);
}

// Times loss(inputs).backward(); gradients are dropped after each iteration.
void run(benchmark::State& state, const std::function<Inputs()>& make,
         const std::function<torch::Tensor(const Inputs&)>& loss) {
  torch::manual_seed(0);
  Inputs inputs = make();
  for (auto _ : state) {
    torch::Tensor value = loss(inputs);
    value.backward();
    benchmark::DoNotOptimize(value.data_ptr());
    for (auto& x : inputs) {
      if (x.requires_grad()) x.mutable_grad() = torch::Tensor();
    }
  }
}

void register_all() {
  auto add = [](const char* name, std::function<Inputs()> make,
                std::function<torch::Tensor(const Inputs&)> loss) {
    benchmark::RegisterBenchmark(name, [make, loss](benchmark::State& s) {
      run(s, make, loss);
    })->Unit(benchmark::kMillisecond);
  };
  add(
      "contrastive",
      [] {
        return Inputs{embeddings(kBatch), embeddings(kBatch), torch::randint(2, {kBatch})};
      },
      [](const Inputs& in) { return functional::contrastive(in[0], in[1], in[2]); });
  add(
      "triplet_batch_hard_512",
      [] {
        return Inputs{embeddings(512), class_labels(512, 8)};
      },
      [](const Inputs& in) { return functional::triplet_mined(in[0], in[1]); });
  add(
      "triplet_batch_all",
      [] {
        return Inputs{embeddings(kBatch), class_labels(kBatch, 8)};
      },
      [](const Inputs& in) {
        return functional::triplet_mined(in[0], in[1],
                                         TripletOptions().mining(TripletMining::kBatchAll));
      });
  add(
      "triplet_semi_hard",
      [] {
        return Inputs{embeddings(kBatch), class_labels(kBatch, 8)};
      },
      [](const Inputs& in) {
        return functional::triplet_mined(in[0], in[1],
                                         TripletOptions().mining(TripletMining::kSemiHard));
      });
  add(
      "lifted_structured",
      [] {
        return Inputs{embeddings(kBatch), class_labels(kBatch, 8)};
      },
      [](const Inputs& in) { return functional::lifted_structured(in[0], in[1]); });
  add(
      "nce",
      [] {
        return Inputs{leaf(torch::randn({kBatch})), torch::randn({kBatch}) - 5,
                      leaf(torch::randn({kBatch, 1024})), torch::randn({kBatch, 1024}) - 5};
      },
      [](const Inputs& in) { return functional::nce(in[0], in[1], in[2], in[3]); });
  add(
      "info_nce_scores",
      [] {
        return Inputs{cosine_scores({kBatch}), cosine_scores({kBatch, 4096})};
      },
      [](const Inputs& in) { return functional::info_nce(in[0], in[1]); });
  add(
      "info_nce_in_batch",
      [] {
        return Inputs{embeddings(kBatch), embeddings(kBatch)};
      },
      [](const Inputs& in) { return functional::info_nce_keys(in[0], in[1]); });
  add(
      "info_nce_queue_65536",
      [] {
        return Inputs{embeddings(kBatch), embeddings(kBatch),
                      l2_normalize(torch::randn({65536, kDim}))};
      },
      [](const Inputs& in) {
        return functional::info_nce_keys(in[0], in[1], in[2], InfoNCEOptions().temperature(0.07));
      });
  add(
      "nt_xent",
      [] {
        return Inputs{embeddings(kBatch), embeddings(kBatch)};
      },
      [](const Inputs& in) { return functional::nt_xent(in[0], in[1]); });
  // Unit embeddings (squared distances in [0, 4]).
  add(
      "soft_nearest_neighbors",
      [] {
        return Inputs{unit_embeddings(kBatch), class_labels(kBatch, 8)};
      },
      [](const Inputs& in) {
        return functional::soft_nearest_neighbors(in[0], in[1],
                                                  SoftNearestNeighborsOptions().temperature(0.1));
      });
  add(
      "soft_nearest_neighbors_min_t",
      [] {
        return Inputs{unit_embeddings(kBatch), class_labels(kBatch, 8)};
      },
      [](const Inputs& in) {
        return functional::soft_nearest_neighbors(
            in[0], in[1], SoftNearestNeighborsOptions().optimize_temperature(true));
      });
  // SimCLR-style scores: 2N rows, 2N − 2 negatives each.
  add(
      "debiased",
      [] {
        return Inputs{cosine_scores({2 * kBatch}), cosine_scores({2 * kBatch, 2 * kBatch - 2})};
      },
      [](const Inputs& in) { return functional::debiased(in[0], in[1]); });
  add(
      "hard_negative",
      [] {
        return Inputs{cosine_scores({2 * kBatch}), cosine_scores({2 * kBatch, 2 * kBatch - 2})};
      },
      [](const Inputs& in) { return functional::hard_negative(in[0], in[1]); });
  add(
      "supcon",
      [] {
        return Inputs{leaf(torch::randn({kBatch, 2, kDim})), class_labels(kBatch, 8)};
      },
      [](const Inputs& in) { return functional::supcon(in[0], in[1]); });
  add(
      "barlow_twins",
      [] {
        return Inputs{embeddings(kBatch), embeddings(kBatch)};
      },
      [](const Inputs& in) { return functional::barlow_twins(in[0], in[1]); });
  add(
      "byol",
      [] {
        return Inputs{embeddings(kBatch), embeddings(kBatch)};
      },
      [](const Inputs& in) { return functional::byol(in[0], in[1]); });
  add(
      "clip",
      [] {
        return Inputs{embeddings(kBatch), embeddings(kBatch), leaf(torch::full({}, 2.659))};
      },
      [](const Inputs& in) { return functional::clip(in[0], in[1], in[2]); });
  // SwAV: 2 views × 256 samples × 3000 prototypes.
  add(
      "swav",
      [] {
        return Inputs{cosine_scores({2, kBatch, 3000})};
      },
      [](const Inputs& in) { return functional::swav(in[0]); });
}

}  // namespace

int main(int argc, char** argv) {
  contra::configure_allocator();
  const char* threads = std::getenv("CONTRA_THREADS");
  contra::set_threads(threads ? std::atoi(threads) : 1);
  // As the Python side: float softmax gradients in the denormal range slow matrix products 10×+.
  at::globalContext().setFlushDenormal(true);
  const contra::RuntimeInfo info = contra::runtime_info(/*measure=*/true);
  benchmark::AddCustomContext("threads", std::to_string(info.threads));
  benchmark::AddCustomContext("blas", info.blas_kind);
  benchmark::AddCustomContext("matmul_gflops", std::to_string(info.matmul_gflops));
  benchmark::AddCustomContext("allocator_tuned", info.allocator_tuned ? "yes" : "no");
  benchmark::AddCustomContext("torch", info.torch_version);
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
