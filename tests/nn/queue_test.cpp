#include "contra/nn/queue.h"

#include <torch/torch.h>

#include "contra/loss/info_nce.h"
#include "tests/loss/loss_testing.h"

namespace contra::nn {
namespace {

using namespace contra::testing;

class KeyQueueTest : public SeededTest {};

TEST_F(KeyQueueTest, StartsWithUnitColumnsAndPointerZero) {
  KeyQueue queue(KeyQueueOptions(16, 32));
  EXPECT_EQ(queue->queue.sizes(), (std::vector<int64_t>{16, 32}));
  EXPECT_TRUE(torch::allclose(queue->queue.norm(2, 0), torch::ones({32})));
  EXPECT_EQ(queue->pointer(), 0);
  EXPECT_EQ(queue->negatives().sizes(), (std::vector<int64_t>{32, 16}));
  EXPECT_EQ(queue->buffers().size(), 2u);
  EXPECT_TRUE(queue->parameters().empty());
}

// The official loop: queue[:, ptr:ptr + B] = keys.T; ptr = (ptr + B) % K — here with wrap-around.
TEST_F(KeyQueueTest, EnqueueReplacesOldestColumns) {
  for (int64_t size : {8, 5}) {  // K % B == 0 (the official case) and a remainder
    KeyQueue queue(KeyQueueOptions(3, size));
    torch::Tensor expected = queue->queue.clone();
    int64_t ptr = 0;
    for (int step = 0; step < 5; ++step) {
      torch::Tensor keys = torch::randn({2, 3});
      for (int64_t b = 0; b < 2; ++b) {
        expected.select(1, (ptr + b) % size).copy_(keys[b]);
      }
      ptr = (ptr + 2) % size;
      queue->dequeue_and_enqueue(keys);
      EXPECT_TRUE(torch::equal(queue->queue, expected)) << "K " << size << " step " << step;
      EXPECT_EQ(queue->pointer(), ptr);
    }
  }
}

TEST_F(KeyQueueTest, KeysCarryNoGradient) {
  KeyQueue queue(KeyQueueOptions(3, 4));
  torch::Tensor keys = torch::randn({2, 3}, torch::requires_grad());
  queue->dequeue_and_enqueue(keys * 2);
  EXPECT_FALSE(queue->queue.requires_grad());
}

TEST_F(KeyQueueTest, RejectsBadSizes) {
  KeyQueue queue(KeyQueueOptions(3, 5));
  expect_throws_with<ConfigError>(
      [&] {
        queue->dequeue_and_enqueue(torch::randn({6, 3}));
      },
      "6 keys");
  expect_throws_with<c10::Error>(
      [&] {
        queue->dequeue_and_enqueue(torch::randn({2, 4}));
      },
      "[2, 4]");
  expect_throws_with<ConfigError>([] { KeyQueue(KeyQueueOptions(0, 5)); }, "got 0");
  expect_throws_with<ConfigError>([] { KeyQueue(KeyQueueOptions(3, -1)); }, "got -1");
}

TEST_F(KeyQueueTest, SavedAndRestoredWithCheckpoints) {
  TempDir dir;
  KeyQueue queue(KeyQueueOptions(4, 6));
  queue->dequeue_and_enqueue(torch::randn({4, 4}));
  torch::save(queue, dir.file("queue.pt"));
  KeyQueue restored(KeyQueueOptions(4, 6));
  torch::load(restored, dir.file("queue.pt"));
  EXPECT_TRUE(torch::equal(restored->queue, queue->queue));
  EXPECT_EQ(restored->pointer(), 4);
}

// A MoCo step: logits against the queue, then the keys enqueued.
TEST_F(KeyQueueTest, FeedsInfoNCEAsMoCoDoes) {
  KeyQueue queue(KeyQueueOptions(8, 16));
  torch::Tensor q = loss::l2_normalize(torch::randn({4, 8})),
                k = loss::l2_normalize(torch::randn({4, 8}));
  auto opts = loss::InfoNCEOptions().temperature(0.07);
  torch::Tensor value = loss::functional::info_nce_keys(q, k, queue->negatives(), opts);
  torch::Tensor l_pos = (q * k).sum(1), l_neg = q.mm(queue->queue);  // MoCo's einsums
  EXPECT_TRUE(torch::allclose(value, loss::functional::info_nce(l_pos, l_neg, opts), 1e-5, 1e-6));
  queue->dequeue_and_enqueue(k);
  EXPECT_TRUE(torch::equal(queue->negatives().narrow(0, 0, 4), k));
}

}  // namespace
}  // namespace contra::nn
