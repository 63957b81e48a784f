// contra export → PyTorch: every exportable architecture of the shipped configs is built small,
// checkpointed, exported, and rebuilt by python/contra_torch.py under Debian's python3-torch, whose
// output must equal contra's features(x, kind) to 1e-5. Plus the CLI's error cases.
#include "contra/export/export.h"

#include <cstdlib>
#include <functional>
#include <memory>
#include <sstream>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "contra/core/config.h"
#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/io/safetensors.h"
#include "contra/method/registry.h"
#include "contra/train/checkpoint.h"
#include "tests/support/support.h"

namespace contra::exporter {
namespace {

using contra::testing::TempDir;

const char* kPython = "/usr/bin/python3";

bool python_has_torch() {
  static const bool ok =
      contra::testing::run_command(std::string(kPython) + " -c 'import torch'").exit_code == 0;
  return ok;
}

std::string script() { return contra::testing::source_dir() + "/python/contra_torch.py"; }

// A shipped recipe with overrides that make it small.
ConfigTree recipe(const std::string& config, const std::vector<std::string>& sets) {
  ConfigTree tree = ConfigTree::load_file(contra::testing::source_dir() + "/configs/" + config);
  for (const auto& s : sets) tree.set(s);
  return tree;
}

// Non-trivial BatchNorm statistics and affine parameters (fresh ones are 0/1 everywhere).
void perturb(torch::nn::Module& m) {
  torch::NoGradGuard guard;
  for (auto& p : m.named_parameters(true)) {
    if (p.value().defined() && p.value().is_floating_point())
      p.value().add_(torch::randn_like(p.value()) * 0.05);
  }
  for (auto& b : m.named_buffers(true)) {
    const auto& name = b.key();
    if (name.size() >= 12 && name.compare(name.size() - 12, 12, "running_mean") == 0)
      b.value().uniform_(-0.3, 0.3);
    if (name.size() >= 11 && name.compare(name.size() - 11, 11, "running_var") == 0)
      b.value().uniform_(0.5, 1.5);
  }
}

struct Built {
  std::shared_ptr<method::Method> method;
  std::string run_dir;
};

// Builds the method of `tree`, perturbs it and saves a checkpoint into `dir/run`.
Built build_and_save(const ConfigTree& tree, const TempDir& dir) {
  Built b;
  b.method = method::make_method(tree);
  perturb(*b.method);
  b.method->eval();
  torch::optim::SGD sgd(b.method->parameters(), 0.1);
  b.run_dir = dir.file("run");
  train::save_checkpoint(b.run_dir, *b.method, sgd, 7, yaml_text(tree.root()), 1);
  return b;
}

// Writes input/expected, runs the Python check; returns its output (and expects it to pass).
std::string python_check(method::Method& m, const std::string& export_path, const std::string& kind,
                         const torch::Tensor& input, const TempDir& dir, double tol = 1e-5) {
  torch::Tensor expected;
  {
    torch::NoGradGuard guard;
    expected = m.features(input, kind).contiguous();
  }
  io::SafetensorsFile in, out;
  in.tensors.emplace_back("input", input);
  out.tensors.emplace_back("output", expected);
  const std::string in_path = dir.file(kind + "_input.safetensors");
  const std::string out_path = dir.file(kind + "_expected.safetensors");
  io::write_safetensors(in_path, in);
  io::write_safetensors(out_path, out);
  auto r = contra::testing::run_command(
      fmt::format("{} '{}' check '{}' '{}' '{}' --tol {} --features {}", kPython, script(),
                  export_path, in_path, out_path, tol, kind));
  EXPECT_EQ(r.exit_code, 0) << kind << ":\n" << r.out << r.err;
  EXPECT_NE(r.out.find("ok"), std::string::npos) << r.out << r.err;
  return r.out;
}

struct Case {
  std::string name;
  std::string config;
  std::vector<std::string> sets;
  // (kind, input): every kind is exported and checked.
  std::vector<std::pair<std::string, std::function<torch::Tensor()>>> kinds;
};

torch::Tensor images(int64_t n, int64_t c, int64_t side) {
  return torch::randn({n, c, side, side});
}
torch::Tensor audio(int64_t n, int64_t samples) { return torch::randn({n, 1, samples}) * 0.3; }
torch::Tensor tokens(int64_t vocab, int64_t length) {
  auto t = torch::randint(4, vocab, {3, length}, torch::kLong);
  t.index_put_({0, 5}, 3);  // EOT at 5 (pooled there)
  t.index_put_({2, 1}, 3);  // EOT at 1; row 1 has none (pooled at the end)
  t.index_put_({2, 4}, 3);
  return t;
}

std::vector<Case> cases() {
  const std::vector<std::string> small_cpc = {
      "method.encoder.channels=16", "method.context.hidden=24", "method.predictor.steps=2"};
  auto with = [](std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  auto cpc_kinds = [] {
    return std::vector<std::pair<std::string, std::function<torch::Tensor()>>>{
        {"context", [] { return audio(2, 3000); }}, {"encoder", [] { return audio(2, 2000); }}};
  };
  auto mnist = [] { return images(3, 1, 28); };
  auto cifar = [] { return images(2, 3, 32); };
  std::vector<Case> c = {
      {"cpc_gru_batchnorm", "cpc_speech.yaml", small_cpc, cpc_kinds()},
      {"cpc_lstm_layernorm", "cpc_speech.yaml",
       with(small_cpc,
            {"method.context.type=lstm", "method.context.layers=2", "method.encoder.norm=layer"}),
       cpc_kinds()},
      {"cpc_transformer_nonorm", "cpc_speech.yaml",
       with(small_cpc, {"method.context.type=transformer", "method.context.heads=4",
                        "method.context.feedforward=32", "method.context.layers=2",
                        "method.encoder.norm=none"}),
       cpc_kinds()},
      {"cpc_bfloat16_encoder", "cpc_speech.yaml",
       with(small_cpc, {"method.encoder.precision=bfloat16"}), cpc_kinds()},
      {"simclr_mnist",
       "simclr_mnist.yaml",
       {"method.encoder.width=4"},
       {{"encoder", mnist}, {"projection", mnist}}},
      {"simclr_cifar10_resnet18",
       "simclr_cifar10.yaml",
       {"method.encoder.width=4"},
       {{"encoder", cifar}, {"projection", cifar}}},
      {"moco_mnist",
       "moco_mnist.yaml",
       {"method.encoder.width=4", "method.queue_size=256"},
       {{"encoder", mnist}, {"projection", mnist}, {"key_encoder", mnist}}},
      {"moco_cifar10",
       "moco_cifar10.yaml",
       {"method.encoder.width=4", "method.queue_size=512"},
       {{"encoder", cifar}, {"projection", cifar}, {"key_encoder", cifar}}},
      {"byol_mnist",
       "byol_mnist.yaml",
       {"method.encoder.width=4"},
       {{"encoder", mnist}, {"projection", mnist}, {"target_encoder", mnist}}},
      {"byol_cifar10",
       "byol_cifar10.yaml",
       {"method.encoder.width=4"},
       {{"encoder", cifar}, {"projection", cifar}}},
      {"barlow_twins_mnist",
       "barlow_twins_mnist.yaml",
       {"method.encoder.width=4"},
       {{"encoder", mnist}, {"projection", mnist}}},
      {"barlow_twins_cifar10",
       "barlow_twins_cifar10.yaml",
       {"method.encoder.width=4"},
       {{"encoder", cifar}, {"projection", cifar}}},
      {"swav_mnist",
       "swav_mnist.yaml",
       {"method.encoder.width=4"},
       {{"encoder", mnist}, {"projection", mnist}}},
      {"swav_cifar10",
       "swav_cifar10.yaml",
       {"method.encoder.width=4"},
       {{"encoder", cifar}, {"projection", cifar}}},
      {"deepcluster_mnist",
       "deepcluster_mnist.yaml",
       {"method.encoder.width=4"},
       {{"encoder", mnist}, {"projection", mnist}}},
      {"deepcluster_cifar10",
       "deepcluster_cifar10.yaml",
       {"method.encoder.width=4"},
       {{"encoder", cifar}, {"projection", cifar}}},
      {"instance_discrimination_mnist",
       "instance_discrimination_mnist.yaml",
       {"method.encoder.width=4"},
       {{"encoder", mnist}, {"embedding", mnist}}},
      {"instance_discrimination_cifar10",
       "instance_discrimination_cifar10.yaml",
       {"method.encoder.width=4"},
       {{"encoder", cifar}, {"embedding", cifar}}},
      {"cpc_image_mnist",
       "cpc_image_mnist.yaml",
       {"method.encoder.width=4", "method.context.channels=8"},
       {{"encoder", mnist}, {"context", mnist}, {"grid", mnist}}},
      {"cpc_image_cifar10",
       "cpc_image_cifar10.yaml",
       {"method.encoder.width=4", "method.context.channels=8"},
       {{"encoder", cifar}, {"context", cifar}, {"grid", cifar}}},
      {"cpc_image_batchnorm",
       "cpc_image_mnist.yaml",
       {"method.encoder.width=4", "method.context.channels=8", "method.encoder.norm=batch"},
       {{"encoder", mnist}, {"context", mnist}}},
      {"clip_vit",
       "clip_mnist.yaml",
       {"method.image.width=16", "method.image.layers=2", "method.text.width=16",
        "method.text.layers=2", "method.embed_dim=8"},
       {{"image_embedding", mnist},
        {"image", mnist},
        {"text_embedding", [] { return tokens(256, 20); }}}},
      {"clip_small_cnn",
       "clip_mnist.yaml",
       {"method.image.type=small_cnn", "method.image.width=4", "method.text.width=16",
        "method.text.layers=1", "method.embed_dim=8"},
       {{"image_embedding", mnist},
        {"image", mnist},
        {"text_embedding", [] { return tokens(256, 12); }}}},
      {"clip_audio",
       "clip_audio_mnist.yaml",
       {"method.image.width=4", "method.audio.encoder.channels=16", "method.audio.context.hidden=8",
        "method.embed_dim=8"},
       {{"image_embedding", mnist},
        {"image", mnist},
        {"audio_embedding", [] { return audio(2, 4000); }},
        {"audio", [] { return audio(2, 4000); }}}},
      {"clip_audio_encoder_only",
       "clip_audio_mnist.yaml",
       {"method.image.type=resnet18", "method.image.in_channels=1", "method.image.width=4",
        "method.audio.encoder.channels=16", "method.audio.use_context=false",
        "method.audio.encoder.norm=layer", "method.embed_dim=8"},
       {{"audio_embedding", [] { return audio(2, 4000); }}, {"image", mnist}}},
  };
  return c;
}

class ExportMatchesPyTorch : public ::testing::TestWithParam<int> {};

TEST_P(ExportMatchesPyTorch, FeaturesAgreeTo1e5) {
  if (!python_has_torch()) GTEST_SKIP() << kPython << " cannot import torch";
  const Case c = cases()[GetParam()];
  torch::manual_seed(3);
  TempDir dir;
  Built b = build_and_save(recipe(c.config, c.sets), dir);
  for (const auto& [kind, make_input] : c.kinds) {
    SCOPED_TRACE(c.name + " " + kind);
    const std::string path = dir.file(kind + ".safetensors");
    ExportSummary s = export_checkpoint(b.run_dir, path, kind);
    EXPECT_EQ(s.features, kind);
    EXPECT_EQ(s.step, 7);
    io::SafetensorsFile f = io::read_safetensors(path);
    EXPECT_EQ(f.metadata.at("format"), "pt");
    EXPECT_EQ(f.metadata.at("method"), b.method->name());
    EXPECT_EQ(f.metadata.at("features"), kind);
    EXPECT_EQ(f.metadata.at("step"), "7");
    EXPECT_NE(f.metadata.at("source_checkpoint").find("step-00000007.pt"), std::string::npos);
    auto arch = nlohmann::json::parse(f.metadata.at("architecture"));
    EXPECT_TRUE(arch.contains("modules") && arch.contains("input") && arch.contains("family"));
    // The exported tensors are the method's own weights, bit for bit.
    auto named = b.method->named_parameters(true);
    for (const auto& [name, t] : f.tensors) {
      if (name == "tokenizer_model") continue;
      std::string source = name;
      // Image methods export their backbone as "encoder." and their head as "projection."
      // whatever the C++ members are called.
      const std::string method_name = b.method->name();
      if (source.rfind("encoder.", 0) == 0) {
        if (method_name == "moco") {
          source.replace(0, 7, kind == "key_encoder" ? "encoder_k" : "encoder_q");
        }
        if (method_name == "byol" && kind == "target_encoder")
          source.replace(0, 7, "target_encoder");
      }
      if (source.rfind("projection.", 0) == 0) {
        source.replace(0, 10,
                       method_name == "moco" ? "head_q"
                       : method_name == "simclr" || method_name == "instance_discrimination"
                           ? "head"
                           : "projector");
      }
      auto buffers = b.method->named_buffers(true);
      const torch::Tensor* p = named.find(source);
      if (p == nullptr) p = buffers.find(source);
      ASSERT_NE(p, nullptr) << name << " -> " << source;
      EXPECT_TRUE(torch::equal(*p, t)) << name;
    }
    torch::Tensor x = make_input();
    std::printf("  %s", python_check(*b.method, path, kind, x, dir).c_str());
  }
}

INSTANTIATE_TEST_SUITE_P(Architectures, ExportMatchesPyTorch,
                         ::testing::Range(0, static_cast<int>(cases().size())),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return cases()[info.param].name;
                         });

TEST(Export, OneFileComputesEveryKindItLists) {
  if (!python_has_torch()) GTEST_SKIP() << kPython << " cannot import torch";
  torch::manual_seed(4);
  TempDir dir;
  Built b = build_and_save(
      recipe("cpc_speech.yaml", {"method.encoder.channels=8", "method.context.hidden=8"}), dir);
  // The default export (context) holds the encoder too: "encoder" runs from the same file.
  ExportSummary s = export_checkpoint(b.run_dir, dir.file("cpc.safetensors"));
  EXPECT_EQ(s.features, "context");
  python_check(*b.method, s.out, "encoder", audio(1, 1600), dir);
  python_check(*b.method, s.out, "context", audio(1, 1600), dir);
}

TEST(Export, TheCheckFailsWhenPyTorchDisagrees) {
  if (!python_has_torch()) GTEST_SKIP() << kPython << " cannot import torch";
  torch::manual_seed(6);
  TempDir dir;
  Built b = build_and_save(recipe("simclr_mnist.yaml", {"method.encoder.width=4"}), dir);
  ExportSummary s = export_checkpoint(b.run_dir, dir.file("e.safetensors"));
  torch::Tensor x = images(2, 1, 28);
  torch::Tensor y;
  {
    torch::NoGradGuard guard;
    y = b.method->features(x, "encoder");
  }
  auto check = [&](const torch::Tensor& expected) {
    io::SafetensorsFile in, out;
    in.tensors.emplace_back("input", x);
    out.tensors.emplace_back("output", expected);
    io::write_safetensors(dir.file("in.safetensors"), in);
    io::write_safetensors(dir.file("out.safetensors"), out);
    return contra::testing::run_command(fmt::format("{} '{}' check '{}' '{}' '{}'", kPython,
                                                    script(), s.out, dir.file("in.safetensors"),
                                                    dir.file("out.safetensors")));
  };
  EXPECT_EQ(check(y).exit_code, 0);
  // 2e-5 off in one value: over the 1e-5 tolerance.
  torch::Tensor off = y.clone();
  off.index_put_({1, 3}, off.index({1, 3}) + 2e-5);
  auto r = check(off);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("FAIL"), std::string::npos) << r.out;
  // A wrong weight in the file: the PyTorch module computes something else.
  io::SafetensorsFile f = io::read_safetensors(s.out);
  for (auto& [name, t] : f.tensors) {
    if (name == "encoder.bn2.running_mean") t = t + 0.1;
  }
  io::write_safetensors(s.out, f);
  r = check(y);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
}

// The format itself, both ways: contra's files read in Python (its fallback reader when the
// `safetensors` package is absent), and Python's files read by contra.
TEST(Export, SafetensorsFilesCrossBetweenContraAndPython) {
  if (!python_has_torch()) GTEST_SKIP() << kPython << " cannot import torch";
  TempDir dir;
  io::SafetensorsFile f;
  f.tensors.emplace_back("f64", torch::arange(6, torch::kFloat64).reshape({2, 3}) / 7);
  f.tensors.emplace_back("f32", torch::arange(4, torch::kFloat32) - 1.5);
  f.tensors.emplace_back("f16", torch::tensor({0.5, -2.0}).to(torch::kFloat16));
  f.tensors.emplace_back("bf16", torch::tensor({1.5, -3.0}).to(torch::kBFloat16));
  f.tensors.emplace_back("i64", torch::tensor({int64_t{1} << 40, int64_t{-5}}));
  f.tensors.emplace_back("i32", torch::tensor({-7, 9}, torch::kInt32));
  f.tensors.emplace_back("i16", torch::tensor({-300, 300}, torch::kInt16));
  f.tensors.emplace_back("i8", torch::tensor({-128, 127}, torch::kInt8));
  f.tensors.emplace_back("u8", torch::tensor({0, 255}, torch::kUInt8));
  f.tensors.emplace_back("bool", torch::tensor({true, false, true}));
  f.tensors.emplace_back("scalar", torch::tensor(2.25));
  f.tensors.emplace_back("empty", torch::zeros({0, 3}));
  f.metadata["k"] = "v ✓";
  io::write_safetensors(dir.file("c.safetensors"), f);
  const std::string code = fmt::format(
      "import sys, torch; sys.path.insert(0, '{}'); import contra_torch as ct\n"
      "t, m = ct.read_safetensors('{}')\n"
      "print(m['k'], ' "
      "'.join(f'{{k}}:{{str(v.dtype)[6:]}}:{{list(v.shape)}}:{{v.double().sum().item():g}}'"
      " for k, v in t.items()))\n"
      "ct.write_safetensors('{}', t, {{'from': 'python'}})\n",
      contra::testing::source_dir() + "/python", dir.file("c.safetensors"),
      dir.file("p.safetensors"));
  contra::testing::write_bytes(dir.file("x.py"), code);
  auto r = contra::testing::run_command(std::string(kPython) + " '" + dir.file("x.py") + "'");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out,
            "v ✓ f64:float64:[2, 3]:2.14286 f32:float32:[4]:0 f16:float16:[2]:-1.5 "
            "bf16:bfloat16:[2]:-1.5 i64:int64:[2]:1.09951e+12 i32:int32:[2]:2 i16:int16:[2]:0 "
            "i8:int8:[2]:-1 u8:uint8:[2]:255 bool:bool:[3]:2 scalar:float32:[]:2.25 "
            "empty:float32:[0, 3]:0\n");
  io::SafetensorsFile g = io::read_safetensors(dir.file("p.safetensors"));
  EXPECT_EQ(g.metadata.at("from"), "python");
  ASSERT_EQ(g.tensors.size(), f.tensors.size());
  for (std::size_t i = 0; i < f.tensors.size(); ++i) {
    EXPECT_EQ(g.tensors[i].first, f.tensors[i].first);
    EXPECT_TRUE(torch::equal(g.tensors[i].second, f.tensors[i].second)) << f.tensors[i].first;
  }
}

