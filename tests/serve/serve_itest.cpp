// Integration: the service with a real encoder (a tiny SimCLR trained on bar digits: /embed equals
// the encoder's own vector, a file query finds its image, undecodable files and text on an image
// encoder are 4xx/501), and the `contra serve` binary itself (free port, SIGTERM, exit codes).
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <regex>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "contra/core/config.h"
#include "contra/core/fs.h"
#include "contra/data/images.h"
#include "contra/embed/embed.h"
#include "contra/embed/encoder.h"
#include "contra/index/vector_index.h"
#include "contra/serve/service.h"
#include "contra/train/clip_recipe.h"
#include "contra/train/image_recipe.h"
#include "tests/support/support.h"
#include "tests/train/fake_digits.h"

namespace contra::serve {
namespace {

using contra::testing::bin_dir;
using contra::testing::run_command;
using contra::testing::TempDir;
using nlohmann::json;

std::string tiny_simclr(const std::string& root, const std::string& runs) {
  return "schema_version: 1\n"
         "run: {name: simclr, dir: " +
         runs +
         "}\n"
         "data: {format: mnist, root: " +
         root +
         ", generate: false}\n"
         "method:\n  name: simclr\n  encoder: {width: 4}\n  projection: {hidden: 16, out: 8}\n"
         "augment: {preset: simclr, flip_p: 0, scale_min: 0.6}\n"
         "train: {steps: 2, batch_size: 16, threads: 1, log_every: 1, checkpoint_every: 2}\n"
         "optim: {lr: 1.0e-3}\n";
}

// One trained tiny checkpoint, its encoder, the test digits as PNG bytes and an index of their
// vectors (ids "digit-<i>"), shared by the suite.
class ServeWithEncoder : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    testing::write_digits(dir_->file("mnist"), 64, 30);
    auto tree =
        ConfigTree::from_string(tiny_simclr(dir_->file("mnist"), dir_->file("runs")), "tiny.yaml");
    train::train_image_recipe(train::load_image_recipe(tree), false);
    encoder_ = embed::QueryEncoder::open(dir_->file("runs/simclr"), "", torch::kCPU);
    data::ImageDataset test = data::read_image_dataset(dir_->file("mnist"), "test");
    std::vector<torch::Tensor> rows;
    std::vector<std::string> ids;
    pngs_ = new std::vector<std::string>;
    for (int i = 0; i < 30; ++i) {
      pngs_->push_back(data::encode_png(test.images[i]));
      rows.push_back(encoder_->encode_bytes(pngs_->back(), "digit"));
      ids.push_back("digit-" + std::to_string(i));
    }
    index_ = std::make_shared<index::VectorIndex>(
        index::VectorIndex::build(torch::stack(rows), test.labels.narrow(0, 0, 30), ids, {}));
    ServeOptions o;
    o.port = 0;
    service_ = std::make_shared<Service>(index_, encoder_, o);
    server_ = new HttpServer(service_);
    port_ = server_->bind();
    thread_ = new std::thread([] { server_->run(); });
  }
  static void TearDownTestSuite() {
    server_->stop();
    thread_->join();
    delete thread_;
    delete server_;
    service_.reset();
    index_.reset();
    encoder_.reset();
    delete pngs_;
    delete dir_;
  }
  static ClientResponse post(const std::string& path, const std::string& body,
                             const std::string& type) {
    return http_request("127.0.0.1", port_, "POST", path, body, type);
  }

  static TempDir* dir_;
  static std::shared_ptr<embed::QueryEncoder> encoder_;
  static std::shared_ptr<index::VectorIndex> index_;
  static std::shared_ptr<Service> service_;
  static HttpServer* server_;
  static std::thread* thread_;
  static std::vector<std::string>* pngs_;
  static int port_;
};
TempDir* ServeWithEncoder::dir_ = nullptr;
std::shared_ptr<embed::QueryEncoder> ServeWithEncoder::encoder_;
std::shared_ptr<index::VectorIndex> ServeWithEncoder::index_;
std::shared_ptr<Service> ServeWithEncoder::service_;
HttpServer* ServeWithEncoder::server_ = nullptr;
std::thread* ServeWithEncoder::thread_ = nullptr;
std::vector<std::string>* ServeWithEncoder::pngs_ = nullptr;
int ServeWithEncoder::port_ = 0;

TEST_F(ServeWithEncoder, EmbedEqualsTheEncodersVector) {
  auto r = post("/embed", (*pngs_)[3], "image/png");
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  torch::Tensor expected = encoder_->encode_bytes((*pngs_)[3], "digit");
  ASSERT_EQ(j["dim"], expected.numel());
  auto v = j["vector"].get<std::vector<float>>();
  EXPECT_TRUE(torch::allclose(torch::tensor(v), expected, 1e-6, 1e-6));
  // The same through base64 JSON.
  r = post("/embed", json{{"file_base64", base64_encode((*pngs_)[3])}}.dump(), "application/json");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["vector"], j["vector"]);
}

