// Throughput (images/s) of contra's batched image augmentations, float32 on the CPU: the SimCLR
// MNIST chain (28×28×1, batch 256: random resized crop + flip + colour jitter p 0.8 + blur p 0.5,
// ImageAugmentConfig::simclr(28)), the same on CIFAR-size RGB (32×32×3), and each transform alone.
// bench/python/augment_reference.py runs the per-sample loop torchvision would run (torchvision is
// not packaged with Debian's python3-torch, so it is pure torch) for comparison.
// Threads: CONTRA_THREADS (default 1).
#include <cstdlib>
#include <memory>
#include <string>

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "contra/core/runtime.h"
#include "contra/transforms/image_augment.h"

namespace {

using namespace contra::transforms;

constexpr int64_t kBatch = 256;

void run(benchmark::State& state, const ImageTransform& t, int64_t c, int64_t side) {
  torch::manual_seed(0);
  auto x = torch::rand({kBatch, c, side, side});
  uint64_t seed = 0;
  for (auto _ : state) {
    auto y = t.apply(x, seed++);
    benchmark::DoNotOptimize(y.data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

void register_all() {
  struct Case {
    std::string name;
    ImageTransformPtr t;
    int64_t c, side;
  };
  std::vector<Case> cases{
      {"simclr_mnist_28x28x1", ImageAugmentConfig::simclr(28).build(), 1, 28},
      {"simclr_cifar_32x32x3", ImageAugmentConfig::simclr(32).build(), 3, 32},
      {"moco_v2_cifar_32x32x3", ImageAugmentConfig::moco_v2(32).build(), 3, 32},
      {"crop_28x28x1", std::make_shared<RandomResizedCrop>(RandomResizedCropOptions(28)), 1, 28},
      {"flip_28x28x1", std::make_shared<RandomHorizontalFlip>(0.5), 1, 28},
      {"jitter_28x28x1",
       std::make_shared<ColorJitter>(
           ColorJitterOptions().brightness(0.8).contrast(0.8).saturation(0.8).hue(0.2).p(0.8)),
       1, 28},
      {"jitter_32x32x3",
       std::make_shared<ColorJitter>(
           ColorJitterOptions().brightness(0.8).contrast(0.8).saturation(0.8).hue(0.2).p(0.8)),
       3, 32},
      {"blur_k3_28x28x1", std::make_shared<GaussianBlur>(GaussianBlurOptions(3).p(0.5)), 1, 28},
      {"grayscale_32x32x3", std::make_shared<RandomGrayscale>(0.2), 3, 32},
      {"affine_32x32x3",
       std::make_shared<RandomAffine>(RandomAffineOptions().degrees(15).translate(0.1)), 3, 32},
      {"randaugment_n2_m9_32x32x3", std::make_shared<RandAugment>(RandAugmentOptions()), 3, 32},
  };
  for (const auto& c : cases) {
    benchmark::RegisterBenchmark(c.name.c_str(),
                                 [c](benchmark::State& s) { run(s, *c.t, c.c, c.side); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
}

}  // namespace

int main(int argc, char** argv) {
  contra::configure_allocator();
  const char* threads = std::getenv("CONTRA_THREADS");
  contra::set_threads(threads ? std::atoi(threads) : 1);
  benchmark::AddCustomContext("threads", std::to_string(torch::get_num_threads()));
  benchmark::AddCustomContext("batch", std::to_string(kBatch));
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
