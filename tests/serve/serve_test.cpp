// contra serve over real HTTP on a free loopback port: health, search by vector / id / batch,
// every bad request answered with a 4xx JSON error while the server keeps serving, the body limit,
// and a bounded concurrent load with every answer checked against the index itself.
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "contra/core/error.h"
#include "contra/index/vector_index.h"
#include "contra/serve/service.h"
#include "tests/support/support.h"

namespace contra::serve {
namespace {

using nlohmann::json;

// 600 vectors of dimension 16 in 6 clusters; ids "item-<i>", labels = cluster.
struct Data {
  torch::Tensor vectors, labels;
  std::vector<std::string> ids;
};

Data clustered(std::int64_t n = 600, std::int64_t d = 16, std::int64_t clusters = 6) {
  torch::manual_seed(3);
  Data data;
  torch::Tensor centres = torch::randn({clusters, d}) * 3;
  data.labels = torch::arange(n, torch::kLong) % clusters;
  data.vectors = centres.index_select(0, data.labels) + torch::randn({n, d});
  for (std::int64_t i = 0; i < n; ++i) data.ids.push_back("item-" + std::to_string(i));
  return data;
}

// A running server (port 0 → a free one) on its own thread, stopped by the destructor.
class Running {
 public:
  Running(std::shared_ptr<const index::VectorIndex> index, ServeOptions options = {})
      : index_(std::move(index)) {
    options.port = 0;
    service_ = std::make_shared<Service>(index_, nullptr, options);
    server_ = std::make_unique<HttpServer>(service_);
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->run(); });
  }
  ~Running() {
    server_->stop();
    thread_.join();
  }
  ClientResponse get(const std::string& path) const {
    return http_request("127.0.0.1", port_, "GET", path);
  }
  ClientResponse post(const std::string& path, const std::string& body,
                      const std::string& type = "application/json") const {
    return http_request("127.0.0.1", port_, "POST", path, body, type);
  }
  int port() const { return port_; }

 private:
  std::shared_ptr<const index::VectorIndex> index_;
  std::shared_ptr<Service> service_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  int port_ = 0;
};

json vector_json(const torch::Tensor& v) {
  torch::Tensor c = v.to(torch::kFloat).contiguous();
  return json(std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel()));
}

// The error message of a JSON error answer ("" when the body is not one).
std::string error_of(const ClientResponse& r) {
  try {
    return json::parse(r.body).at("error").get<std::string>();
  } catch (const std::exception&) {
    return "";
  }
}

class ServeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Data d = clustered();
    index::IndexOptions o;
    o.type = "flat";
    o.metric = "cosine";
    index_ = std::make_shared<index::VectorIndex>(
        index::VectorIndex::build(d.vectors, d.labels, d.ids, o));
    data_ = new Data(std::move(d));
    ServeOptions options;
    options.max_body_bytes = 64 * 1024;
    server_ = new Running(index_, options);
  }
  static void TearDownTestSuite() {
    delete server_;
    delete data_;
    index_.reset();
  }
  void expect_healthy() const {
    auto r = server_->get("/health");
    EXPECT_EQ(r.status, 200) << r.body << r.error;
  }
  static std::shared_ptr<index::VectorIndex> index_;
  static Data* data_;
  static Running* server_;
};
std::shared_ptr<index::VectorIndex> ServeTest::index_;
Data* ServeTest::data_ = nullptr;
Running* ServeTest::server_ = nullptr;

TEST_F(ServeTest, HealthDescribesTheIndex) {
  auto r = server_->get("/health");
  ASSERT_EQ(r.status, 200) << r.error;
  json j = json::parse(r.body);
  EXPECT_EQ(j["status"], "ok");
  EXPECT_EQ(j["items"], 600);
  EXPECT_EQ(j["dim"], 16);
  EXPECT_EQ(j["metric"], "cosine");
  EXPECT_EQ(j["type"], "flat");
  EXPECT_TRUE(j["encoder"].is_null());
  EXPECT_EQ(j["text"], false);
}

