#pragma once
/// The explicit table of methods (DESIGN.md §3: no static self-registration). A recipe's `method:`
/// section names the method (`name: cpc_audio`); the rest of the section is that method's config.
#include <memory>
#include <string>
#include <vector>

#include "contra/core/config.h"
#include "contra/method/method.h"

namespace contra::method {

/// Registered method names, in the order of the table.
std::vector<std::string> method_names();

/// Builds the method named by `method.name` (default "cpc_audio") from the `method:` section.
/// Throws ConfigError for an unknown name (listing the valid ones) or a bad section.
std::shared_ptr<Method> make_method(const ConfigTree& tree);

/// What the method named by `method.name` trains on: "audio" (speech recipes), "image" (image
/// recipes), "image_text" or "audio_image" (CLIP recipes). Throws ConfigError for an unknown name.
std::string method_modality(const ConfigTree& tree);

/// Writes the resolved `method:` section (name + typed config) of `tree` into `out`.
void resolve_method_config(const ConfigTree& tree, YAML::Node& out);

}  // namespace contra::method
