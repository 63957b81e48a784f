#include "contra/method/cpc_audio.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include "contra/core/runtime.h"
#include "contra/dist/collectives.h"
#include "contra/loss/info_nce.h"
#include "contra/method/cpc_loss_kernels.h"
#include "contra/method/sampled_scores.h"

namespace contra::method {

// ---- config -------------------------------------------------------------------------------------

void CpcEncoderConfig::validate() const {
  check<ConfigError>(channels > 0, "channels: must be > 0 (got {})", channels);
  check<ConfigError>(
      !kernels.empty() && kernels.size() == strides.size() && kernels.size() == paddings.size(),
      "kernels, strides, paddings: need equal non-zero lengths (got {}, {}, {})", kernels.size(),
      strides.size(), paddings.size());
  check<ConfigError>(norm == "none" || norm == "batch" || norm == "layer",
                     "norm: must be none, batch or layer (got '{}')", norm);
  check<ConfigError>(precision == "float32" || precision == "bfloat16",
                     "precision: must be float32 or bfloat16 (got '{}')", precision);
}

void CpcContextConfig::validate() const {
  check<ConfigError>(type == "gru" || type == "lstm" || type == "transformer",
                     "type: must be gru, lstm or transformer (got '{}')", type);
  check<ConfigError>(hidden > 0, "hidden: must be > 0 (got {})", hidden);
  check<ConfigError>(layers >= 1, "layers: must be >= 1 (got {})", layers);
  if (type == "transformer") {
    check<ConfigError>(heads >= 1 && hidden % heads == 0,
                       "heads: must divide hidden (got heads {}, hidden {})", heads, hidden);
  }
  check<ConfigError>(dropout >= 0 && dropout < 1, "dropout: must be in [0, 1) (got {})", dropout);
}

void CpcPredictorConfig::validate() const {
  check<ConfigError>(steps >= 1, "steps: must be >= 1 (got {})", steps);
  check<ConfigError>(head == "linear" || head == "transformer",
                     "head: must be linear or transformer (got '{}')", head);
}

void CpcLossConfig::validate() const {
  check<ConfigError>(temperature > 0, "temperature: must be > 0 (got {})", temperature);
  check<ConfigError>(precision == "float32" || precision == "bfloat16" || precision == "auto",
                     "precision: must be float32, bfloat16 or auto (got '{}')", precision);
}

void CpcNegativesConfig::validate() const {
  parse_negative_mode(mode);
  check<ConfigError>(!across_ranks || mode == "batch",
                     "across_ranks: only mode batch draws negatives across ranks (got mode {})",
                     mode);
  check<ConfigError>(count >= 1, "count: must be >= 1 (got {})", count);
  if (mode == "hard") {
    check<ConfigError>(hard >= 1 && hard <= count, "hard: must be in [1, count = {}] (got {})",
                       count, hard);
    check<ConfigError>(bank_size >= hard, "bank_size: must be >= hard = {} (got {})", hard,
                       bank_size);
  }
}

void CpcAudioConfig::validate() const {
  // Sections validate themselves when read from YAML; this re-checks a struct built in code.
  auto section = [](const char* name, auto&& f) {
    try {
      f();
    } catch (const ConfigError& e) {
      throw ConfigError(std::string(name) + "." + e.what());
    }
  };
  section("encoder", [&] { encoder.validate(); });
  section("context", [&] { context.validate(); });
  section("predictor", [&] { predictor.validate(); });
  section("loss", [&] { loss.validate(); });
  section("negatives", [&] { negatives.validate(); });
}

// ---- negatives ----------------------------------------------------------------------------------

NegativeMode parse_negative_mode(const std::string& name) {
  if (name == "batch") return NegativeMode::kBatch;
  if (name == "same_speaker") return NegativeMode::kSameSpeaker;
  if (name == "same_sequence") return NegativeMode::kSameSequence;
  if (name == "hard") return NegativeMode::kHard;
  throw ConfigError(fmt::format(
      "negatives.mode: unknown '{}' (expected batch, same_speaker, same_sequence or hard)", name));
}

const char* negative_mode_name(NegativeMode mode) {
  switch (mode) {
    case NegativeMode::kBatch:
      return "batch";
    case NegativeMode::kSameSpeaker:
      return "same_speaker";
    case NegativeMode::kSameSequence:
      return "same_sequence";
    case NegativeMode::kHard:
      return "hard";
  }
  return "?";
}

namespace {

/// Windows grouped by label: for window b, its group occupies order[start[b] .. start[b] +
/// size[b]), and b sits at order[start[b] + rank[b]].
struct SpeakerGroups {
  torch::Tensor order, start, size, rank;
};

SpeakerGroups speaker_groups(const torch::Tensor& labels, int64_t batch) {
  check<ConfigError>(labels.defined(),
                     "cpc_audio: negatives.mode same_speaker needs batch.labels (speaker ids)");
  check<ConfigError>(labels.dim() == 1 && labels.size(0) == batch,
                     "cpc_audio: batch.labels must be ({}) speaker ids (got shape {})", batch,
                     fmt::format("{}", fmt::join(labels.sizes(), ", ")));
  auto l = labels.to(torch::kLong);
  auto [sorted, order] = torch::sort(l, /*stable=*/true, /*dim=*/0, /*descending=*/false);
  SpeakerGroups g;
  g.order = order;
  g.start = torch::searchsorted(sorted, l, /*out_int32=*/false, /*right=*/false);
  g.size = torch::searchsorted(sorted, l, false, /*right=*/true) - g.start;
  auto position = torch::empty_like(order);
  position.scatter_(0, order, torch::arange(batch, order.options()));
  g.rank = position - g.start;
  return g;
}

void check_count(NegativeMode mode, int64_t count, int64_t available, int64_t batch,
                 int64_t frames) {
  check<ConfigError>(count <= available,
                     "cpc_audio: negatives.count = {} but mode {} can supply only {} distinct "
                     "frames per anchor (batch {} windows × {} frames); lower negatives.count or "
                     "enlarge the batch/window{}",
                     count, negative_mode_name(mode), available, batch, frames,
                     mode == NegativeMode::kSameSpeaker ? " or put more windows per speaker" : "");
}

}  // namespace

int64_t available_negatives(NegativeMode mode, int64_t batch, int64_t frames,
                            const torch::Tensor& labels) {
  switch (mode) {
    case NegativeMode::kBatch:
    case NegativeMode::kHard:
      return batch * frames - 1;
    case NegativeMode::kSameSequence:
      return frames - 1;
    case NegativeMode::kSameSpeaker: {
      auto g = speaker_groups(labels, batch);
      return g.size.min().item<int64_t>() * frames - 1;
    }
  }
  return 0;
}

torch::Tensor sample_negatives(NegativeMode mode, const torch::Tensor& positive, int64_t batch,
                               int64_t frames, int64_t count, const torch::Tensor& labels) {
  TORCH_CHECK(positive.dim() == 1, "sample_negatives: positive must be (M), got ",
              positive.sizes());
  check<ConfigError>(count >= 0, "cpc_audio: negatives.count must be >= 0 (got {})", count);
  const auto opts = positive.options().dtype(torch::kLong);
  const int64_t m = positive.size(0);
  if (count == 0) return torch::empty({m, 0}, opts);
  auto pos = positive.to(torch::kLong).unsqueeze(1);  // (M, 1)
  switch (mode) {
    case NegativeMode::kBatch:
    case NegativeMode::kHard: {
      check_count(mode, count, batch * frames - 1, batch, frames);
      auto r = torch::randint(0, batch * frames - 1, {m, count}, opts);
      return r + (r >= pos).to(torch::kLong);  // skip the positive's own slot
    }
    case NegativeMode::kSameSequence: {
      check_count(mode, count, frames - 1, batch, frames);
      auto window_start = torch::div(pos, frames, "floor") * frames;
      auto r = torch::randint(0, frames - 1, {m, count}, opts);
      return window_start + r + (r >= pos - window_start).to(torch::kLong);
    }
    case NegativeMode::kSameSpeaker: {
      auto g = speaker_groups(labels, batch);
      check_count(mode, count, g.size.min().item<int64_t>() * frames - 1, batch, frames);
      // table[b] = frame ids of the windows of b's speaker group, in group order: (B, G·T).
      const int64_t G = g.size.max().item<int64_t>();
      auto member =
          (g.start.unsqueeze(1) + torch::arange(G, opts).unsqueeze(0)).clamp_max(batch - 1);
      auto table = (g.order.index_select(0, member.flatten()).view({batch, G, 1}) * frames +
                    torch::arange(frames, opts).view({1, 1, frames}))
                       .view({-1});
      auto b = torch::div(pos, frames, "floor");  // (M, 1) window of each anchor
      auto pool = g.size.index_select(0, b.squeeze(1)).unsqueeze(1) * frames;  // (M, 1)
      auto slot = g.rank.index_select(0, b.squeeze(1)).unsqueeze(1) * frames + (pos - b * frames);
      // Uniform r ∈ [0, pool − 1) per row (pools differ by row): floor(u · (pool − 1)), u ∈ [0, 1)
      // in float32 (non-uniformity ≤ pool · 2⁻²⁴).
      auto u = torch::rand({m, count}, opts.dtype(torch::kFloat));
      auto r = torch::minimum((u * (pool - 1).to(torch::kFloat)).to(torch::kLong), pool - 2);
      r = r + (r >= slot).to(torch::kLong) + b * (G * frames);
      return table.index_select(0, r.flatten()).view({m, count});
    }
  }
  return {};
}

nn::ConvEncoderOptions CpcEncoderConfig::options() const {
  return nn::ConvEncoderOptions()
      .channels(channels)
      .kernels(kernels)
      .strides(strides)
      .paddings(paddings)
      .norm(norm)
      .precision(precision);
}

nn::ContextNetworkOptions CpcContextConfig::options(int64_t input_size) const {
  return nn::ContextNetworkOptions(input_size)
      .type(type)
      .hidden_size(hidden)
      .layers(layers)
      .heads(heads)
      .feedforward(feedforward)
      .dropout(dropout);
}

// ---- the method ---------------------------------------------------------------------------------

CpcAudio::CpcAudio(CpcAudioConfig config) : config_(std::move(config)) {
  config_.validate();
  mode_ = parse_negative_mode(config_.negatives.mode);
  const auto& e = config_.encoder;
  encoder = register_module("encoder", nn::ConvEncoder(e.options()));
  const auto& c = config_.context;
  context = register_module("context", nn::ContextNetwork(c.options(e.channels)));
  const auto& p = config_.predictor;
  predictor =
      register_module("predictor", nn::CpcPredictor(nn::CpcPredictorOptions(c.hidden, e.channels)
                                                        .steps(p.steps)
                                                        .head(p.head)
                                                        .bias(p.bias)
                                                        .heads(p.heads)
                                                        .precision(config_.loss.precision)));
  if (mode_ == NegativeMode::kHard) {
    bank_ = register_buffer("bank", torch::zeros({config_.negatives.bank_size, e.channels}));
    bank_next_ = register_buffer("bank_next", torch::zeros({}, torch::kLong));
    bank_filled_ = register_buffer("bank_filled", torch::zeros({}, torch::kLong));
  }
}

int64_t CpcAudio::frames_for(int64_t samples) const { return encoder->frames_for(samples); }

int64_t CpcAudio::min_window() const {
  return encoder->receptive_field() + config_.predictor.steps * encoder->downsampling();
}

void CpcAudio::check_window(int64_t samples) const {
  check<ConfigError>(samples >= min_window(),
                     "cpc_audio: window of {} samples is too short: needs >= {} (receptive field "
                     "{} + {} steps × {} samples per frame)",
                     samples, min_window(), encoder->receptive_field(), config_.predictor.steps,
                     encoder->downsampling());
}

void CpcAudio::check_batch(int64_t batch, int64_t samples, const torch::Tensor& labels) const {
  check_window(samples);
  const int64_t frames = frames_for(samples);
  const int64_t random =
      config_.negatives.count - (mode_ == NegativeMode::kHard ? config_.negatives.hard : 0);
  // In hard mode the in-batch part must also cover the hard slots until the bank is filled.
  const int64_t needed = mode_ == NegativeMode::kHard ? config_.negatives.count : random;
  check_count(mode_, needed, available_negatives(mode_, batch, frames, labels), batch, frames);
}

torch::Tensor CpcAudio::features(const torch::Tensor& input, const std::string& kind) {
  check<ConfigError>(kind == "context" || kind == "encoder",
                     "cpc_audio: unknown feature kind '{}' (expected context or encoder)", kind);
  TORCH_CHECK(input.dim() == 3 && input.size(1) == 1, "cpc_audio: input must be (B, 1, S), got ",
              input.sizes());
  auto z = encoder->forward(input);
  return kind == "encoder" ? z : context->forward(z);
}

void CpcAudio::push_bank(const torch::Tensor& frames) {
  torch::NoGradGuard no_grad;
  const int64_t capacity = bank_.size(0);
  auto f = frames.detach();
  if (f.size(0) > capacity) f = f.narrow(0, f.size(0) - capacity, capacity);
  const int64_t n = f.size(0);
  const int64_t next = bank_next_.item<int64_t>();
  auto slots = torch::remainder(torch::arange(next, next + n, bank_next_.options()), capacity);
  bank_.index_copy_(0, slots, f.to(bank_.dtype()));
  bank_next_.fill_((next + n) % capacity);
  bank_filled_.fill_(std::min(capacity, bank_filled_.item<int64_t>() + n));
}

StepOutput CpcAudio::step(const Batch& batch) {
  const auto& x = batch.input;
  TORCH_CHECK(x.defined() && x.dim() == 3 && x.size(1) == 1,
              "cpc_audio: batch.input must be (B, 1, S) audio, got ",
              x.defined() ? x.sizes() : torch::IntArrayRef{});
  const int64_t B = x.size(0);
  check_batch(B, x.size(2), batch.labels);
  auto z = encoder->forward(x);              // (B, T, C)
  auto c = context->forward(z);              // (B, T, H)
  auto predictions = predictor->forward(c);  // (B, T, K, C)
  auto out = contrastive_loss(z, predictions, batch.labels);
  if (mode_ == NegativeMode::kHard && is_training()) push_bank(z.reshape({-1, z.size(2)}));
  return out;
}

torch::Tensor CpcAudio::sample_candidates(int64_t batch, int64_t frames, int64_t count,
                                          const torch::Tensor& labels, int64_t pool_batch,
                                          int64_t pool_offset, c10::Device device) const {
  const int64_t K = config_.predictor.steps;
  pool_batch = std::max(pool_batch, batch);
  if ((mode_ == NegativeMode::kBatch || mode_ == NegativeMode::kHard) && device.is_cpu()) {
    // One 63-bit seed from the default generator (so a seeded or resumed run draws the same
    // negatives), then the counter-based sampler.
    const auto seed = static_cast<uint64_t>(
        torch::randint(std::numeric_limits<int64_t>::max(), {1}, torch::kLong).item<int64_t>());
    return uniform_candidates(batch, frames, K, count, pool_batch * frames, pool_offset, seed);
  }
  const auto long_opts = torch::TensorOptions().dtype(torch::kLong).device(device);
  auto on_device = labels.defined() ? labels.to(device) : labels;
  std::vector<torch::Tensor> rows;
  for (int64_t k = 1; k <= K; ++k) {
    // Positives z_{t+k}: pool ids offset + b·T + t + k, t ∈ [0, T−k).
    auto positive = ((torch::arange(batch, long_opts) * frames).unsqueeze(1) +
                     torch::arange(k, frames, long_opts).unsqueeze(0))
                        .flatten() +
                    pool_offset;
    auto negative = sample_negatives(mode_, positive, pool_batch, frames, count, on_device);
    rows.push_back(torch::cat({positive.unsqueeze(1), negative}, 1));
  }
  return torch::cat(rows, 0);
}

StepOutput CpcAudio::contrastive_loss(const torch::Tensor& z, const torch::Tensor& predictions,
                                      const torch::Tensor& labels) {
  const int64_t K = config_.predictor.steps;
  TORCH_CHECK(z.dim() == 3 && predictions.dim() == 4 && predictions.size(0) == z.size(0) &&
                  predictions.size(1) == z.size(1) && predictions.size(2) == K &&
                  predictions.size(3) == z.size(2),
              "cpc_audio: z (B, T, C) and predictions (B, T, K, C) expected, got ", z.sizes(),
              " and ", predictions.sizes());
  const int64_t B = z.size(0), T = z.size(1), C = z.size(2);
  const int64_t n_neg = config_.negatives.count;
  auto z_flat = z.reshape({B * T, C});
  // Scoring operands: bf16 halves the bytes and runs on AMX/bf16 units; scores return to float32.
  const bool bf16 = resolve_bf16(config_.loss.precision, z.device());
  auto score_type = bf16 ? torch::kBFloat16 : z.scalar_type();

  // Hard mode: the `hard` bank entries nearest to every frame of the batch (shared by all k).
  torch::Tensor hard_ids, bank_score;
  int64_t n_hard = 0;
  if (mode_ == NegativeMode::kHard) {
    const int64_t filled = bank_filled_.item<int64_t>();
    if (filled >= config_.negatives.hard) {
      n_hard = config_.negatives.hard;
      torch::NoGradGuard no_grad;
      auto bank = bank_.narrow(0, 0, filled);
      hard_ids = std::get<1>(torch::cdist(z_flat.detach(), bank).topk(n_hard, 1, false));
      // A copy (the graph keeps it while step() pushes new frames into the bank in place).
      bank_score = bank.to(score_type, /*non_blocking=*/false, /*copy=*/true);  // (filled, C)
    }
  }
  const int64_t n_random = n_neg - n_hard;
  // The frames candidates are drawn from: this batch's, or with across_ranks every rank's
  // (positives then sit at this rank's offset in the gathered pool).
  torch::Tensor pool = z_flat;
  int64_t pool_batch = B, pool_offset = 0;
  if (config_.negatives.across_ranks && dist::world().size() > 1) {
    pool = dist::all_gather(z_flat);  // (W·B·T, C)
    pool_batch = B * dist::world().size();
    pool_offset = dist::world().rank() * B * T;
  }
  // candidates (R, 1 + count): the positive, then the negatives, of every anchor of every step.
  auto candidates = sample_candidates(B, T, n_random, labels, pool_batch, pool_offset, z.device());
  if (n_hard > 0) {
    // Bank rows follow the batch's frames in the pool; each anchor takes its positive's entries.
    std::vector<torch::Tensor> hard;
    for (int64_t k = 1; k <= K; ++k) {
      auto positive = ((torch::arange(B, hard_ids.options()) * T).unsqueeze(1) +
                       torch::arange(k, T, hard_ids.options()).unsqueeze(0))
                          .flatten();
      hard.push_back(hard_ids.index_select(0, positive) + pool.size(0));
    }
    candidates = torch::cat({candidates, torch::cat(hard, 0).to(candidates.scalar_type())}, 1);
    pool = torch::cat({pool, bank_score.to(pool.scalar_type())}, 0);
  }
  auto [losses, correct] = step_info_nce(predictions.to(score_type), pool.to(score_type),
                                         candidates, config_.loss.temperature);  // (K), (K)
  StepOutput out;
  out.loss = losses.to(z.scalar_type()).mean();
  {
    auto l = losses.detach().to(torch::kCPU, torch::kDouble);
    auto a = correct.to(torch::kCPU, torch::kDouble);
    for (int64_t k = 1; k <= K; ++k) {
      out.metrics[fmt::format("acc_{}", k)] = a[k - 1].item<double>();
      out.metrics[fmt::format("loss_{}", k)] = l[k - 1].item<double>();
    }
  }
  out.metrics["loss"] = out.loss.item<double>();
  return out;
}

}  // namespace contra::method
