// contra::embed: dataset embedding (ids/labels alignment with the model's own features, speech
// utterance and frame modes), resumption after an interruption, partial outputs never taken for
// complete ones, the query encoder agreeing with embed, and bad inputs.
#include <filesystem>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/core/config.h"
#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/data/audio.h"
#include "contra/data/image_batches.h"
#include "contra/data/images.h"
#include "contra/embed/embed.h"
#include "contra/embed/encoder.h"
#include "contra/io/safetensors.h"
#include "contra/method/registry.h"
#include "contra/train/checkpoint.h"
#include "tests/embed/embed_fixtures.h"
#include "tests/support/support.h"

namespace contra::embed {
namespace {

using contra::testing::TempDir;

// The model of a run directory, loaded as the probes load it.
std::shared_ptr<method::Method> load_model(const std::string& run) {
  const std::string ckpt = train::resolve_checkpoint(run);
  ConfigTree tree = ConfigTree::from_string(train::read_checkpoint_meta(ckpt).config_yaml, "ckpt");
  auto m = method::make_method(tree);
  train::load_checkpoint(ckpt, *m);
  m->eval();
  return m;
}

EmbedOptions options(const std::string& run, const std::string& data, const std::string& out) {
  EmbedOptions o;
  o.checkpoint = run;
  o.data = data;
  o.out = out;
  o.batch_size = 7;
  o.chunk_size = 10;
  o.progress = false;
  return o;
}

TEST(Embed, ImageRowsAreTheModelsFeaturesOfTheirItems) {
  TempDir d;
  const std::string run = contra::testing::make_image_checkpoint(d.path());
  EmbedSummary s =
      embed_dataset(options(run, "mnist:" + d.file("mnist") + ":test", d.file("e.st")));
  EXPECT_EQ(s.items, 30);
  EXPECT_EQ(s.count, 30);
  EXPECT_EQ(s.chunks, 3);
  EXPECT_FALSE(path_exists(d.file("e.st.partial")));
  Embeddings e = read_embeddings(d.file("e.st"));
  ASSERT_EQ(e.vectors.size(0), 30);
  const auto test = data::read_mnist(d.file("mnist"), "test");
  const auto train = data::read_mnist(d.file("mnist"), "train");
  EXPECT_TRUE(torch::equal(e.labels, test.labels));
  EXPECT_EQ(e.ids[0], "test/00000");
  EXPECT_EQ(e.ids[29], "test/00029");
  EXPECT_EQ(e.meta.at("features"), "encoder");
  EXPECT_EQ(e.meta.at("modality"), "image");
  EXPECT_EQ(e.meta.at("method"), "simclr");
  EXPECT_EQ(e.meta.at("complete"), "true");
  EXPECT_EQ(e.meta.at("count"), "30");
  EXPECT_EQ(e.meta.at("dim"), std::to_string(e.vectors.size(1)));
  EXPECT_EQ(e.meta.at("checkpoint"),
            std::filesystem::absolute(train::resolve_checkpoint(run)).lexically_normal().string());
  // Row i is the vector of item i: recompute a few rows with method->features directly.
  auto m = load_model(run);
  const auto stats = data::channel_stats(train.images);
  for (std::int64_t i : {0, 13, 29}) {
    torch::NoGradGuard g;
    auto x = data::normalize_images(data::to_unit_float(test.images.narrow(0, i, 1)), stats);
    auto want = m->features(x, "encoder")[0];
    EXPECT_TRUE(torch::allclose(e.vectors[i], want, 1e-4, 1e-5)) << "row " << i;
  }
  // The query encoder computes the same vector from an image file of item 13.
  data::write_png(d.file("q.png"), test.images[13]);
  auto enc = QueryEncoder::open(run, "", torch::kCPU);
  EXPECT_EQ(enc->modality(), "image");
  EXPECT_EQ(enc->dim(), e.vectors.size(1));
  EXPECT_FALSE(enc->has_text());
  EXPECT_TRUE(torch::allclose(enc->encode_file(d.file("q.png")), e.vectors[13], 1e-4, 1e-5));
  EXPECT_THROW(enc->encode_text("a seven"), UsageError);
  contra::testing::expect_data_error([&] { enc->encode_bytes("not an image", "blob.bin"); },
                                     "blob.bin");
  // A folder of PNG files (classes = sub-folders) gives the same vectors under path ids.
  make_dirs(d.file("folder/3"));
  make_dirs(d.file("folder/7"));
  data::write_png(d.file("folder/3/a.png"), test.images[3]);
  data::write_png(d.file("folder/7/b.png"), test.images[7]);
  embed_dataset(options(run, "images:" + d.file("folder"), d.file("f.st")));
  Embeddings f = read_embeddings(d.file("f.st"));
  ASSERT_EQ(f.ids, (std::vector<std::string>{"3/a.png", "7/b.png"}));
  EXPECT_EQ(f.labels[0].item<std::int64_t>(), 0);
  EXPECT_EQ(f.labels[1].item<std::int64_t>(), 1);
  EXPECT_TRUE(torch::allclose(f.vectors[1], e.vectors[7], 1e-4, 1e-5));
}

TEST(Embed, ResumesAfterAnInterruptionWithIdenticalResult) {
  TempDir d;
  const std::string run = contra::testing::make_image_checkpoint(d.path());
  const std::string data = "mnist:" + d.file("mnist") + ":test";
  embed_dataset(options(run, data, d.file("full.st")));

  auto o = options(run, data, d.file("e.st"));
  o.stop_after_chunks = 2;
  EmbedSummary first = embed_dataset(o);
  EXPECT_TRUE(first.stopped);
  EXPECT_FALSE(path_exists(d.file("e.st")));  // never a partial file under the final name
  EXPECT_TRUE(path_exists(d.file("e.st.partial/chunk-000001.safetensors")));
  EXPECT_FALSE(path_exists(d.file("e.st.partial/chunk-000002.safetensors")));
  // The partial folder is never taken for a complete embeddings file.
  contra::testing::expect_data_error([&] { read_embeddings(d.file("e.st.partial")); },
                                     "unfinished");
  contra::testing::expect_data_error(
      [&] { read_embeddings(d.file("e.st.partial/chunk-000000.safetensors")); },
      "not a complete embeddings file");

  // Other arguments on the same partial folder: a clear error, unless --restart.
  auto other = options(run, data, d.file("e.st"));
  other.batch_size = 5;
  contra::testing::expect_data_error([&] { embed_dataset(other); }, "--restart");

  o.stop_after_chunks = 0;
  EmbedSummary second = embed_dataset(o);
  EXPECT_EQ(second.chunks_reused, 2);
  EXPECT_FALSE(path_exists(d.file("e.st.partial")));
  Embeddings a = read_embeddings(d.file("full.st")), b = read_embeddings(d.file("e.st"));
  EXPECT_TRUE(torch::equal(a.vectors, b.vectors));
  EXPECT_TRUE(torch::equal(a.labels, b.labels));
  EXPECT_EQ(a.ids, b.ids);

  // A complete output is reported, not redone; --overwrite redoes it.
  EmbedSummary again = embed_dataset(o);
  EXPECT_TRUE(again.already_complete);
  EXPECT_EQ(again.count, 30);
  o.overwrite = true;
  EXPECT_FALSE(embed_dataset(o).already_complete);

  // --restart discards a partial folder of other arguments.
  other.stop_after_chunks = 1;
  other.out = d.file("r.st");
  embed_dataset(other);
  auto restarted = options(run, data, d.file("r.st"));
  restarted.restart = true;
  EXPECT_EQ(embed_dataset(restarted).chunks_reused, 0);
  EXPECT_TRUE(torch::equal(read_embeddings(d.file("r.st")).vectors, a.vectors));
}

TEST(Embed, SpeechUtterancesAndFrames) {
  TempDir d;
  auto corpus = contra::testing::make_speech_corpus(d.file("speech"));
  const std::string run = contra::testing::make_speech_checkpoint(corpus.root, d.file("runs"));
  auto m = load_model(run);
  std::vector<torch::Tensor> frames;
  std::vector<std::int64_t> counts;
  for (const auto& id : corpus.ids) {
    torch::NoGradGuard g;
    auto wave = data::read_audio(corpus.root + "/" + id.substr(0, 2) + "/100/" + id + ".flac");
    frames.push_back(m->features(wave.unsqueeze(0), "context")[0]);
    counts.push_back(frames.back().size(0));
  }
  // Alignments one frame shorter than the features for utterance 0 (cut to the shorter).
  std::vector<std::int64_t> aligned = counts;
  aligned[0] -= 1;
  contra::testing::write_alignments(corpus, aligned);

  auto o = options(run, "speech:" + corpus.root + ":all", d.file("utt.st"));
  o.chunk_size = 3;
  embed_dataset(o);
  Embeddings u = read_embeddings(d.file("utt.st"));
  ASSERT_EQ(u.ids, corpus.ids);
  EXPECT_EQ(u.labels[0].item<std::int64_t>(), 0);  // speaker 11
  EXPECT_EQ(u.labels[3].item<std::int64_t>(), 1);  // speaker 22
  EXPECT_EQ(u.meta.at("pooling"), "mean");
  EXPECT_EQ(u.meta.at("features"), "context");
  for (std::size_t i = 0; i < frames.size(); ++i)
    EXPECT_TRUE(
        torch::allclose(u.vectors[static_cast<std::int64_t>(i)], frames[i].mean(0), 1e-4, 1e-5))
        << corpus.ids[i];
  // The query encoder pools a file the same way.
  auto enc = QueryEncoder::open(run, "", torch::kCPU);
  EXPECT_EQ(enc->modality(), "audio");
  EXPECT_EQ(enc->pooling(), "mean");
  auto q = enc->encode_file(corpus.root + "/22/100/" + corpus.ids[3] + ".flac");
  EXPECT_TRUE(torch::allclose(q, u.vectors[3], 1e-4, 1e-5));

  // Frames: ids utt#t, phone labels from the alignments.
  auto f = options(run, "speech:" + corpus.root + ":test", d.file("frames.st"));
  f.frames = true;
  embed_dataset(f);
  Embeddings fr = read_embeddings(d.file("frames.st"));
  ASSERT_EQ(fr.vectors.size(0), counts[1] + counts[3]);
  EXPECT_EQ(fr.ids[0], corpus.ids[1] + "#0");
  EXPECT_EQ(fr.ids[static_cast<std::size_t>(counts[1])], corpus.ids[3] + "#0");
  const std::int64_t t = 5;
  EXPECT_EQ(fr.labels[t].item<std::int64_t>(), (t * 7 + 1) % 5);
  EXPECT_TRUE(torch::allclose(fr.vectors[t], frames[1][t], 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(fr.vectors[counts[1] + 2], frames[3][2], 1e-4, 1e-5));
  EXPECT_EQ(fr.meta.at("pooling"), "frames");
  // Utterance 0 (train split) is cut to its alignment.
  auto tr = options(run, "speech:" + corpus.root + ":train", d.file("train_frames.st"));
  tr.frames = true;
  embed_dataset(tr);
  EXPECT_EQ(read_embeddings(d.file("train_frames.st")).vectors.size(0), aligned[0] + counts[2]);
}

TEST(Embed, BadInputsGiveClearErrors) {
  TempDir d;
  const std::string run = contra::testing::make_image_checkpoint(d.path());
  contra::testing::expect_data_error(
      [&] { embed_dataset(options(d.file("no_such_run"), "", d.file("x.st"))); }, "no_such_run");
  contra::testing::expect_data_error(
      [&] { QueryEncoder::open(d.file("no_such_run"), "", torch::kCPU); }, "no_such_run");
  // A corrupt checkpoint file.
  write_file_atomic(d.file("bad.pt"), "not a checkpoint");
  EXPECT_THROW(QueryEncoder::open(d.file("bad.pt"), "", torch::kCPU), DataError);
  // Unknown features kind.
  EXPECT_THROW(QueryEncoder::open(run, "nonsense", torch::kCPU), ConfigError);
  // Bad data specs.
  EXPECT_THROW(embed_dataset(options(run, "mnist:", d.file("x.st"))), UsageError);
  contra::testing::expect_data_error(
      [&] { embed_dataset(options(run, d.file("nowhere"), d.file("x.st"))); }, "nowhere");
  // --frames needs a speech checkpoint.
  auto frames = options(run, "mnist:" + d.file("mnist") + ":test", d.file("x.st"));
  frames.frames = true;
  EXPECT_THROW(embed_dataset(frames), UsageError);
  // Audio items for an image checkpoint.
  auto corpus = contra::testing::make_speech_corpus(d.file("speech"));
  contra::testing::expect_data_error(
      [&] { embed_dataset(options(run, "audio:" + corpus.root, d.file("x.st"))); },
      "does not encode audio");
  // An output that exists but is not a complete embeddings file.
  write_file_atomic(d.file("junk.st"), "junk");
  contra::testing::expect_data_error([&] { embed_dataset(options(run, "", d.file("junk.st"))); },
                                     "--overwrite");
  // An embeddings file marked incomplete / with mismatched tensors.
  io::SafetensorsFile f;
  f.tensors.emplace_back("embeddings", torch::zeros({3, 4}));
  f.tensors.emplace_back("labels", torch::zeros({3}, torch::kLong));
  f.tensors.emplace_back("ids", pack_ids({"a", "b"}));
  f.metadata["complete"] = "true";
  f.metadata["count"] = "3";
  io::write_safetensors(d.file("m.st"), f);
  contra::testing::expect_data_error([&] { read_embeddings(d.file("m.st")); }, "2 ids");
  f.metadata["complete"] = "false";
  io::write_safetensors(d.file("i.st"), f);
  contra::testing::expect_data_error([&] { read_embeddings(d.file("i.st")); }, "complete");
  EXPECT_THROW(pack_ids({"a\nb"}), DataError);
}

}  // namespace
}  // namespace contra::embed
