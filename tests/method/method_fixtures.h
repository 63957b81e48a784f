#pragma once
// Shared by the image-method tests: a batch of two random views, and the "loss falls when one batch
// is overfitted" loop (Adam on the method's trainable parameters, after_optimizer_step each step).
#include <cstdint>
#include <sstream>
#include <utility>

#include <torch/torch.h>

#include "contra/method/method.h"
#include "contra/nn/image_encoder.h"

namespace contra::method::testing {

/// A width-4 small CNN on one channel: 16 features.
inline nn::ImageEncoderConfig tiny_image_encoder() {
  nn::ImageEncoderConfig e;
  e.type = "small_cnn";
  e.in_channels = 1;
  e.width = 4;
  return e;
}

inline Batch two_views(int64_t n, int64_t side = 28) {
  Batch b;
  b.views = {torch::rand({n, 1, side, side}), torch::rand({n, 1, side, side})};
  b.input = b.views[0];
  return b;
}

/// Trains `m` on the same batch for `steps` Adam steps; returns the first and the last loss.
inline std::pair<double, double> overfit(Method& m, const Batch& batch, int steps, double lr) {
  torch::optim::Adam opt(m.trainable_parameters(), lr);
  double first = 0, last = 0;
  for (int step = 0; step < steps; ++step) {
    StepOutput out = m.step(batch);
    if (step == 0) first = out.loss.item<double>();
    last = out.loss.item<double>();
    opt.zero_grad();
    out.loss.backward();
    opt.step();
    m.after_optimizer_step(step);
  }
  return {first, last};
}

/// Saves `from` through the module archive, as checkpoints do, and loads the bytes into `to`.
inline void checkpoint_roundtrip(torch::nn::Module& from, torch::nn::Module& to) {
  std::stringstream buffer;
  {
    torch::serialize::OutputArchive archive;
    from.save(archive);
    archive.save_to(buffer);
  }
  torch::serialize::InputArchive archive;
  archive.load_from(buffer);
  to.load(archive);
}

}  // namespace contra::method::testing