TEST(Export, UnknownKindsAreConfigErrors) {
  TempDir dir;
  Built b = build_and_save(recipe("simclr_mnist.yaml", {"method.encoder.width=4"}), dir);
  const std::string bogus = contra::testing::config_error(
      [&] { export_checkpoint(b.run_dir, dir.file("p.safetensors"), "bogus"); });
  EXPECT_NE(bogus.find("simclr has no exportable feature kind 'bogus' (expected one of encoder, "
                       "projection)"),
            std::string::npos)
      << bogus;
  EXPECT_FALSE(path_exists(dir.file("p.safetensors")));
}

// ---- the command line --------------------------------------------------------------------------

contra::testing::CommandResult contra_cli(const std::string& args) {
  return contra::testing::run_command("'" + contra::testing::bin_dir() + "/contra' " + args);
}

TEST(ExportCli, WritesTheFileAndSummarises) {
  TempDir dir;
  Built b = build_and_save(recipe("byol_mnist.yaml", {"method.encoder.width=4"}), dir);
  auto r = contra_cli("export --checkpoint '" + b.run_dir + "' --out '" +
                      dir.file("e.safetensors") + "'");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("method       byol"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("features     encoder"), std::string::npos) << r.out;
  io::SafetensorsHeader h = io::read_safetensors_header(dir.file("e.safetensors"));
  EXPECT_EQ(h.metadata.at("method"), "byol");
  ASSERT_FALSE(h.entries.empty());
  EXPECT_EQ(h.entries[0].name, "encoder.conv1.weight");
}

