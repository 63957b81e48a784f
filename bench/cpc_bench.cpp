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

namespace {

using contra::method::Batch;
using contra::method::CpcAudio;
using contra::method::CpcAudioConfig;
using contra::method::NegativeMode;

constexpr int64_t kBatch = 8, kWindow = 20480, kFrames = 128, kChannels = 256, kSteps = 12;
const char* kModes[] = {"batch", "same_speaker", "same_sequence", "hard"};

CpcAudioConfig paper_config(const std::string& mode, bool bf16 = false) {
  CpcAudioConfig cfg;
  cfg.loss.precision = bf16 ? "bfloat16" : "float32";
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
  state.SetLabel(std::string(mode) + (state.range(1) ? " bf16" : " fp32"));
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
  CpcAudio cpc(paper_config("batch"));
  auto batch = paper_batch();
  for (auto _ : state) {
    auto c = cpc.features(batch.input, "context");
    c.sum().backward();
  }
  state.counters["windows/s"] = benchmark::Counter(static_cast<double>(kBatch * state.iterations()),
                                                   benchmark::Counter::kIsRate);
}
BENCHMARK(BM_EncoderContext)->Unit(benchmark::kMillisecond)->UseRealTime();

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
    ->ArgsProduct({{0, 1, 2, 3}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

/// --profile=FILE[:mode[:bf16]]: one paper-size training step under the legacy autograd profiler,
/// written as a Chrome trace (summarise with bench/python/trace_summary.py).
int profile(const std::string& spec) {
  std::string file = spec, mode = "batch";
  bool bf16 = false;
  if (auto colon = spec.find(':'); colon != std::string::npos) {
    file = spec.substr(0, colon);
    mode = spec.substr(colon + 1);
    if (auto c2 = mode.find(':'); c2 != std::string::npos) {
      bf16 = mode.substr(c2 + 1) == "bf16";
      mode = mode.substr(0, c2);
    }
  }
  CpcAudio cpc(paper_config(mode, bf16));
  torch::optim::Adam adam(cpc.parameters(), torch::optim::AdamOptions(2e-4));
  auto batch = paper_batch();
  auto one_step = [&] {
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
