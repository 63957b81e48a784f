#include "contra/method/registry.h"

#include <functional>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "contra/core/error.h"
#include "contra/method/barlow_twins.h"
#include "contra/method/byol.h"
#include "contra/method/clip.h"
#include "contra/method/cpc_audio.h"
#include "contra/method/cpc_image.h"
#include "contra/method/deepcluster.h"
#include "contra/method/instance_discrimination.h"
#include "contra/method/moco.h"
#include "contra/method/simclr.h"
#include "contra/method/swav.h"

namespace contra::method {

namespace {
constexpr const char* kCpcAudio = "cpc_audio";

struct Entry {
  const char* name;
  const char* modality;
  std::function<std::shared_ptr<Method>(const ConfigTree&)> make;
  std::function<YAML::Node(const ConfigTree&)> resolve;
};

const std::vector<Entry>& table() {
  static const std::vector<Entry> entries = {
      {kCpcAudio, "audio",
       [](const ConfigTree& t) {
         return std::make_shared<CpcAudio>(t.get<CpcAudioConfig>("method", {"name"}));
       },
       [](const ConfigTree& t) { return to_yaml(t.get<CpcAudioConfig>("method", {"name"})); }},
      {"simclr", "image",
       [](const ConfigTree& t) {
         return std::make_shared<SimClr>(t.get<SimClrConfig>("method", {"name"}));
       },
       [](const ConfigTree& t) { return to_yaml(t.get<SimClrConfig>("method", {"name"})); }},
      {"moco", "image",
       [](const ConfigTree& t) {
         return std::make_shared<Moco>(t.get<MocoConfig>("method", {"name"}));
       },
       [](const ConfigTree& t) { return to_yaml(t.get<MocoConfig>("method", {"name"})); }},
      {"byol", "image",
       [](const ConfigTree& t) {
         return std::make_shared<Byol>(t.get<ByolConfig>("method", {"name"}));
       },
       [](const ConfigTree& t) { return to_yaml(t.get<ByolConfig>("method", {"name"})); }},
      {"barlow_twins", "image",
       [](const ConfigTree& t) {
         return std::make_shared<BarlowTwins>(t.get<BarlowTwinsConfig>("method", {"name"}));
       },
       [](const ConfigTree& t) { return to_yaml(t.get<BarlowTwinsConfig>("method", {"name"})); }},
      {"cpc_image", "image",
       [](const ConfigTree& t) {
         return std::make_shared<CpcImage>(t.get<CpcImageConfig>("method", {"name"}));
       },
       [](const ConfigTree& t) { return to_yaml(t.get<CpcImageConfig>("method", {"name"})); }},
      {"instance_discrimination", "image",
       [](const ConfigTree& t) {
         return std::make_shared<InstanceDiscrimination>(
             t.get<InstanceDiscriminationConfig>("method", {"name"}));
       },
       [](const ConfigTree& t) {
         return to_yaml(t.get<InstanceDiscriminationConfig>("method", {"name"}));
       }},
      {"swav", "image",
       [](const ConfigTree& t) {
         return std::make_shared<Swav>(t.get<SwavConfig>("method", {"name"}));
       },
       [](const ConfigTree& t) { return to_yaml(t.get<SwavConfig>("method", {"name"})); }},
      {"deepcluster", "image",
       [](const ConfigTree& t) {
         return std::make_shared<DeepCluster>(t.get<DeepClusterConfig>("method", {"name"}));
       },
       [](const ConfigTree& t) { return to_yaml(t.get<DeepClusterConfig>("method", {"name"})); }},
      {"clip", "image_text",
       [](const ConfigTree& t) {
         return std::make_shared<Clip>(t.get<ClipConfig>("method", {"name"}));
       },
       [](const ConfigTree& t) { return to_yaml(t.get<ClipConfig>("method", {"name"})); }},
      {"clip_audio", "audio_image",
       [](const ConfigTree& t) {
         return std::make_shared<Clip>(t.get<ClipAudioConfig>("method", {"name"}));
       },
       [](const ConfigTree& t) { return to_yaml(t.get<ClipAudioConfig>("method", {"name"})); }},
  };
  return entries;
}

const Entry& find(const ConfigTree& tree) {
  std::string name = tree.get_string("method.name", kCpcAudio);
  for (const auto& e : table()) {
    if (name == e.name) return e;
  }
  throw ConfigError(fmt::format("{}: method.name: unknown method '{}' (valid: {})",
                                tree.where("method.name", tree.node("method.name")), name,
                                fmt::join(method_names(), ", ")));
}
}  // namespace

std::vector<std::string> method_names() {
  std::vector<std::string> names;
  for (const auto& e : table()) names.push_back(e.name);
  return names;
}

std::shared_ptr<Method> make_method(const ConfigTree& tree) { return find(tree).make(tree); }

std::string method_modality(const ConfigTree& tree) { return find(tree).modality; }

void resolve_method_config(const ConfigTree& tree, YAML::Node& out) {
  const Entry& e = find(tree);
  YAML::Node node = e.resolve(tree);
  YAML::Node section(YAML::NodeType::Map);
  section["name"] = e.name;
  for (const auto& kv : node) section[kv.first] = kv.second;
  out["method"] = section;
}

}  // namespace contra::method