TEST(ExportCli, MissingCheckpointExitsWith2NamingThePath) {
  TempDir dir;
  auto r = contra_cli("export --checkpoint '" + dir.file("no_such_run") + "' --out '" +
                      dir.file("e.safetensors") + "'");
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find(dir.file("no_such_run")), std::string::npos) << r.err;
  EXPECT_FALSE(path_exists(dir.file("e.safetensors")));
}

TEST(ExportCli, CorruptCheckpointExitsWith2NamingTheFile) {
  TempDir dir;
  contra::testing::write_bytes(dir.file("broken.pt"), "PK\x03\x04 this is not a checkpoint");
  auto r = contra_cli("export --checkpoint '" + dir.file("broken.pt") + "' --out '" +
                      dir.file("e.safetensors") + "'");
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("broken.pt"), std::string::npos) << r.err;
  EXPECT_FALSE(path_exists(dir.file("e.safetensors")));
}

TEST(ExportCli, BadFeatureKindAndMissingOutputFolderExitWith2) {
  TempDir dir;
  Built b = build_and_save(recipe("swav_mnist.yaml", {"method.encoder.width=4"}), dir);
  auto r = contra_cli("export --checkpoint '" + b.run_dir + "' --out '" +
                      dir.file("e.safetensors") + "' --features prototypes");
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("swav has no exportable feature kind 'prototypes'"), std::string::npos)
      << r.err;
  r = contra_cli("export --checkpoint '" + b.run_dir + "' --out '" +
                 dir.file("no/dir/e.safetensors") + "'");
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("no/dir/e.safetensors"), std::string::npos) << r.err;
  r = contra_cli("export --out '" + dir.file("e.safetensors") + "'");
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
}

