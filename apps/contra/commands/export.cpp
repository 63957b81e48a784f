// contra export: a checkpoint's encoder(s) as a safetensors file for PyTorch (docs/export.md).
#include <cstdio>
#include <memory>
#include <string>

#include "commands/commands.h"
#include "contra/export/export.h"

namespace contra::cli {

namespace {

struct ExportOptions {
  std::string checkpoint, out, features;
};

int run_export(const ExportOptions& o) {
  exporter::ExportSummary s = exporter::export_checkpoint(o.checkpoint, o.out, o.features);
  std::printf("checkpoint   %s (step %lld)\n", s.checkpoint.c_str(),
              static_cast<long long>(s.step));
  std::printf("method       %s\n", s.method.c_str());
  std::printf("features     %s\n", s.features.c_str());
  std::printf("tensors      %lld (%lld values)\n", static_cast<long long>(s.tensors),
              static_cast<long long>(s.parameters));
  std::printf("written      %s\n", s.out.c_str());
  std::printf("load it      python3 python/contra_torch.py info %s\n", s.out.c_str());
  return 0;
}

}  // namespace

void register_export(CLI::App& app) {
  auto o = std::make_shared<ExportOptions>();
  auto* sub = app.add_subcommand(
      "export",
      "write a checkpoint's encoder(s) as safetensors for PyTorch (python/contra_torch.py loads "
      "it; see docs/export.md)");
  sub->add_option("--checkpoint", o->checkpoint, "run directory or checkpoint file")->required();
  sub->add_option("--out", o->out, "output file (e.g. encoder.safetensors)")->required();
  sub->add_option("--features", o->features,
                  "feature kind the module computes (default: the method's representation: "
                  "cpc_audio context, image methods encoder, clip image_embedding)");
  sub->callback([o] { set_runner([o] { return run_export(*o); }); });
}

}  // namespace contra::cli
