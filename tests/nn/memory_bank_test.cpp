#include "contra/nn/memory_bank.h"

#include <cmath>

#include <torch/torch.h>

#include "tests/loss/loss_testing.h"

namespace contra::nn {
namespace {

using namespace contra::testing;

class MemoryBankTest : public SeededTest {};

TEST_F(MemoryBankTest, StartsUniformWithUnitExpectedNorm) {
  MemoryBank bank(MemoryBankOptions(2000, 12));
  const double a = std::sqrt(3.0 / 12);
  EXPECT_LE(bank->memory.abs().max().item<double>(), a);
  EXPECT_NEAR(bank->memory.pow(2).sum(1).mean().item<double>(), 1.0, 0.03);
  EXPECT_TRUE(bank->parameters().empty());
}

TEST_F(MemoryBankTest, MomentumUpdateOfTheGivenEntries) {
  MemoryBank bank(MemoryBankOptions(10, 4).momentum(0.3));
  torch::Tensor before = bank->memory.clone();
  torch::Tensor idx = torch::tensor({7, 2});
  torch::Tensor f = torch::randn({2, 4});
  bank->update(idx, f);
  for (int64_t r = 0; r < 10; ++r) {
    torch::Tensor expected = before[r];
    for (int64_t b = 0; b < 2; ++b) {
      if (idx[b].item<int64_t>() == r) {
        torch::Tensor mixed = 0.3 * before[r] + 0.7 * f[b];
        expected = mixed / mixed.norm();
      }
    }
    EXPECT_TRUE(torch::allclose(bank->memory[r], expected, 1e-6, 1e-6)) << "row " << r;
  }
  EXPECT_TRUE(torch::equal(bank->get(torch::tensor({2, 7, 2})),
                           torch::stack({bank->memory[2], bank->memory[7], bank->memory[2]})));
}

TEST_F(MemoryBankTest, RejectsBadIndicesAndOptions) {
  MemoryBank bank(MemoryBankOptions(10, 4));
  expect_throws_with<DataError>([&] { bank->get(torch::tensor({1, 10})); }, "got 10");
  expect_throws_with<DataError>(
      [&] {
        bank->update(torch::tensor({-1}), torch::randn({1, 4}));
      },
      "got -1");
  expect_throws_with<DataError>(
      [&] {
        bank->update(torch::tensor({3, 3}), torch::randn({2, 4}));
      },
      "repeats");
  expect_throws_with<c10::Error>(
      [&] {
        bank->update(torch::tensor({3}), torch::randn({1, 5}));
      },
      "[1, 5]");
  expect_throws_with<ConfigError>([] { MemoryBank(MemoryBankOptions(10, 4).momentum(1)); },
                                  "got 1");
  expect_throws_with<ConfigError>([] { MemoryBank(MemoryBankOptions(0, 4)); }, "got 0");
}

TEST_F(MemoryBankTest, SavedAndRestoredWithCheckpoints) {
  TempDir dir;
  MemoryBank bank(MemoryBankOptions(6, 3));
  bank->update(torch::tensor({1}), torch::randn({1, 3}));
  torch::save(bank, dir.file("bank.pt"));
  MemoryBank restored(MemoryBankOptions(6, 3));
  torch::load(restored, dir.file("bank.pt"));
  EXPECT_TRUE(torch::equal(restored->memory, bank->memory));
}

}  // namespace
}  // namespace contra::nn
