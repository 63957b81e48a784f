// CPC micro-benchmarks at the paper size: batch 8 × 20480 samples (128 frames), 256 channels, GRU
// 256, K = 12 steps, 128 negatives. contra as shipped: configure_allocator() at start-up, no
// environment.
//
//   build/bin/contra_cpc_bench --threads=1 [--benchmark_filter=Loss]
//
// BM_NegativeSampling/<mode>: sampling the negatives of all 12 steps (indices only).
// BM_ContrastiveLoss/<mode>:  the loss part of a step (sampling + scoring + InfoNCE), forward +
// backward,
//                             on fixed z (8, 128, 256) and predictions (8, 128, 12, 256).
// BM_EncoderContext:          encoder + GRU forward + backward alone (no loss).
// BM_BatchNormRelu/<0 fused|1 aten>: BatchNorm + ReLU at the first layer's size.
// BM_Encoder:                 the conv encoder alone; BM_Context/<0 gru|1 lstm>: the context
//                             network alone on fixed z (8, 128, 256).
// BM_TrainStep/<mode>:        the full step: forward, loss, backward, Adam.
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <torch/csrc/autograd/profiler_legacy.h>

#include "contra/core/runtime.h"
#include "contra/method/cpc_audio.h"
#include "contra/nn/batch_norm_relu.h"