TEST_F(ServeWithEncoder, FileQueriesFindTheirImage) {
  for (int i : {0, 7, 29}) {
    auto r = post("/search?k=3", (*pngs_)[i], "image/png");
    ASSERT_EQ(r.status, 200) << r.body;
    json j = json::parse(r.body);
    EXPECT_EQ(j["results"][0]["id"], "digit-" + std::to_string(i));
    EXPECT_EQ(j["results"].size(), 3u);
    r = post("/search", json{{"file_base64", base64_encode((*pngs_)[i])}, {"k", 2}}.dump(),
             "application/json");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body)["results"][0]["id"], "digit-" + std::to_string(i));
  }
}

TEST_F(ServeWithEncoder, UndecodableFilesAndTextAreClearErrors) {
  auto r = post("/embed", "this is not an image", "image/png");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("request body"), std::string::npos) << r.body;
  r = post("/search?k=x", (*pngs_)[0], "image/png");
  EXPECT_EQ(r.status, 400) << r.body;
  r = post("/embed", R"({"file_base64": "@@@"})", "application/json");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("base64"), std::string::npos) << r.body;
  r = post("/search", R"({"text": "a seven"})", "application/json");
  EXPECT_EQ(r.status, 501) << r.body;
  EXPECT_NE(r.body.find("CLIP"), std::string::npos) << r.body;
  auto h = http_request("127.0.0.1", port_, "GET", "/health");
  ASSERT_EQ(h.status, 200);
  EXPECT_EQ(json::parse(h.body)["encoder"], "image");
}

TEST_F(ServeWithEncoder, EncoderOfAnotherDimensionIsRefused) {
  std::vector<std::string> ids = {"a", "b"};
  auto other = std::make_shared<index::VectorIndex>(
      index::VectorIndex::build(torch::randn({2, encoder_->dim() + 1}), {}, ids, {}));
  testing::expect_data_error([&] { Service s(other, encoder_, {}); }, "dimensional");
}

// CLIP: texts go through the text encoder — the same vectors from QueryEncoder, `contra embed
// --data captions:FILE` and the service's /embed; a text search ranks the image index exactly as
// the index ranks that vector.
TEST(ServeClip, TextQueriesEmbedAndSearchConsistently) {
  TempDir d;
  testing::write_digits(d.file("mnist"), 60, 30);
  const std::string yaml =
      "schema_version: 1\n"
      "run: {name: clip, dir: " +
      d.file("runs") +
      "}\n"
      "data: {format: mnist_captions, root: " +
      d.file("mnist") +
      ", generate: false, tokenizer_captions: 300}\n"
      "method:\n  name: clip\n  embed_dim: 8\n"
      "  image: {type: vit, image_size: 28, patch_size: 7, width: 16, layers: 1, heads: 2}\n"
      "  text: {context_length: 16, width: 16, layers: 1, heads: 2, tokenizer: {vocab_size: 96}}\n"
      "train: {steps: 2, batch_size: 16, threads: 1, log_every: 1, checkpoint_every: 2}\n"
      "optim: {name: adamw, lr: 1.0e-3, warmup_steps: 1}\n";
  train::train_clip_recipe(train::load_clip_recipe(ConfigTree::from_string(yaml, "clip.yaml")),
                           false);
  auto encoder = embed::QueryEncoder::open(d.file("runs/clip"), "", torch::kCPU);
  ASSERT_TRUE(encoder->has_text());
  const std::vector<std::string> texts = {"a photo of a seven", "a thick two", "zero"};
  torch::Tensor batch = encoder->encode_texts(texts);
  ASSERT_EQ(batch.size(0), 3);
  for (std::size_t i = 0; i < texts.size(); ++i) {
    torch::Tensor one = encoder->encode_text(texts[i]);
    EXPECT_TRUE(torch::allclose(one, batch[static_cast<std::int64_t>(i)], 1e-5, 1e-6)) << texts[i];
    EXPECT_NEAR(one.norm().item<double>(), 1.0, 1e-4);  // the joint space is normalised
  }
  EXPECT_FALSE(torch::allclose(batch[0], batch[1], 1e-3, 1e-3));

  // contra embed over a caption file: row i is caption i's text vector.
  testing::write_bytes(d.file("captions.txt"), texts[0] + "\n" + texts[1] + "\n" + texts[2] + "\n");
  embed::EmbedOptions o;
  o.checkpoint = d.file("runs/clip");
  o.data = "captions:" + d.file("captions.txt");
  o.out = d.file("captions.safetensors");
  o.progress = false;
  embed::embed_dataset(o);
  embed::Embeddings e = embed::read_embeddings(o.out);
  ASSERT_EQ(e.vectors.size(0), 3);
  EXPECT_TRUE(torch::allclose(e.vectors, batch, 1e-5, 1e-6));

  // The service over the test images' joint-space vectors.
  data::ImageDataset test = data::read_image_dataset(d.file("mnist"), "test");
  std::vector<torch::Tensor> rows;
  std::vector<std::string> ids;
  for (int i = 0; i < 30; ++i) {
    rows.push_back(encoder->encode_bytes(data::encode_png(test.images[i]), "digit"));
    ids.push_back("digit-" + std::to_string(i));
  }
  auto index = std::make_shared<index::VectorIndex>(
      index::VectorIndex::build(torch::stack(rows), test.labels.narrow(0, 0, 30), ids, {}));
  ServeOptions so;
  so.port = 0;
  HttpServer server(std::make_shared<Service>(index, encoder, so));
  const int port = server.bind();
  std::thread thread([&] { server.run(); });
  auto r = http_request("127.0.0.1", port, "POST", "/embed", R"({"text": "a photo of a seven"})");
  EXPECT_EQ(r.status, 200) << r.body;
  if (r.status == 200) {
    auto v = json::parse(r.body)["vector"].get<std::vector<float>>();
    EXPECT_TRUE(torch::allclose(torch::tensor(v), batch[0], 1e-5, 1e-6));
  }
  r = http_request("127.0.0.1", port, "POST", "/search", R"({"text": "a thick two", "k": 5})");
  EXPECT_EQ(r.status, 200) << r.body;
  if (r.status == 200) {
    json j = json::parse(r.body);
    auto expected = index->search(batch[1].unsqueeze(0), 5).at(0);
    ASSERT_EQ(j["results"].size(), 5u);
    for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(j["results"][i]["id"], expected[i].id);
  }
  auto h = http_request("127.0.0.1", port, "GET", "/health");
  EXPECT_EQ(json::parse(h.body)["text"], true);
  server.stop();
  thread.join();
}