// ---- optional: real runs (CONTRA_EXPORT_RUNS=runs/a,runs/b) -------------------------------------

TEST(ExportRealRuns, MatchPyTorch) {
  const char* env = std::getenv("CONTRA_EXPORT_RUNS");
  if (env == nullptr || !python_has_torch()) GTEST_SKIP() << "set CONTRA_EXPORT_RUNS=run,run,...";
  std::stringstream list(env);
  std::string run;
  while (std::getline(list, run, ',')) {
    SCOPED_TRACE(run);
    TempDir dir;
    torch::manual_seed(5);
    const std::string checkpoint = train::resolve_checkpoint(run);
    ConfigTree tree = ConfigTree::from_string(train::read_checkpoint_meta(checkpoint).config_yaml);
    auto m = method::make_method(tree);
    train::load_checkpoint(checkpoint, *m);
    m->eval();
    for (const std::string& kind : exportable_features(*m)) {
      ExportSummary s = export_checkpoint(run, dir.file(kind + ".safetensors"), kind);
      auto arch = nlohmann::json::parse(s.architecture);
      torch::Tensor x;
      const auto& input = arch["input"];
      if (kind == "text_embedding") {
        x = tokens(arch["modules"]["text"]["vocab_size"].get<int64_t>(),
                   arch["modules"]["text"]["context_length"].get<int64_t>());
      } else if (kind == "audio" || kind == "audio_embedding" ||
                 input.value("type", "") == "audio") {
        x = audio(2, 16000);
      } else {
        const auto& im = input.contains("image") ? input["image"] : input;
        x = torch::rand({4, im["channels"].get<int64_t>(), im["image_size"].get<int64_t>(),
                         im["image_size"].get<int64_t>()});
        if (!im["mean"].is_null()) {
          auto mean = torch::tensor(im["mean"].get<std::vector<double>>()).to(torch::kFloat);
          auto sd = torch::tensor(im["std"].get<std::vector<double>>()).to(torch::kFloat);
          x = (x - mean.view({1, -1, 1, 1})) / sd.view({1, -1, 1, 1});
        }
      }
      std::printf("%s: %s", run.c_str(), python_check(*m, s.out, kind, x, dir).c_str());
    }
  }
}

}  // namespace
}  // namespace contra::exporter
