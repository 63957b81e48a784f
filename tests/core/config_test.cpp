#include "contra/core/config.h"

#include <gtest/gtest.h>

namespace contra {
namespace {

struct Inner {
  double temperature = 0.1;
  std::vector<int64_t> kernels{10, 8};
  template <class V>
  void visit(V& v) {
    v("temperature", temperature, "softmax temperature (> 0)");
    v("kernels", kernels);
  }
  void validate() const {
    check<ConfigError>(temperature > 0, "temperature: must be > 0 (got {})", temperature);
  }
};
struct Outer {
  int64_t steps = 10;
  std::string name = "x";
  bool flag = false;
  Inner inner;
  template <class V>
  void visit(V& v) {
    v("steps", steps);
    v("name", name);
    v("flag", flag);
    v("inner", inner);
  }
};

TEST(Config, ReadsValuesAndKeepsDefaults) {
  auto tree =
      ConfigTree::from_string("run:\n  steps: 5\n  inner:\n    temperature: 0.5\n", "t.yaml");
  auto cfg = tree.get<Outer>("run");
  EXPECT_EQ(cfg.steps, 5);
  EXPECT_EQ(cfg.name, "x");
  EXPECT_DOUBLE_EQ(cfg.inner.temperature, 0.5);
  EXPECT_EQ(cfg.inner.kernels, (std::vector<int64_t>{10, 8}));
}

TEST(Config, UnknownKeyNamesPathAndLine) {
  auto tree =
      ConfigTree::from_string("run:\n  steps: 5\n  inner:\n    temprature: 0.5\n", "t.yaml");
  try {
    tree.get<Outer>("run");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("t.yaml:4"), std::string::npos) << what;
    EXPECT_NE(what.find("run.inner.temprature"), std::string::npos) << what;
    EXPECT_NE(what.find("temperature"), std::string::npos) << what;  // lists the valid keys
  }
}

TEST(Config, WrongTypeNamesExpected) {
  auto tree = ConfigTree::from_string("run:\n  steps: many\n", "t.yaml");
  try {
    tree.get<Outer>("run");
    FAIL();
  } catch (const ConfigError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("run.steps"), std::string::npos) << what;
    EXPECT_NE(what.find("an integer"), std::string::npos) << what;
    EXPECT_NE(what.find("'many'"), std::string::npos) << what;
  }
}

TEST(Config, ValidateMessageGetsPath) {
  auto tree = ConfigTree::from_string("run:\n  inner:\n    temperature: -1\n", "t.yaml");
  try {
    tree.get<Outer>("run");
    FAIL();
  } catch (const ConfigError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("run.inner.temperature: must be > 0 (got -1)"), std::string::npos) << what;
  }
}

TEST(Config, SetOverridesAndCreatesSections) {
  auto tree = ConfigTree::from_string("run:\n  steps: 5\n", "t.yaml");
  tree.set("run.steps=7");
  tree.set("run.inner.kernels=[1, 2, 3]");
  tree.set("run.flag=true");
  auto cfg = tree.get<Outer>("run");
  EXPECT_EQ(cfg.steps, 7);
  EXPECT_TRUE(cfg.flag);
  EXPECT_EQ(cfg.inner.kernels, (std::vector<int64_t>{1, 2, 3}));
}

TEST(Config, SetUnknownKeyIsReportedAsSet) {
  ConfigTree tree;
  tree.set("run.stepz=7");
  try {
    tree.get<Outer>("run");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--set run.stepz"), std::string::npos) << e.what();
  }
}

TEST(Config, BadSetSyntax) {
  ConfigTree tree;
  EXPECT_THROW(tree.set("noequals"), ConfigError);
  EXPECT_THROW(tree.set("=3"), ConfigError);
  EXPECT_THROW(tree.set("a..b=3"), ConfigError);
}

TEST(Config, InvalidYamlNamesLine) {
  try {
    ConfigTree::from_string("run:\n  steps: [1, 2\n", "bad.yaml");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.yaml:"), std::string::npos) << e.what();
  }
}

TEST(Config, RoundTripThroughYaml) {
  Outer cfg;
  cfg.steps = 42;
  cfg.inner.temperature = 0.25;
  auto text = yaml_text(to_yaml(cfg));
  auto tree = ConfigTree::from_string(text, "rt.yaml");
  auto back = tree.get<Outer>("");
  EXPECT_EQ(back.steps, 42);
  EXPECT_DOUBLE_EQ(back.inner.temperature, 0.25);
  EXPECT_EQ(back.inner.kernels, cfg.inner.kernels);
}

TEST(Config, UnknownSectionRejected) {
  auto tree = ConfigTree::from_string("schema_version: 1\nrun: {}\ntrian: {}\n", "t.yaml");
  EXPECT_NO_THROW(tree.check_sections({"run", "trian"}));
  EXPECT_THROW(tree.check_sections({"run"}), ConfigError);
  auto future = ConfigTree::from_string("schema_version: 99\n", "t.yaml");
  EXPECT_THROW(future.check_sections({}), ConfigError);
}

TEST(Config, MissingSectionUsesDefaults) {
  ConfigTree tree;
  auto cfg = tree.get<Outer>("run");
  EXPECT_EQ(cfg.steps, 10);
}

}  // namespace
}  // namespace contra