// ---- the binary
// -----------------------------------------------------------------------------------

// `contra serve` as a child process; reads stdout until the "listening on" line.
class ServeProcess {
 public:
  explicit ServeProcess(const std::vector<std::string>& args) {
    int out[2];
    if (pipe(out) != 0) throw std::runtime_error("pipe");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      close(out[0]);
      close(out[1]);
      std::vector<char*> argv;
      std::string bin = bin_dir() + "/contra";
      argv.push_back(bin.data());
      std::vector<std::string> copy = args;
      for (auto& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(bin.c_str(), argv.data());
      _exit(127);
    }
    close(out[1]);
    stdout_ = fdopen(out[0], "r");
  }
  ~ServeProcess() {
    if (pid_ > 0 && !waited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (stdout_) std::fclose(stdout_);
  }
  // The port of the "listening on http://host:port" line, or -1 when the process ended first.
  int port() {
    char line[1024];
    std::regex listening("listening on http://[^:]+:([0-9]+)");
    while (std::fgets(line, sizeof line, stdout_) != nullptr) {
      output_ += line;
      std::cmatch m;
      if (std::regex_search(line, m, listening)) return std::stoi(m[1].str());
    }
    return -1;
  }
  // Sends `sig` and returns the exit status.
  int stop(int sig) {
    kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    waited_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  const std::string& output() const { return output_; }

 private:
  pid_t pid_ = -1;
  std::FILE* stdout_ = nullptr;
  std::string output_;
  bool waited_ = false;
};

TEST(ServeBinary, ServesAnIndexDirectoryAndStopsOnSigterm) {
  TempDir d;
  std::vector<std::string> ids;
  for (int i = 0; i < 40; ++i) ids.push_back("v" + std::to_string(i));
  torch::manual_seed(1);
  index::IndexOptions o;
  o.type = "hnsw";
  index::VectorIndex::build(torch::randn({40, 6}), torch::arange(40) % 4, ids, o)
      .save(d.file("idx"));
  ServeProcess p({"serve", "--index", d.file("idx"), "--port", "0"});
  const int port = p.port();
  ASSERT_GT(port, 0) << p.output();
  EXPECT_NE(p.output().find("40 items, 6 dims, hnsw, cosine"), std::string::npos) << p.output();
  EXPECT_NE(p.output().find("vector and id queries only"), std::string::npos) << p.output();
  auto h = http_request("127.0.0.1", port, "GET", "/health");
  ASSERT_EQ(h.status, 200) << h.error;
  EXPECT_EQ(json::parse(h.body)["items"], 40);
  auto r = http_request("127.0.0.1", port, "POST", "/search", R"({"id": "v9", "k": 2})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["results"][0]["id"], "v9");
  EXPECT_EQ(p.stop(SIGTERM), 0);
}

TEST(ServeBinary, BadIndexAndOptionsExitTwo) {
  TempDir d;
  const std::string bin = bin_dir() + "/contra serve";
  auto r = run_command(bin + " --index " + d.file("missing") + " --port 0");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("missing"), std::string::npos) << r.err;
  make_dirs(d.file("broken"));
  testing::write_bytes(d.file("broken/meta.json"), "{not json");
  r = run_command(bin + " --index " + d.file("broken") + " --port 0");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("broken"), std::string::npos) << r.err;
  std::vector<std::string> ids = {"a", "b", "c"};
  index::VectorIndex::build(torch::randn({3, 4}), {}, ids, {}).save(d.file("idx"));
  r = run_command(bin + " --index " + d.file("idx") + " --port 70000");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--port"), std::string::npos) << r.err;
  r = run_command(bin + " --index " + d.file("idx") + " --checkpoint " + d.file("nothing"));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("nothing"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace contra::serve
