#include "contra/core/config.h"

#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace contra {

namespace detail {
std::string join_path(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

void throw_bad_value(const std::string& where, const std::string& path, const std::string& expected,
                     const YAML::Node& node) {
  std::string got;
  if (node.IsScalar()) {
    got = "'" + node.Scalar() + "'";
  } else if (node.IsSequence()) {
    got = "a list";
  } else if (node.IsMap()) {
    got = "a mapping";
  } else {
    got = "nothing";
  }
  throw ConfigError(fmt::format("{}: key '{}': expected {} (got {})", where, path, expected, got));
}
}  // namespace detail

ConfigTree::ConfigTree() : root_(YAML::NodeType::Map), source_("command line") {}

ConfigTree ConfigTree::from_string(const std::string& text, const std::string& source) {
  ConfigTree tree;
  tree.source_ = source;
  try {
    tree.root_ = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(fmt::format("{}:{}: invalid YAML: {}", source, e.mark.line + 1, e.msg));
  }
  if (tree.root_.IsNull()) tree.root_ = YAML::Node(YAML::NodeType::Map);
  if (!tree.root_.IsMap()) {
    throw ConfigError(fmt::format("{}: expected a mapping of sections at the top level", source));
  }
  return tree;
}

ConfigTree ConfigTree::load_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError(fmt::format("config '{}': cannot open file", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return from_string(buffer.str(), path);
}

void ConfigTree::set(const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw ConfigError(fmt::format("--set '{}': expected key.path=value", assignment));
  }
  std::string path = assignment.substr(0, eq);
  std::string text = assignment.substr(eq + 1);
  YAML::Node value;
  try {
    value = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(fmt::format("--set {}: invalid value '{}': {}", path, text, e.msg));
  }
  std::vector<std::string> parts;
  std::stringstream stream(path);
  for (std::string part; std::getline(stream, part, '.');) {
    if (part.empty()) throw ConfigError(fmt::format("--set '{}': empty key in path", assignment));
    parts.push_back(part);
  }
  // yaml-cpp nodes are handles: walk down by reassigning a handle to each child map.
  std::vector<YAML::Node> chain{root_};
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node child = chain.back()[parts[i]];
    if (!child.IsDefined() || child.IsNull()) {
      chain.back()[parts[i]] = YAML::Node(YAML::NodeType::Map);
      child = chain.back()[parts[i]];
    } else if (!child.IsMap()) {
      throw ConfigError(fmt::format("--set {}: '{}' is not a section", path, parts[i]));
    }
    chain.push_back(child);
  }
  chain.back()[parts.back()] = value;
  overridden_.insert(path);
}

YAML::Node ConfigTree::node(const std::string& path) const {
  if (path.empty()) return root_;
  std::stringstream stream(path);
  std::vector<YAML::Node> chain{root_};
  for (std::string part; std::getline(stream, part, '.');) {
    const YAML::Node& parent = chain.back();
    if (!parent.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
    YAML::Node child = parent[part];
    if (!child.IsDefined()) return YAML::Node(YAML::NodeType::Undefined);
    chain.push_back(child);
  }
  return chain.back();
}

std::string ConfigTree::get_string(const std::string& path, const std::string& fallback) const {
  YAML::Node n = node(path);
  if (!n.IsDefined() || n.IsNull()) return fallback;
  if (!n.IsScalar()) detail::throw_bad_value(where(path, n), path, "a string", n);
  return n.Scalar();
}

std::string ConfigTree::where(const std::string& path, const YAML::Node& node) const {
  for (const auto& o : overridden_) {
    if (path == o || path.rfind(o + ".", 0) == 0 || path.rfind(o + "[", 0) == 0)
      return "--set " + o;
  }
  if (node.IsDefined() && node.Mark().line >= 0) {
    return fmt::format("{}:{}", source_, node.Mark().line + 1);
  }
  return source_;
}

void ConfigTree::check_sections(const std::vector<std::string>& allowed) const {
  for (const auto& entry : root_) {
    std::string key = entry.first.as<std::string>();
    if (key == "schema_version") {
      int version = 0;
      if (!YAML::convert<int>::decode(entry.second, version) || version < 1 ||
          version > kConfigSchemaVersion) {
        throw ConfigError(fmt::format(
            "{}: schema_version: unsupported (got '{}', expected 1..{})", where(key, entry.second),
            entry.second.IsScalar() ? entry.second.Scalar() : "?", kConfigSchemaVersion));
      }
      continue;
    }
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      throw ConfigError(fmt::format("{}: unknown section '{}' (valid: {}, schema_version)",
                                    where(key, entry.first), key, fmt::join(allowed, ", ")));
    }
  }
}

void ConfigReader::finish() const {
  if (!node_.IsDefined() || !node_.IsMap()) return;
  for (const auto& entry : node_) {
    std::string key = entry.first.as<std::string>();
    if (seen_.count(key)) continue;
    std::string path = detail::join_path(path_, key);
    std::vector<std::string> valid(seen_.begin(), seen_.end());
    throw ConfigError(fmt::format("{}: unknown key '{}' (valid keys here: {})",
                                  tree_.where(path, entry.first), path, fmt::join(valid, ", ")));
  }
}

std::string yaml_text(const YAML::Node& node) {
  YAML::Emitter out;
  out << node;
  return std::string(out.c_str()) + "\n";
}

}  // namespace contra