namespace {

using contra::method::Batch;
using contra::method::CpcAudio;
using contra::method::CpcAudioConfig;
using contra::method::NegativeMode;

constexpr int64_t kBatch = 8, kWindow = 20480, kFrames = 128, kChannels = 256, kSteps = 12;
const char* kModes[] = {"batch", "same_speaker", "same_sequence", "hard"};

/// precision level: 0 = all float32, 1 = bf16 scoring products, 2 = and a bf16 conv stack.
CpcAudioConfig paper_config(const std::string& mode, int64_t precision = 0) {
  CpcAudioConfig cfg;
  cfg.loss.precision = precision >= 1 ? "bfloat16" : "float32";
  cfg.encoder.precision = precision >= 2 ? "bfloat16" : "float32";
  cfg.negatives.mode = mode;
  // same_sequence: a window of 128 frames offers 127 distinct negatives.
  cfg.negatives.count = mode == "same_sequence" ? 127 : 128;
  return cfg;
}

Batch paper_batch() {
  Batch batch;
  batch.input = torch::randn({kBatch, 1, kWindow});
  batch.labels = torch::arange(kBatch, torch::kLong).floor_divide(2);  // 4 speakers × 2 windows
  return batch;
}

void set_label(benchmark::State& state, const char* mode) {
  const char* precision[] = {" fp32", " bf16-loss", " bf16-loss+encoder"};
  state.SetLabel(std::string(mode) + precision[state.range(1)]);
}

void BM_NegativeSampling(benchmark::State& state) {
  const char* mode_name = kModes[state.range(0)];
  auto mode = contra::method::parse_negative_mode(mode_name);
  auto labels = paper_batch().labels;
  const int64_t count = paper_config(mode_name).negatives.count;
  std::vector<torch::Tensor> positives;
  for (int64_t k = 1; k <= kSteps; ++k) {
    positives.push_back(((torch::arange(kBatch, torch::kLong) * kFrames).unsqueeze(1) +
                         torch::arange(k, kFrames, torch::kLong).unsqueeze(0))
                            .flatten());
  }
  for (auto _ : state) {
    for (const auto& p : positives) {
      benchmark::DoNotOptimize(
          contra::method::sample_negatives(mode, p, kBatch, kFrames, count, labels));
    }
  }
  state.SetLabel(mode_name);
}
BENCHMARK(BM_NegativeSampling)->ArgsProduct({{0, 1, 2, 3}, {0}})->Unit(benchmark::kMillisecond);

void BM_ContrastiveLoss(benchmark::State& state) {
  const char* mode_name = kModes[state.range(0)];
  CpcAudio cpc(paper_config(mode_name, state.range(1)));
  auto batch = paper_batch();
  if (std::string(mode_name) == "hard") {
    for (int i = 0; i < 2; ++i) cpc.step(batch);  // fill the 2048-frame bank
  }
  auto z = torch::randn({kBatch, kFrames, kChannels}, torch::requires_grad());
  auto predictions = torch::randn({kBatch, kFrames, kSteps, kChannels}, torch::requires_grad());
  for (auto _ : state) {
    auto out = cpc.contrastive_loss(z, predictions, batch.labels);
    out.loss.backward();
  }
  set_label(state, mode_name);
}
BENCHMARK(BM_ContrastiveLoss)->ArgsProduct({{0, 1, 2, 3}, {0, 1}})->Unit(benchmark::kMillisecond);

void BM_EncoderContext(benchmark::State& state) {
  CpcAudio cpc(paper_config("batch", state.range(0) ? 2 : 0));
  state.SetLabel(state.range(0) ? "bf16 encoder" : "fp32");
  auto batch = paper_batch();
  for (auto _ : state) {
    auto c = cpc.features(batch.input, "context");
    c.sum().backward();
  }
  state.counters["windows/s"] = benchmark::Counter(static_cast<double>(kBatch * state.iterations()),
                                                   benchmark::Counter::kIsRate);
}
BENCHMARK(BM_EncoderContext)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Encoder(benchmark::State& state) {
  CpcAudio cpc(paper_config("batch"));
  auto batch = paper_batch();
  for (auto _ : state) {
    auto z = cpc.features(batch.input, "encoder");
    z.sum().backward();
  }
  state.counters["windows/s"] = benchmark::Counter(static_cast<double>(kBatch * state.iterations()),
                                                   benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Encoder)->Unit(benchmark::kMillisecond)->UseRealTime();

/// The context network alone (forward + backward) on fixed z (8, 128, 256): 0 GRU, 1 LSTM.
void BM_Context(benchmark::State& state) {
  auto cfg = paper_config("batch");
  cfg.context.type = state.range(0) ? "lstm" : "gru";
  CpcAudio cpc(cfg);
  auto z = torch::randn({kBatch, kFrames, kChannels}, torch::requires_grad());
  for (auto _ : state) {
    cpc.context->forward(z).sum().backward();
  }
  state.SetLabel(cfg.context.type);
}
BENCHMARK(BM_Context)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

/// BatchNorm + ReLU forward + backward at the first layer's size (8, 256, 4096): 0 the fused op,
/// 1 ATen's batch_norm then relu.
void BM_BatchNormRelu(benchmark::State& state) {
  auto x = torch::randn({kBatch, kChannels, 4096}, torch::requires_grad());
  auto g = torch::randn({kBatch, kChannels, 4096});
  auto w = torch::ones({kChannels}, torch::requires_grad()), b = torch::zeros({kChannels});
  auto rm = torch::zeros({kChannels}), rv = torch::ones({kChannels});
  for (auto _ : state) {
    auto y = state.range(0) == 0
                 ? contra::nn::functional::batch_norm_relu(x, w, b, rm, rv, true, 0.1, 1e-5)
                 : torch::relu(torch::batch_norm(x, w, b, rm, rv, true, 0.1, 1e-5, false));
    y.backward(g);
  }
  state.SetLabel(state.range(0) == 0 ? "fused" : "aten");
}
BENCHMARK(BM_BatchNormRelu)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_TrainStep(benchmark::State& state) {
  const char* mode_name = kModes[state.range(0)];
  CpcAudio cpc(paper_config(mode_name, state.range(1)));
  torch::optim::Adam adam(cpc.parameters(), torch::optim::AdamOptions(2e-4));
  auto batch = paper_batch();
  for (auto _ : state) {
    auto out = cpc.step(batch);
    adam.zero_grad();
    out.loss.backward();
    adam.step();
  }
  set_label(state, mode_name);
  state.counters["windows/s"] = benchmark::Counter(static_cast<double>(kBatch * state.iterations()),
                                                   benchmark::Counter::kIsRate);
}
BENCHMARK(BM_TrainStep)
    ->ArgsProduct({{0, 1, 2, 3}, {0, 1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

/// --profile=FILE[:mode[:fp32|bf16|bf16all[:loss]]]: one paper-size training step (or, with `loss`,
/// only the loss part on fixed z/predictions) under the legacy autograd profiler, written as a
/// Chrome trace (summarise with bench/python/trace_summary.py).
int profile(const std::string& spec) {
  std::vector<std::string> parts;
  for (std::size_t start = 0;;) {
    auto colon = spec.find(':', start);
    parts.push_back(spec.substr(start, colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  const std::string file = parts[0], mode = parts.size() > 1 ? parts[1] : "batch";
  const int64_t bf16 = parts.size() > 2 ? (parts[2] == "bf16"      ? 1
                                           : parts[2] == "bf16all" ? 2
                                                                   : 0)
                                        : 0;
  const bool loss_only = parts.size() > 3 && parts[3] == "loss";
  CpcAudio cpc(paper_config(mode, bf16));
  torch::optim::Adam adam(cpc.parameters(), torch::optim::AdamOptions(2e-4));
  auto batch = paper_batch();
  auto z = torch::randn({kBatch, kFrames, kChannels}, torch::requires_grad());
  auto predictions = torch::randn({kBatch, kFrames, kSteps, kChannels}, torch::requires_grad());
  auto one_step = [&] {
    if (loss_only) {
      cpc.contrastive_loss(z, predictions, batch.labels).loss.backward();
      return;
    }
    auto out = cpc.step(batch);
    adam.zero_grad();
    out.loss.backward();
    adam.step();
  };
  one_step();
  one_step();
  {
    torch::autograd::profiler::RecordProfile guard(file);
    one_step();
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  contra::configure_allocator();
  int threads = 1;
  std::string profile_spec;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      threads = std::atoi(argv[i] + 10);
    } else if (std::strncmp(argv[i], "--profile=", 10) == 0) {
      profile_spec = argv[i] + 10;
    } else {
      args.push_back(argv[i]);
    }
  }
  contra::set_threads(threads);
  torch::manual_seed(0);
  if (!profile_spec.empty()) return profile(profile_spec);
  int n = static_cast<int>(args.size());
  benchmark::AddCustomContext("threads", std::to_string(threads));
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
