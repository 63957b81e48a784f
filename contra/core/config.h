#pragma once
/// Configuration: YAML file → config tree → typed structs, converted once.
///
/// A typed config is a plain struct with a `visit` member that names each field once; the same
/// declaration drives reading (with unknown keys rejected by their dotted path and file line),
/// writing the resolved config, and `--set a.b=c` overrides:
///
///   struct CorpusConfig {
///     int64_t speakers = 48;
///     template <class V> void visit(V& v) { v("speakers", speakers, "number of speakers (>= 2)");
///     } void validate() const { contra::check<ConfigError>(speakers >= 2, "speakers: must be >= 2
///     (got {})", speakers); }
///   };
///   ConfigTree tree = ConfigTree::load_file("corpus.yaml");
///   tree.set("corpus.speakers=60");
///   auto cfg = tree.get<CorpusConfig>("corpus");   // throws ConfigError naming file:line and key
///
/// `validate()` is optional; its message is prefixed with the source and the section path.
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "contra/core/error.h"

namespace contra {

/// Version of the resolved-config layout written to run directories and checkpoints.
inline constexpr int kConfigSchemaVersion = 1;

/// A parsed YAML document plus where it came from, for error messages.
class ConfigTree {
 public:
  ConfigTree();
  /// Parses a YAML file; a syntax error is a ConfigError naming the file and line.
  static ConfigTree load_file(const std::string& path);
  /// Parses YAML text; `source` names it in error messages.
  static ConfigTree from_string(const std::string& text, const std::string& source = "<string>");

  /// Applies an override "a.b.c=value" (value parsed as YAML: numbers, booleans, lists work).
  void set(const std::string& assignment);
  /// The node at a dotted path (an undefined node when absent).
  YAML::Node node(const std::string& path) const;
  /// Where a node came from: "file.yaml:12" or "--set a.b".
  std::string where(const std::string& path, const YAML::Node& node) const;
  const std::string& source() const { return source_; }
  YAML::Node& root() { return root_; }
  const YAML::Node& root() const { return root_; }

  /// Reads the section at `path` ("" = the whole document) into a typed struct. Keys in `ignore`
  /// are accepted in that section without being read (e.g. `name` of a `method:` section).
  template <class T>
  T get(const std::string& path, const std::set<std::string>& ignore = {}) const;
  /// A scalar string at a dotted path, or `fallback` when absent.
  std::string get_string(const std::string& path, const std::string& fallback) const;

  /// Rejects top-level sections other than `allowed` (and `schema_version`).
  void check_sections(const std::vector<std::string>& allowed) const;

 private:
  YAML::Node root_;
  std::string source_;
  std::set<std::string> overridden_;
};

namespace detail {
template <class T, class = void>
struct has_visit : std::false_type {};
template <class T>
struct has_visit<T, std::void_t<decltype(std::declval<T&>().visit(std::declval<int&>()))>>
    : std::true_type {};
template <class T, class = void>
struct has_validate : std::false_type {};
template <class T>
struct has_validate<T, std::void_t<decltype(std::declval<const T&>().validate())>>
    : std::true_type {};

std::string join_path(const std::string& prefix, const std::string& key);
[[noreturn]] void throw_bad_value(const std::string& where, const std::string& path,
                                  const std::string& expected, const YAML::Node& node);
}  // namespace detail

/// Visitor that fills a struct from a YAML map and rejects keys the struct does not declare.
class ConfigReader {
 public:
  ConfigReader(const ConfigTree& tree, YAML::Node node, std::string path,
               std::set<std::string> ignore = {})
      : tree_(tree), node_(std::move(node)), path_(std::move(path)), seen_(std::move(ignore)) {}

  template <class T>
  void operator()(const char* key, T& value, const char* doc = "") {
    seen_.insert(key);
    if (!node_.IsDefined() || !node_.IsMap()) return;
    YAML::Node child = node_[key];
    if (!child.IsDefined() || child.IsNull()) return;
    read(child, detail::join_path(path_, key), value);
  }

