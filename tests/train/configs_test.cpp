// Every recipe shipped in configs/ loads and validates with the code as it is: unknown keys, bad
// values and method/recipe combinations the loaders reject would otherwise only show when a user
// runs the file. (Loading reads no data: CIFAR-10 and LibriSpeech recipes are checked without it.)
#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "contra/core/config.h"
#include "contra/method/registry.h"
#include "contra/train/clip_recipe.h"
#include "contra/train/image_recipe.h"
#include "contra/train/recipe.h"
#include "tests/support/support.h"

namespace contra::train {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> recipe_files() {
  std::vector<std::string> files;
  for (const auto& e :
       fs::directory_iterator(fs::path(contra::testing::source_dir()) / "configs")) {
    if (e.path().extension() == ".yaml") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(ShippedConfigs, EveryRecipeLoads) {
  std::vector<std::string> methods;
  for (const auto& file : recipe_files()) {
    SCOPED_TRACE(file);
    ConfigTree tree = ConfigTree::load_file(file);
    if (!tree.node("method").IsDefined()) continue;  // corpus_speech.yaml: not a training recipe
    const std::string modality = method::method_modality(tree);
    methods.push_back(tree.get_string("method.name", "cpc_audio"));
    try {
      if (modality == "image") {
        load_image_recipe(tree);
      } else if (modality == "audio") {
        load_recipe(tree);
      } else {
        load_clip_recipe(tree);
      }
    } catch (const std::exception& e) {
      ADD_FAILURE() << file << ": " << e.what();
    }
  }
  // Each registered method has at least one recipe.
  for (const auto& name : method::method_names()) {
    EXPECT_NE(std::find(methods.begin(), methods.end(), name), methods.end())
        << "no recipe in configs/ for method " << name;
  }
}

}  // namespace
}  // namespace contra::train
