#include "contra/export/export.h"

#include <algorithm>
#include <memory>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "contra/core/config.h"
#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/core/logging.h"
#include "contra/core/version.h"
#include "contra/method/barlow_twins.h"
#include "contra/method/byol.h"
#include "contra/method/clip.h"
#include "contra/method/cpc_audio.h"
#include "contra/method/cpc_image.h"
#include "contra/method/deepcluster.h"
#include "contra/method/instance_discrimination.h"
#include "contra/method/moco.h"
#include "contra/method/registry.h"
#include "contra/method/simclr.h"
#include "contra/method/swav.h"
#include "contra/nn/projection_head.h"
#include "contra/nn/resnet.h"
#include "contra/nn/small_cnn.h"
#include "contra/text/tokenizer.h"
#include "contra/train/checkpoint.h"
#include "contra/train/clip_recipe.h"
#include "contra/train/image_recipe.h"

namespace contra::exporter {
namespace {

using Json = nlohmann::ordered_json;

// ---- module specs (python/contra_torch.py builds the same modules from them) --------------------

Json image_backbone_spec(const torch::nn::Module& m, const std::string& where) {
  if (const auto* cnn = dynamic_cast<const nn::SmallCnnImpl*>(&m)) {
    return {{"type", "small_cnn"},
            {"in_channels", cnn->options.in_channels()},
            {"width", cnn->options.width()},
            {"eps", 1e-5}};
  }
  if (const auto* resnet = dynamic_cast<const nn::ResNet18Impl*>(&m)) {
    return {{"type", "resnet18"},
            {"in_channels", resnet->options.in_channels()},
            {"width", resnet->options.width()},
            {"eps", 1e-5}};
  }
  throw ConfigError(
      fmt::format("export: {}: backbone '{}' is not exportable yet", where, m.name()));
}

Json conv_encoder_spec(const nn::ConvEncoderImpl& e) {
  const auto& o = e.options;
  return {{"type", "conv_encoder"},
          {"in_channels", o.in_channels()},
          {"channels", o.channels()},
          {"kernels", o.kernels()},
          {"strides", o.strides()},
          {"paddings", o.paddings()},
          {"norm", o.norm()},
          {"eps", o.eps()},
          {"precision", o.precision()},
          {"downsampling", e.downsampling()},
          {"receptive_field", e.receptive_field()}};
}

Json context_spec(const nn::ContextNetworkImpl& c) {
  const auto& o = c.options;
  Json j = {{"type", "context_network"},
            {"kind", o.type()},
            {"input_size", o.input_size()},
            {"hidden_size", o.hidden_size()},
            {"layers", o.layers()}};
  if (o.type() == "transformer") {
    j["heads"] = o.heads();
    j["feedforward"] = o.feedforward();
    j["dropout"] = o.dropout();
    j["activation"] = "relu";
    j["layer_norm_eps"] = 1e-5;
  }
  return j;
}

Json vit_spec(const nn::VisionTransformerImpl& v) {
  const auto& o = v.options;
  return {{"type", "vision_transformer"}, {"image_size", o.image_size()},
          {"patch_size", o.patch_size()}, {"in_channels", o.in_channels()},
          {"width", o.width()},           {"layers", o.layers()},
          {"heads", o.heads()},           {"mlp_ratio", 4},
          {"embed_dim", o.embed_dim()},   {"layer_norm_eps", 1e-5}};
}

Json text_spec(const nn::TextEncoderImpl& t) {
  const auto& o = t.options;
  return {{"type", "text_encoder"},
          {"vocab_size", o.vocab_size()},
          {"context_length", o.context_length()},
          {"width", o.width()},
          {"layers", o.layers()},
          {"heads", o.heads()},
          {"mlp_ratio", 4},
          {"embed_dim", o.embed_dim()},
          {"eot_id", t.eot_id},
          {"layer_norm_eps", 1e-5}};
}

Json linear_spec(const torch::nn::LinearImpl& l) {
  return {{"type", "linear"},
          {"in_features", l.options.in_features()},
          {"out_features", l.options.out_features()},
          {"bias", l.options.bias()}};
}

// Every defined parameter and buffer of `m` under `prefix.`.
void add_tensors(io::SafetensorsFile& f, const std::string& prefix, const torch::nn::Module& m) {
  for (const auto& p : m.named_parameters(/*recurse=*/true)) {
    if (p.value().defined())
      f.tensors.emplace_back(prefix + "." + p.key(), p.value().detach().cpu());
  }
  for (const auto& b : m.named_buffers(/*recurse=*/true)) {
    if (b.value().defined())
      f.tensors.emplace_back(prefix + "." + b.key(), b.value().detach().cpu());
  }
}

[[noreturn]] void unknown_kind(const std::string& method, const std::string& kind,
                               const std::vector<std::string>& valid) {
  throw ConfigError(
      fmt::format("--features: {} has no exportable feature kind '{}' (expected one of {})", method,
                  kind, fmt::join(valid, ", ")));
}

Json image_input(const InputInfo& in, std::int64_t channels) {
  Json j = {{"type", "image"},
            {"layout",
             "(N, C, H, W) float32, pixels scaled to [0, 1], then (x - mean) / std per "
             "channel"},
            {"channels", channels},
            {"image_size", in.image_size}};
  j["mean"] = in.mean.empty() ? Json(nullptr) : Json(in.mean);
  j["std"] = in.std.empty() ? Json(nullptr) : Json(in.std);
  return j;
}

Json audio_input(const InputInfo& in, const nn::ConvEncoderImpl& e) {
  return {
      {"type", "audio"},
      {"layout", "(B, 1, S) float32 mono waveform in [-1, 1]"},
      {"sample_rate", in.sample_rate},
      {"frame_rate", static_cast<double>(in.sample_rate) / static_cast<double>(e.downsampling())},
      {"min_samples", e.receptive_field()}};
}

// What computes `kind` (already checked) of an image method: its backbone and, for the projection
// kinds, the head after it and what follows the head ("l2_normalize", "relu" or "none").
struct ImageParts {
  const torch::nn::Module* backbone = nullptr;
  const torch::nn::Module* head = nullptr;
  std::string post = "none";
};

ImageParts image_parts(method::Method& m, const std::string& kind) {
  ImageParts p;
  const bool projection = kind == "projection" || kind == "embedding";
  auto take = [&](torch::nn::AnyModule& backbone, const torch::nn::Module& head, const char* post) {
    p.backbone = backbone.ptr().get();
    if (projection) {
      p.head = &head;
      p.post = post;
    }
  };
  if (auto* s = dynamic_cast<method::SimClr*>(&m)) take(s->encoder, *s->head, "l2_normalize");
  if (auto* b = dynamic_cast<method::BarlowTwins*>(&m)) take(b->encoder, *b->projector, "none");
  if (auto* s = dynamic_cast<method::Swav*>(&m)) take(s->encoder, *s->projector, "l2_normalize");
  if (auto* d = dynamic_cast<method::DeepCluster*>(&m)) take(d->encoder, *d->projector, "relu");
  if (auto* i = dynamic_cast<method::InstanceDiscrimination*>(&m)) {
    take(i->encoder, *i->head, "l2_normalize");
  }
  if (auto* b = dynamic_cast<method::Byol*>(&m)) {
    take(kind == "target_encoder" ? b->target_encoder : b->encoder, *b->projector, "l2_normalize");
  }
  if (auto* q = dynamic_cast<method::Moco*>(&m)) {
    take(kind == "key_encoder" ? q->encoder_k : q->encoder_q, *q->head_q, "l2_normalize");
  }
  if (!p.backbone) {
    throw ConfigError(fmt::format("export: method '{}' is not exportable yet", m.name()));
  }
  return p;
}

Json head_spec(const torch::nn::Module& head) {
  if (const auto* h = dynamic_cast<const nn::ProjectionHeadImpl*>(&head)) {
    const auto& o = h->options;
    return {{"type", "projection_head"},
            {"in", o.in()},
            {"hidden", o.hidden()},
            {"out", o.out()},
            {"layers", o.layers()},
            {"batch_norm", o.batch_norm()},
            {"last_batch_norm", o.last_batch_norm()},
            {"eps", 1e-5}};
  }
  if (const auto* l = dynamic_cast<const torch::nn::LinearImpl*>(&head)) return linear_spec(*l);
  throw ConfigError(fmt::format("export: head '{}' is not exportable yet", head.name()));
}

std::int64_t count_values(const io::SafetensorsFile& f) {
  std::int64_t n = 0;
  for (const auto& [name, t] : f.tensors) {
    if (t.is_floating_point()) n += t.numel();
  }
  return n;
}

}  // namespace

void check_exportable(const method::Method& m, const std::string& kind) {
  const auto valid = exportable_features(m);
  if (std::find(valid.begin(), valid.end(), kind) == valid.end()) {
    unknown_kind(m.name(), kind, valid);
  }
}

std::string default_features(const method::Method& m) {
  const std::string name = m.name();
  if (name == "cpc_audio") return "context";
  if (name == "clip" || name == "clip_audio") return "image_embedding";
  return "encoder";
}

std::vector<std::string> exportable_features(const method::Method& m) {
  const std::string name = m.name();
  if (name == "cpc_audio") return {"context", "encoder"};
  if (name == "cpc_image") return {"encoder", "context", "grid"};
  if (name == "clip") return {"image", "image_embedding", "text_embedding"};
  if (name == "clip_audio") return {"image", "image_embedding", "audio", "audio_embedding"};
  if (name == "byol") return {"encoder", "projection", "target_encoder"};
  if (name == "moco") return {"encoder", "projection", "key_encoder"};
  if (name == "instance_discrimination") return {"encoder", "embedding"};
  if (name == "simclr" || name == "barlow_twins" || name == "swav" || name == "deepcluster") {
    return {"encoder", "projection"};
  }
  throw ConfigError(fmt::format("export: method '{}' is not exportable yet", name));
}

io::SafetensorsFile export_method(method::Method& m, const std::string& features,
                                  const InputInfo& input,
                                  const std::map<std::string, std::string>& extra_metadata) {
  const std::string name = m.name();
  const std::string kind = features.empty() ? default_features(m) : features;
  io::SafetensorsFile f;
  Json arch = Json::object();
  arch["method"] = name;
  Json modules = Json::object();

  if (auto* cpc = dynamic_cast<method::CpcAudio*>(&m)) {
    check_exportable(m, kind);
    const std::vector<std::string> valid = exportable_features(m);
    arch["family"] = "cpc_audio";
    modules["encoder"] = conv_encoder_spec(*cpc->encoder);
    add_tensors(f, "encoder", *cpc->encoder);
    if (kind == "context") {
      modules["context"] = context_spec(*cpc->context);
      add_tensors(f, "context", *cpc->context);
      arch["kinds"] = Json::array({"context", "encoder"});
    } else {
      arch["kinds"] = Json::array({"encoder"});
    }
    arch["input"] = audio_input(input, *cpc->encoder);
    const std::int64_t d =
        kind == "context" ? cpc->context->options.hidden_size() : cpc->encoder->options.channels();
    arch["output"] = {
        {"shape", fmt::format("(B, T, {})", d)},
        {"frames", "T = frames of the conv encoder (S samples -> about S / downsampling)"}};
  } else if (auto* ci = dynamic_cast<method::CpcImage*>(&m)) {
    check_exportable(m, kind);
    const std::vector<std::string> valid = exportable_features(m);
    arch["family"] = "cpc_image";
    const auto& o = ci->encoder->options;
    modules["encoder"] = {{"type", "patch_encoder"},
                          {"in_channels", o.in_channels()},
                          {"width", o.width()},
                          {"norm", o.norm()},
                          {"eps", 1e-5}};
    const auto& c = ci->context->options;
    modules["context"] = {{"type", "masked_context"},
                          {"features", c.features()},
                          {"channels", c.channels()},
                          {"blocks", c.blocks()},
                          {"kernel", c.kernel()}};
    add_tensors(f, "encoder", *ci->encoder);
    add_tensors(f, "context", *ci->context);
    arch["patch_size"] = ci->config().patch_size;
    arch["patch_stride"] = ci->config().patch_stride;
    arch["kinds"] = valid;
    arch["input"] = image_input(input, o.in_channels());
    arch["output"] = {{"shape", kind == "grid" ? "(N, D * Gh * Gw), channel-major"
                                               : fmt::format("(N, {})", 4 * o.width())}};
  } else if (auto* clip = dynamic_cast<method::Clip*>(&m)) {
    check_exportable(m, kind);
    const std::vector<std::string> valid = exportable_features(m);
    arch["family"] = name;
    arch["embed_dim"] = clip->embed_dim();
    std::int64_t channels = 0;
    if (clip->vit) {
      modules["vit"] = vit_spec(*clip->vit);
      add_tensors(f, "vit", *clip->vit);
      channels = clip->vit->options.in_channels();
    } else {
      modules["cnn"] = image_backbone_spec(*clip->cnn.ptr(), name + " image encoder");
      modules["image_projection"] = linear_spec(*clip->image_projection);
      add_tensors(f, "cnn", *clip->cnn.ptr());
      add_tensors(f, "image_projection", *clip->image_projection);
      channels = modules["cnn"]["in_channels"].get<std::int64_t>();
    }
    InputInfo in = input;
    auto [mean, std] = clip->image_stats();
    if (!mean.empty()) {
      in.mean = mean;
      in.std = std;
    }
    if (in.image_size == 0) in.image_size = clip->image_config().image_size;
    Json inputs = {{"image", image_input(in, channels)}};
    if (clip->is_audio()) {
      modules["audio_encoder"] = conv_encoder_spec(*clip->audio_encoder);
      add_tensors(f, "audio_encoder", *clip->audio_encoder);
      if (clip->audio_context) {
        modules["audio_context"] = context_spec(*clip->audio_context);
        add_tensors(f, "audio_context", *clip->audio_context);
      }
      modules["audio_projection"] = linear_spec(*clip->audio_projection);
      add_tensors(f, "audio_projection", *clip->audio_projection);
      inputs["audio"] = audio_input(input, *clip->audio_encoder);
    } else {
      modules["text"] = text_spec(*clip->text);
      add_tensors(f, "text", *clip->text);
      inputs["text"] = {
          {"type", "tokens"},
          {"layout", "(N, L) int64 token ids, L <= context_length: [SOT, pieces..., EOT, 0...]"}};
      Json tok = {{"library", "sentencepiece"},
                  {"model_tensor", "tokenizer_model"},
                  {"context_length", clip->text_config().context_length},
                  {"vocab_size", clip->text_config().tokenizer.vocab_size},
                  {"model_type", clip->text_config().tokenizer.model_type},
                  {"pad_id", text::Tokenizer::kPad},
                  {"unk_id", text::Tokenizer::kUnknown},
                  {"sot_id", text::Tokenizer::kStart},
                  {"eot_id", text::Tokenizer::kEnd},
                  {"normalization", "NFKC + case folding (lower case)"},
                  {"encoding",
                   "[SOT] + pieces (first context_length - 2) + [EOT], padded with 0 to "
                   "context_length"}};
      if (clip->tokenizer_model.defined() && clip->tokenizer_model.numel() > 0) {
        f.tensors.emplace_back("tokenizer_model", clip->tokenizer_model.detach().cpu());
      } else {
        tok["model_tensor"] = nullptr;
      }
      f.metadata["tokenizer"] = tok.dump();
    }
    arch["kinds"] = valid;
    arch["input"] = inputs;
    arch["output"] = {{"image", fmt::format("(N, {})", clip->image_feature_size())},
                      {"image_embedding", fmt::format("(N, {}), L2-normalised", clip->embed_dim())},
                      {clip->is_audio() ? "audio_embedding" : "text_embedding",
                       fmt::format("(N, {}), L2-normalised", clip->embed_dim())}};
  } else {
    check_exportable(m, kind);
    const ImageParts parts = image_parts(m, kind);
    arch["family"] = "image";
    modules["encoder"] = image_backbone_spec(*parts.backbone, name + " " + kind);
    add_tensors(f, "encoder", *parts.backbone);
    const std::int64_t w = modules["encoder"]["width"].get<std::int64_t>();
    std::string shape =
        fmt::format("(N, {})", (modules["encoder"]["type"] == "resnet18" ? 8 : 4) * w);
    if (parts.head) {
      // The projection kinds: the head on the backbone, then its post-processing; the same file
      // also computes the backbone's "encoder".
      modules["projection"] = head_spec(*parts.head);
      add_tensors(f, "projection", *parts.head);
      arch["projection_output"] = parts.post;
      arch["kinds"] = Json::array({kind, "encoder"});
      const Json& h = modules["projection"];
      shape = fmt::format(
          "(N, {}){}",
          h.contains("out") ? h["out"].get<std::int64_t>() : h["out_features"].get<std::int64_t>(),
          parts.post == "l2_normalize" ? ", L2-normalised" : "");
    } else {
      arch["kinds"] = Json::array({kind});
    }
    arch["input"] = image_input(input, modules["encoder"]["in_channels"].get<std::int64_t>());
    arch["output"] = {{"shape", shape}};
  }
  arch["modules"] = modules;

  f.metadata["format"] = "pt";
  f.metadata["contra_version"] = CONTRA_VERSION;
  f.metadata["method"] = name;
  f.metadata["features"] = kind;
  f.metadata["architecture"] = arch.dump();
  for (const auto& [k, v] : extra_metadata) f.metadata[k] = v;
  return f;
}

ExportSummary export_checkpoint(const std::string& checkpoint_arg, const std::string& out,
                                const std::string& features) {
  const std::string checkpoint = train::resolve_checkpoint(checkpoint_arg);
  const train::CheckpointMeta meta = train::read_checkpoint_meta(checkpoint);
  ConfigTree tree = ConfigTree::from_string(meta.config_yaml, checkpoint + " (config)");
  std::shared_ptr<method::Method> m = method::make_method(tree);
  const std::string kind = features.empty() ? default_features(*m) : features;
  check_exportable(*m, kind);  // before loading weights or data
  train::load_checkpoint(checkpoint, *m);
  m->eval();

  InputInfo input;
  const std::string modality = method::method_modality(tree);
  if (modality == "image") {
    train::ImageRecipe recipe = train::load_image_recipe(tree);
    input.image_size =
        recipe.data.known_side() > 0 ? recipe.data.known_side() : recipe.augment.view.size;
    if (!recipe.data.mean.empty()) {
      input.mean = recipe.data.mean;
      input.std = recipe.data.std;
    } else if (path_exists(recipe.data.root)) {
      // The recipe normalised with the training images' own statistics: recompute them.
      train::ImageData data = train::open_image_data(recipe);
      input.mean = data.stats.mean;
      input.std = data.stats.std;
    } else {
      log().warn(
          "export: data.root '{}' is missing, so the input normalisation (the training images' "
          "mean/std) is recorded as unknown (null)",
          recipe.data.root);
    }
  }

  io::SafetensorsFile file = export_method(
      *m, kind, input, {{"source_checkpoint", checkpoint}, {"step", std::to_string(meta.step)}});
  io::write_safetensors(out, file);

  ExportSummary s;
  s.out = out;
  s.checkpoint = checkpoint;
  s.method = m->name();
  s.features = kind;
  s.architecture = file.metadata.at("architecture");
  s.step = meta.step;
  s.tensors = static_cast<std::int64_t>(file.tensors.size());
  s.parameters = count_values(file);
  return s;
}

}  // namespace contra::exporter