  /// Throws for keys present in the YAML map but not visited.
  void finish() const;

  template <class T>
  void read(const YAML::Node& node, const std::string& path, T& value,
            const std::set<std::string>& ignore = {}) const {
    if constexpr (detail::has_visit<T>::value) {
      if (!node.IsMap()) detail::throw_bad_value(tree_.where(path, node), path, "a mapping", node);
      ConfigReader sub(tree_, node, path, ignore);
      value.visit(sub);
      sub.finish();
      validate(node, path, value);
    } else if constexpr (std::is_same_v<T, bool>) {
      value = scalar<bool>(node, path, "true or false");
    } else if constexpr (std::is_integral_v<T>) {
      value = static_cast<T>(scalar<int64_t>(node, path, "an integer"));
    } else if constexpr (std::is_floating_point_v<T>) {
      value = static_cast<T>(scalar<double>(node, path, "a number"));
    } else if constexpr (std::is_same_v<T, std::string>) {
      value = scalar<std::string>(node, path, "a string");
    } else {
      read_sequence(node, path, value);
    }
  }

  template <class T>
  void validate(const YAML::Node& node, const std::string& path, const T& value) const {
    if constexpr (detail::has_validate<T>::value) {
      try {
        value.validate();
      } catch (const ConfigError& e) {
        throw ConfigError(tree_.where(path, node) + ": " + (path.empty() ? "" : path + ".") +
                          e.what());
      }
    }
  }

 private:
  template <class E>
  void read_sequence(const YAML::Node& node, const std::string& path, std::vector<E>& out) const {
    if (!node.IsSequence()) detail::throw_bad_value(tree_.where(path, node), path, "a list", node);
    out.clear();
    for (std::size_t i = 0; i < node.size(); ++i) {
      E element{};
      read(node[i], path + "[" + std::to_string(i) + "]", element);
      out.push_back(std::move(element));
    }
  }
  template <class S>
  S scalar(const YAML::Node& node, const std::string& path, const char* expected) const {
    if (!node.IsScalar()) detail::throw_bad_value(tree_.where(path, node), path, expected, node);
    S out{};
    if (!YAML::convert<S>::decode(node, out)) {
      detail::throw_bad_value(tree_.where(path, node), path, expected, node);
    }
    return out;
  }

  const ConfigTree& tree_;
  YAML::Node node_;
  std::string path_;
  std::set<std::string> seen_;
};

/// Visitor that writes a struct into a YAML map (the resolved config).
class ConfigWriter {
 public:
  explicit ConfigWriter(YAML::Node node) : node_(std::move(node)) {}
  template <class T>
  void operator()(const char* key, const T& value, const char* doc = "") {
    node_[key] = encode(value);
  }
  template <class T>
  static YAML::Node encode(const T& value) {
    if constexpr (detail::has_visit<T>::value) {
      YAML::Node node(YAML::NodeType::Map);
      ConfigWriter writer(node);
      const_cast<T&>(value).visit(writer);  // visit only reads through the writer
      return node;
    } else if constexpr (std::is_arithmetic_v<T> || std::is_same_v<T, std::string>) {
      return YAML::Node(value);
    } else {
      YAML::Node node(YAML::NodeType::Sequence);
      for (const auto& element : value) node.push_back(encode(element));
      return node;
    }
  }

 private:
  YAML::Node node_;
};

/// Serialises a typed config to YAML.
template <class T>
YAML::Node to_yaml(const T& value) {
  return ConfigWriter::encode(value);
}

/// YAML text of a node, block style.
std::string yaml_text(const YAML::Node& node);

template <class T>
T ConfigTree::get(const std::string& path, const std::set<std::string>& ignore) const {
  T value{};
  YAML::Node section = node(path);
  ConfigReader reader(*this, section, path);
  if (section.IsDefined() && !section.IsNull()) {
    reader.read(section, path, value, ignore);
  } else {
    reader.validate(section, path, value);
  }
  return value;
}

}  // namespace contra
