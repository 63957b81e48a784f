#pragma once
/// Helpers shared by the loss tests (DESIGN.md §9: five checks per loss).
///
/// (a) reference values: `load_reference("nt_xent")` reads tests/data/loss/nt_xent.json, written by
///     scripts/loss_reference.py (Debian's python3-torch), and `expect_matches_reference` compares
///     the loss and the gradient of every floating-point input;
/// (d) `expect_gradcheck`: central finite differences in double against autograd;
/// (e) `expect_throws_with<E>`: the call throws E and the message holds the bad value;
/// plus `expect_finite`: loss and gradients finite for extreme inputs.
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "contra/core/config.h"
#include "tests/support/support.h"

namespace contra::testing {

using TensorMap = std::map<std::string, torch::Tensor>;

/// One case of a reference file.
struct ReferenceCase {
  std::string name;
  std::string options_json;  // the options as a JSON object (also valid YAML)
  TensorMap inputs;
  double loss = 0;
  TensorMap grads;

  /// The options parsed through the options struct's `visit` (the config path).
  template <class Options>
  Options options() const {
    return ConfigTree::from_string(options_json, "reference:" + name).get<Options>("");
  }
  /// An input, or an undefined tensor when the case has none of that name.
  torch::Tensor input(const std::string& key) const {
    auto it = inputs.find(key);
    return it == inputs.end() ? torch::Tensor() : it->second;
  }
};

inline torch::Tensor tensor_from_json(const nlohmann::json& j) {
  std::vector<int64_t> shape = j.at("shape").get<std::vector<int64_t>>();
  if (j.at("dtype") == "int64") {
    std::vector<int64_t> data = j.at("data").get<std::vector<int64_t>>();
    return torch::tensor(data, torch::kLong).reshape(shape);
  }
  std::vector<double> data = j.at("data").get<std::vector<double>>();
  return torch::tensor(data, torch::kDouble).reshape(shape);
}

/// Cases of tests/data/loss/<loss>.json (generator: scripts/loss_reference.py).
inline std::vector<ReferenceCase> load_reference(const std::string& loss) {
  const std::string path = source_dir() + "/tests/data/loss/" + loss + ".json";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  nlohmann::json doc = nlohmann::json::parse(in);
  if (doc.at("generator") != "scripts/loss_reference.py") {
    throw std::runtime_error(path + ": unexpected generator");
  }
  std::vector<ReferenceCase> cases;
  for (const auto& c : doc.at("cases")) {
    ReferenceCase rc;
    rc.name = c.at("name");
    rc.options_json = c.at("options").dump();
    for (const auto& [k, v] : c.at("inputs").items()) rc.inputs[k] = tensor_from_json(v);
    rc.loss = c.at("loss");
    for (const auto& [k, v] : c.at("grads").items()) rc.grads[k] = tensor_from_json(v);
    cases.push_back(std::move(rc));
  }
  return cases;
}

/// Runs fn on the case's inputs (floating ones as fresh leaves that require grad) and compares the
/// loss and every input gradient with the reference to `tol` (absolute + relative).
inline void expect_matches_reference(const ReferenceCase& c,
                                     const std::function<torch::Tensor(const TensorMap&)>& fn,
                                     double tol = 1e-9) {
  SCOPED_TRACE("reference case '" + c.name + "' (scripts/loss_reference.py)");
  TensorMap leaves;
  for (const auto& [k, v] : c.inputs) {
    leaves[k] = v.is_floating_point() ? v.clone().requires_grad_(true) : v;
  }
  torch::Tensor loss = fn(leaves);
  ASSERT_EQ(loss.dim(), 0) << "loss must be a scalar";
  EXPECT_NEAR(loss.item<double>(), c.loss, tol * (1 + std::abs(c.loss)));
  loss.backward();
  for (const auto& [k, expected] : c.grads) {
    torch::Tensor g = leaves.at(k).grad();
    if (!g.defined()) g = torch::zeros_like(expected);
    const double err = (g - expected).abs().max().item<double>();
    const double scale = 1 + expected.abs().max().item<double>();
    EXPECT_LE(err, tol * scale) << "gradient of " << k << " differs by " << err << "\nexpected "
                                << expected << "\ngot " << g;
  }
}

/// Central finite differences (step eps) of fn with respect to every element of every input, in
/// double, against autograd: |numeric − analytic| <= atol + rtol·|analytic|.
inline void expect_gradcheck(
    const std::function<torch::Tensor(const std::vector<torch::Tensor>&)>& fn,
    std::vector<torch::Tensor> inputs, double eps = 1e-6, double atol = 1e-6, double rtol = 1e-5) {
  for (auto& x : inputs) x = x.detach().to(torch::kDouble).clone().requires_grad_(true);
  torch::Tensor loss = fn(inputs);
  std::vector<torch::Tensor> analytic =
      torch::autograd::grad({loss}, inputs, {}, /*retain_graph=*/false, /*create_graph=*/false,
                            /*allow_unused=*/true);
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < inputs.size(); ++i) {
    torch::Tensor flat = inputs[i].view({-1});
    torch::Tensor a = analytic[i].defined() ? analytic[i].reshape({-1}) : torch::zeros_like(flat);
    for (int64_t e = 0; e < flat.numel(); ++e) {
      const double original = flat[e].item<double>();
      flat[e] = original + eps;
      const double plus = fn(inputs).item<double>();
      flat[e] = original - eps;
      const double minus = fn(inputs).item<double>();
      flat[e] = original;
      const double numeric = (plus - minus) / (2 * eps);
      const double expected = a[e].item<double>();
      EXPECT_NEAR(numeric, expected, atol + rtol * std::abs(expected))
          << "input " << i << " element " << e;
    }
  }
}

/// The call throws E and its message contains `needle` (the offending value).
template <class E, class F>
void expect_throws_with(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected an exception mentioning '" << needle << "'";
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
        << "message '" << e.what() << "' lacks '" << needle << "'";
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

/// Loss and the gradients of `inputs` are finite.
inline void expect_finite(const std::function<torch::Tensor(const std::vector<torch::Tensor>&)>& fn,
                          std::vector<torch::Tensor> inputs, const std::string& what) {
  SCOPED_TRACE(what);
  for (auto& x : inputs) x = x.detach().clone().requires_grad_(true);
  torch::Tensor loss = fn(inputs);
  EXPECT_TRUE(std::isfinite(loss.item<double>())) << "loss " << loss.item<double>();
  loss.backward();
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].grad().defined()) continue;
    EXPECT_TRUE(torch::isfinite(inputs[i].grad()).all().item<bool>())
        << "gradient of input " << i << ": " << inputs[i].grad();
  }
}

/// Double-precision random normal tensor.
inline torch::Tensor randn_double(std::vector<int64_t> shape) {
  return torch::randn(shape, torch::kDouble);
}

}  // namespace contra::testing
