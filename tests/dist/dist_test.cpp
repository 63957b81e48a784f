// contra/dist in one process: the environment contract, the single-process group, synchronised
// batch norm against LibTorch's, the distributed sampler, the launcher's argument checks.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <set>
#include <string>

#include "contra/core/fs.h"
#include "contra/data/image_batches.h"
#include "contra/dist/collectives.h"
#include "contra/dist/group.h"
#include "contra/dist/launch.h"
#include "contra/method/cpc_audio.h"
#include "contra/nn/batch_norm.h"
#include "tests/support/support.h"

namespace contra::dist {
namespace {

using contra::testing::config_error;

DistEnv env_of(const std::map<std::string, std::string>& vars) {
  return read_env([&](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

TEST(DistEnvTest, UnsetMeansOneProcess) {
  DistEnv env = env_of({});
  EXPECT_FALSE(env.distributed());
  EXPECT_EQ(env.rank, 0);
  EXPECT_EQ(env.world_size, 1);
  EXPECT_FALSE(env_of({{"WORLD_SIZE", "1"}, {"RANK", "0"}}).distributed());
}

TEST(DistEnvTest, ReadsTorchrunVariables) {
  DistEnv env = env_of({{"RANK", "3"},
                        {"WORLD_SIZE", "4"},
                        {"LOCAL_RANK", "1"},
                        {"LOCAL_WORLD_SIZE", "2"},
                        {"MASTER_ADDR", "10.0.0.1"},
                        {"MASTER_PORT", "29500"}});
  EXPECT_TRUE(env.distributed());
  EXPECT_EQ(env.rank, 3);
  EXPECT_EQ(env.world_size, 4);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.local_world_size, 2);
  EXPECT_EQ(env.master_addr, "10.0.0.1");
  EXPECT_EQ(env.master_port, 29500);
  // Without the local variables: every rank on one machine.
  DistEnv one = env_of(
      {{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "1234"}});
  EXPECT_EQ(one.local_rank, 1);
  EXPECT_EQ(one.local_world_size, 2);
}

TEST(DistEnvTest, BadVariablesNameTheVariable) {
  const std::map<std::string, std::string> good{
      {"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "1234"}};
  auto without = [&](const std::string& name) {
    auto v = good;
    v.erase(name);
    return config_error([&] { env_of(v); });
  };
  auto with = [&](const std::string& name, const std::string& value) {
    auto v = good;
    v[name] = value;
    return config_error([&] { env_of(v); });
  };
  EXPECT_NE(without("RANK").find("RANK is not set"), std::string::npos) << without("RANK");
  EXPECT_NE(without("MASTER_ADDR").find("MASTER_ADDR"), std::string::npos);
  EXPECT_NE(without("MASTER_PORT").find("MASTER_PORT"), std::string::npos);
  EXPECT_NE(with("RANK", "2").find("outside [0, WORLD_SIZE=2)"), std::string::npos)
      << with("RANK", "2");
  EXPECT_NE(with("RANK", "one").find("RANK='one' is not valid"), std::string::npos);
  EXPECT_NE(with("MASTER_PORT", "70000").find("1..65535"), std::string::npos);
  EXPECT_NE(with("WORLD_SIZE", "0").find("WORLD_SIZE"), std::string::npos);
  EXPECT_NE(with("LOCAL_RANK", "5").find("LOCAL_RANK"), std::string::npos);
}

TEST(SingleGroupTest, CollectivesAreTheIdentity) {
  set_world(nullptr);
  Group& g = world();
  EXPECT_EQ(g.size(), 1);
  EXPECT_EQ(g.backend(), "single");
  torch::Tensor x = torch::randn({3, 4}, torch::requires_grad());
  EXPECT_TRUE(dist::all_gather(x).equal(x));
  EXPECT_TRUE(concat_all_gather(x).equal(x));
  EXPECT_FALSE(concat_all_gather(x).requires_grad());
  torch::Tensor y = x.detach().clone();
  g.all_reduce_sum_(y);
  EXPECT_TRUE(y.equal(x.detach()));
  EXPECT_EQ(broadcast_string("abc"), "abc");
  EXPECT_EQ(all_reduce_sum(std::vector<double>{1.5, 2}), (std::vector<double>{1.5, 2}));
  EXPECT_FALSE(any_rank(false));
  EXPECT_TRUE(any_rank(true));
  EXPECT_EQ(average_gradients({x}), 0);
  int calls = 0;
  g.main_first(
      "x", [&] { ++calls; }, std::chrono::seconds(1));
  EXPECT_EQ(calls, 1);
  EXPECT_NO_THROW(shutdown());
}

TEST(SingleGroupTest, ShuffleThenUnshuffleIsTheIdentity) {
  set_world(nullptr);
  torch::manual_seed(3);
  torch::Tensor x = torch::arange(24, torch::kFloat).view({8, 3});
  Shuffled s = batch_shuffle(x);
  EXPECT_FALSE(s.local.equal(x));  // 1/8! chance of the identity; seed 3 is not it
  EXPECT_TRUE(std::get<0>(s.local.sort(0)).equal(x));
  EXPECT_TRUE(batch_unshuffle(s.local, s.unshuffle).equal(x));
}

TEST(DeviceRulesTest, CudaIndexFollowsLocalRankAndThreadsAreShared) {
  set_world(nullptr);
  EXPECT_EQ(rank_device(c10::Device("cuda"), world()), c10::Device("cuda"));
  EXPECT_EQ(rank_device(c10::Device("cpu"), world()), c10::Device("cpu"));
  EXPECT_EQ(threads_per_rank(3, world()), 3);
  EXPECT_GE(threads_per_rank(0, world()), 1);
}

// contra::nn::BatchNorm unsynchronised (and synchronised with one process) is LibTorch's.
class BatchNormTest : public contra::testing::SeededTest {};

TEST_F(BatchNormTest, MatchesLibTorchIn2dAnd1d) {
  set_world(nullptr);
  for (bool sync : {false, true}) {
    for (int dims : {2, 4}) {
      torch::Tensor x = dims == 4 ? torch::randn({6, 5, 3, 3}) : torch::randn({6, 5});
      nn::BatchNorm ours(nn::BatchNormOptions(5).sync(sync));
      torch::nn::AnyModule theirs = dims == 4 ? torch::nn::AnyModule(torch::nn::BatchNorm2d(5))
                                              : torch::nn::AnyModule(torch::nn::BatchNorm1d(5));
      {
        torch::NoGradGuard g;
        ours->weight.uniform_(0.5, 1.5);
        ours->bias.uniform_(-1, 1);
        auto p = theirs.ptr()->named_parameters();
        p["weight"].copy_(ours->weight);
        p["bias"].copy_(ours->bias);
      }
      torch::Tensor a = x.clone().requires_grad_(), b = x.clone().requires_grad_();
      torch::Tensor ya = ours(a), yb = theirs.forward(b);
      EXPECT_TRUE(torch::allclose(ya, yb, 1e-5, 1e-6));
      (ya * ya.detach().cos()).sum().backward();
      (yb * yb.detach().cos()).sum().backward();
      EXPECT_TRUE(torch::allclose(a.grad(), b.grad(), 1e-4, 1e-6));
      auto buffers = theirs.ptr()->named_buffers();
      EXPECT_TRUE(torch::allclose(ours->running_mean, buffers["running_mean"]));
      EXPECT_TRUE(torch::allclose(ours->running_var, buffers["running_var"]));
      EXPECT_EQ(ours->num_batches_tracked.item<int64_t>(), 1);
      ours->eval();
      theirs.ptr()->eval();
      EXPECT_TRUE(torch::allclose(ours(x), theirs.forward(x), 1e-5, 1e-6));
    }
  }
}

TEST_F(BatchNormTest, SameNamesAsLibTorchSoCheckpointsLoad) {
  nn::BatchNorm ours(4);
  torch::nn::BatchNorm2d theirs(4);
  std::set<std::string> a, b;
  for (const auto& p : ours->named_parameters()) a.insert(p.key());
  for (const auto& p : ours->named_buffers()) a.insert(p.key());
  for (const auto& p : theirs->named_parameters()) b.insert(p.key());
  for (const auto& p : theirs->named_buffers()) b.insert(p.key());
  EXPECT_EQ(a, b);
}

TEST_F(BatchNormTest, SetSyncReachesEveryContraBatchNorm) {
  torch::nn::Sequential model(nn::BatchNorm(3), torch::nn::Linear(3, 3), nn::BatchNorm(3),
                              torch::nn::BatchNorm1d(3));
  EXPECT_EQ(nn::set_sync_batch_norm(*model, true), 2);
  EXPECT_TRUE(model[0]->as<nn::BatchNormImpl>()->options.sync());
  EXPECT_EQ(nn::set_sync_batch_norm(*model, false), 2);
  EXPECT_FALSE(model[2]->as<nn::BatchNormImpl>()->options.sync());
  EXPECT_NE(config_error([] { nn::BatchNorm(0); }).find("features"), std::string::npos);
}

TEST(ShardIndicesTest, RanksSplitTheGlobalBatchDisjointly) {
  const int64_t n = 50, batch = 6, ranks = 3;
  for (int64_t i : {0, 2, 7}) {
    torch::Tensor global = data::epoch_indices(n, i, batch * ranks, 9);
    std::vector<torch::Tensor> parts;
    for (int64_t r = 0; r < ranks; ++r) {
      parts.push_back(data::shard_indices(n, i, batch, 9, r, ranks));
      EXPECT_EQ(parts.back().size(0), batch);
    }
    EXPECT_TRUE(torch::cat(parts).equal(global));
  }
  EXPECT_TRUE(data::shard_indices(n, 4, batch, 9, 0, 1).equal(data::epoch_indices(n, 4, batch, 9)));
  EXPECT_NE(config_error([] { data::shard_indices(10, 0, 2, 1, 2, 2); }).find("rank 2"),
            std::string::npos);
}

TEST(LaunchTest, ChecksItsArguments) {
  auto error = [](auto edit) {
    LaunchOptions o;
    o.args = {"env"};
    edit(o);
    return config_error([&] { launch(o); });
  };
  EXPECT_NE(error([](LaunchOptions& o) { o.nproc = 0; }).find("--nproc"), std::string::npos);
  EXPECT_NE(error([](LaunchOptions& o) { o.node_rank = 1; }).find("--node-rank"),
            std::string::npos);
  EXPECT_NE(error([](LaunchOptions& o) { o.nnodes = 2; }).find("--master-port"), std::string::npos);
  EXPECT_NE(error([](LaunchOptions& o) { o.args.clear(); }).find("no command"), std::string::npos);
  EXPECT_GT(free_port(), 0);
}

TEST(LaunchTest, RunsRanksWithTorchrunsVariables) {
  contra::testing::TempDir d;
  LaunchOptions o;
  o.nproc = 2;
  o.program = "/bin/sh";
  o.args = {"-c", "echo $RANK $WORLD_SIZE $LOCAL_RANK $LOCAL_WORLD_SIZE $MASTER_ADDR > " +
                      d.path() + "/rank$RANK; test -n \"$MASTER_PORT\""};
  LaunchResult r = launch(o);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.first_failed_rank, -1);
  EXPECT_EQ(contra::read_file(d.file("rank0")), "0 2 0 2 127.0.0.1\n");
  EXPECT_EQ(contra::read_file(d.file("rank1")), "1 2 1 2 127.0.0.1\n");
}

TEST(LaunchTest, AFailedRankStopsTheOthersAndSetsTheExitCode) {
  LaunchOptions o;
  o.nproc = 2;
  o.grace_s = 0.5;
  o.program = "/bin/sh";
  // Rank 1 fails at once with 3; rank 0 would sleep for a minute.
  o.args = {"-c", "if [ \"$RANK\" = 1 ]; then exit 3; fi; sleep 60"};
  auto start = std::chrono::steady_clock::now();
  LaunchResult r = launch(o);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.first_failed_rank, 1);
  EXPECT_TRUE(r.ranks[0].stopped_by_launcher);
  EXPECT_EQ(r.ranks[0].signal, SIGTERM);
  EXPECT_LT(seconds, 20);
}

TEST(CpcAcrossRanksTest, OnlyBatchModeDrawsAcrossRanks) {
  method::CpcNegativesConfig c;
  c.across_ranks = true;
  EXPECT_NO_THROW(c.validate());
  c.mode = "same_speaker";
  EXPECT_NE(config_error([&] { c.validate(); }).find("across_ranks"), std::string::npos);
}

}  // namespace
}  // namespace contra::dist
