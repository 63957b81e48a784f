#pragma once
// The tiny CPC recipe the train integration tests share: a 3-speaker corpus at `root`, runs under
// `runs`, a 16-channel model; `sections` adds train/probe/finetune settings.
#include <string>

namespace contra::testing {

inline std::string tiny_cpc_recipe(const std::string& root, const std::string& runs,
                                   const std::string& sections) {
  return "schema_version: 1\n"
         "run: {name: tiny, dir: " +
         runs + "}\ndata: {root: " + root +
         ", window: 4000}\n"
         "corpus: {speakers: 3, utterances: 4, seed: 2}\n"
         "method:\n  name: cpc_audio\n  encoder: {channels: 16}\n  context: {hidden: 16}\n"
         "  predictor: {steps: 3}\n  negatives: {count: 8}\n"
         "optim: {lr: 1.0e-3}\n" +
         sections;
}

}  // namespace contra::testing