TEST_F(ServeTest, SearchByVectorMatchesTheIndex) {
  torch::Tensor q = data_->vectors[17] + 0.1 * torch::randn({16});
  auto r = server_->post("/search", json{{"vector", vector_json(q)}, {"k", 5}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  auto expected = index_->search(q.unsqueeze(0), 5).at(0);
  ASSERT_EQ(j["results"].size(), 5u);
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(j["results"][i]["id"], expected[i].id);
    EXPECT_EQ(j["results"][i]["label"], expected[i].label);
    EXPECT_NEAR(j["results"][i]["score"].get<double>(), expected[i].score, 1e-5);
  }
  EXPECT_EQ(j["k"], 5);
}

TEST_F(ServeTest, SearchByIdFindsTheItemItselfFirst) {
  for (int i : {0, 123, 599}) {
    const std::string id = "item-" + std::to_string(i);
    auto r = server_->post("/search", json{{"id", id}}.dump());
    ASSERT_EQ(r.status, 200) << r.body;
    json j = json::parse(r.body);
    ASSERT_EQ(j["results"].size(), 10u);  // the default k
    EXPECT_EQ(j["results"][0]["id"], id);
    EXPECT_NEAR(j["results"][0]["score"].get<double>(), 1.0, 1e-5);
    // Clustered data: the neighbours share the label.
    int same = 0;
    for (const auto& hit : j["results"]) same += hit["label"] == i % 6;
    EXPECT_GE(same, 9) << r.body;
  }
}

TEST_F(ServeTest, BatchOfVectorsGivesOneListEach) {
  json vs = json::array({vector_json(data_->vectors[1]), vector_json(data_->vectors[2]),
                         vector_json(data_->vectors[3])});
  auto r = server_->post("/search", json{{"vectors", vs}, {"k", 3}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  ASSERT_EQ(j["results"].size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(j["results"][i][0]["id"], "item-" + std::to_string(i + 1));
}

TEST_F(ServeTest, MalformedJsonIs400AndTheServerGoesOn) {
  for (const std::string body : {"{\"vector\": [1, 2,", "not json", "[1,2,3]", "{}"}) {
    auto r = server_->post("/search", body);
    EXPECT_EQ(r.status, 400) << body << " -> " << r.body;
    EXPECT_FALSE(error_of(r).empty()) << r.body;
  }
  EXPECT_NE(error_of(server_->post("/search", "{\"vector\": [1, 2,")).find("malformed JSON"),
            std::string::npos);
  EXPECT_NE(error_of(server_->post("/search", "{}")).find("no query"), std::string::npos);
  expect_healthy();
}

TEST_F(ServeTest, WrongDimensionNamesBoth) {
  auto r = server_->post("/search", R"({"vector": [1, 2, 3]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(error_of(r).find("3 values"), std::string::npos) << r.body;
  EXPECT_NE(error_of(r).find("16-dimensional"), std::string::npos) << r.body;
  r = server_->post("/search", R"({"vector": [1, "a", 3]})");
  EXPECT_EQ(r.status, 400);
  json nested = {{"vectors", json::array({vector_json(data_->vectors[0]), json::array({1, 2})})}};
  r = server_->post("/search", nested.dump());
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(error_of(r).find("\"vectors\"[1]"), std::string::npos) << r.body;
  expect_healthy();
}

TEST_F(ServeTest, BadFieldsAndK) {
  struct Case {
    std::string body, needle;
  };
  for (const auto& c : std::vector<Case>{
           {R"({"id": "item-1", "k": 0})", "k must be in 1..1000"},
           {R"({"id": "item-1", "k": 100000})", "k must be in 1..1000"},
           {R"({"id": "item-1", "k": "ten"})", "\"k\" must be an integer"},
           {R"({"id": 7})", "\"id\" must be a string"},
           {R"({"id": "item-1", "vector": [1]})", "give one query"},
           {R"({"idd": "item-1"})", "unknown field \"idd\""},
           {R"({"vectors": []})", "non-empty array"},
       }) {
    auto r = server_->post("/search", c.body);
    EXPECT_EQ(r.status, 400) << c.body << " -> " << r.body;
    EXPECT_NE(error_of(r).find(c.needle), std::string::npos) << c.body << " -> " << r.body;
  }
  expect_healthy();
}

TEST_F(ServeTest, UnknownIdIs404NamingIt) {
  auto r = server_->post("/search", R"({"id": "no-such-item"})");
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_NE(error_of(r).find("no-such-item"), std::string::npos) << r.body;
}

TEST_F(ServeTest, RoutesAndMethods) {
  auto r = server_->get("/nowhere");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(error_of(r).find("/nowhere"), std::string::npos) << r.body;
  r = server_->get("/search");
  EXPECT_EQ(r.status, 405);
  EXPECT_NE(error_of(r).find("POST"), std::string::npos) << r.body;
  r = server_->post("/health", "{}");
  EXPECT_EQ(r.status, 405);
}

TEST_F(ServeTest, BodyOverTheLimitIs413) {
  std::string big(200 * 1024, 'x');  // limit 64 KiB
  auto r = server_->post("/search", big, "application/octet-stream");
  EXPECT_EQ(r.status, 413) << r.body << r.error;
  EXPECT_NE(error_of(r).find("over the limit of 65536 bytes"), std::string::npos) << r.body;
  expect_healthy();
}

TEST_F(ServeTest, WithoutAnEncoderFileAndTextQueriesAre501) {
  auto r = server_->post("/embed", "\x89PNG....", "image/png");
  EXPECT_EQ(r.status, 501) << r.body;
  EXPECT_NE(error_of(r).find("--checkpoint"), std::string::npos) << r.body;
  r = server_->post("/search", R"({"text": "a seven"})");
  EXPECT_EQ(r.status, 501) << r.body;
  r = server_->post("/search", "RIFF....", "audio/wav");
  EXPECT_EQ(r.status, 501) << r.body;
  r = server_->post("/embed", "", "image/png");
  EXPECT_EQ(r.status, 400) << r.body;
  expect_healthy();
}

TEST_F(ServeTest, ConcurrentClientsAllGetTheRightAnswers) {
  // 8 clients × 40 requests, alternating id and vector queries; each answer checked.
  constexpr int kClients = 8, kRequests = 40;
  std::atomic<int> good{0}, bad{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int r = 0; r < kRequests; ++r) {
        const int item = (c * kRequests + r) % 600;
        const bool by_id = r % 2 == 0;
        json body = by_id ? json{{"id", "item-" + std::to_string(item)}, {"k", 4}}
                          : json{{"vector", vector_json(data_->vectors[item])}, {"k", 4}};
        auto resp = server_->post("/search", body.dump());
        bool ok = resp.status == 200;
        if (ok) {
          json j = json::parse(resp.body);
          ok = j["results"].size() == 4 && j["results"][0]["id"] == "item-" + std::to_string(item);
        }
        (ok ? good : bad)++;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(good.load(), kClients * kRequests);
  EXPECT_EQ(bad.load(), 0);
  expect_healthy();
}

TEST(ServeServer, L2IndexScoresAreDistances) {
  Data d = clustered(200, 8, 4);
  index::IndexOptions o;
  o.type = "hnsw";
  o.metric = "l2";
  auto index = std::make_shared<index::VectorIndex>(
      index::VectorIndex::build(d.vectors, d.labels, d.ids, o));
  Running server(index);
  auto r = server.post("/search", R"({"id": "item-5", "k": 3})");
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["metric"], "l2");
  EXPECT_EQ(j["results"][0]["id"], "item-5");
  EXPECT_NEAR(j["results"][0]["score"].get<double>(), 0.0, 1e-5);
  EXPECT_LE(j["results"][0]["score"].get<double>(), j["results"][1]["score"].get<double>());
}

TEST(ServeServer, PortInUseIsAClearError) {
  Data d = clustered(50, 4, 2);
  auto index = std::make_shared<index::VectorIndex>(
      index::VectorIndex::build(d.vectors, d.labels, d.ids, index::IndexOptions{}));
  Running first(index);
  ServeOptions o;
  o.port = first.port();
  HttpServer second(std::make_shared<Service>(index, nullptr, o));
  try {
    second.bind();
    FAIL() << "bound a port already in use";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(first.port())), std::string::npos)
        << e.what();
  }
}

TEST(ServeServer, StopBeforeRunReturns) {
  Data d = clustered(50, 4, 2);
  auto index = std::make_shared<index::VectorIndex>(
      index::VectorIndex::build(d.vectors, d.labels, d.ids, index::IndexOptions{}));
  ServeOptions o;
  o.port = 0;
  HttpServer server(std::make_shared<Service>(index, nullptr, o));
  server.bind();
  server.stop();
  server.run();  // returns at once
  SUCCEED();
}

TEST(ServeOptionsTest, BadOptionsNameTheOption) {
  ServeOptions o;
  o.port = 70000;
  EXPECT_NE(testing::config_error([&] { o.validate(); }).find("--port"), std::string::npos);
  o = {};
  o.threads = 0;
  EXPECT_NE(testing::config_error([&] { o.validate(); }).find("--threads"), std::string::npos);
  o = {};
  o.max_body_bytes = 10;
  EXPECT_NE(testing::config_error([&] { o.validate(); }).find("body limit"), std::string::npos);
}

TEST(Base64, RoundTripsEveryLength) {
  std::string bytes;
  for (int n = 0; n < 40; ++n) {
    EXPECT_EQ(base64_decode(base64_encode(bytes)), bytes) << n;
    bytes.push_back(static_cast<char>(n * 37 + 11));
  }
  EXPECT_EQ(base64_encode("Man"), "TWFu");
  EXPECT_EQ(base64_encode("Ma"), "TWE=");
  EXPECT_EQ(base64_decode("TW\nE="), "Ma");
  EXPECT_EQ(base64_decode("TWE"), "Ma");  // padding optional
}

TEST(Base64, RejectsOtherCharacters) {
  testing::expect_data_error([] { base64_decode("TW*u"); }, "position 2");
  testing::expect_data_error([] { base64_decode("TW=u"); }, "position 3");
  testing::expect_data_error([] { base64_decode("TWFuT"); }, "truncated");
}

}  // namespace
}  // namespace contra::serve
