// libcontra_sentencepiece: SentencePiece behind a C interface (see sentencepiece_shim.h).
#include "sentencepiece_shim.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#define CONTRA_SPM_EXPORT extern "C" __attribute__((visibility("default")))

namespace {
char* copy_out(const std::string& s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p) {
    std::memcpy(p, s.data(), s.size());
    p[s.size()] = '\0';
  }
  return p;
}

int fail(char** error, const std::string& message) {
  if (error) *error = copy_out(message);
  return 1;
}

class Sentences : public sentencepiece::SentenceIterator {
 public:
  Sentences(const char* const* s, size_t n) : s_(s), n_(n) { load(); }
  bool done() const override { return i_ >= n_; }
  void Next() override {
    ++i_;
    load();
  }
  const std::string& value() const override { return value_; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  void load() {
    if (i_ < n_) value_ = s_[i_];
  }
  const char* const* s_;
  size_t n_, i_ = 0;
  std::string value_;
};
}  // namespace

CONTRA_SPM_EXPORT int contra_spm_abi_version(void) { return CONTRA_SPM_ABI_VERSION; }

CONTRA_SPM_EXPORT int contra_spm_train(const char* const* sentences, size_t n,
                                       const char* const* keys, const char* const* values,
                                       size_t options, char** model, size_t* model_size,
                                       char** error) {
  try {
    std::unordered_map<std::string, std::string> args;
    for (size_t i = 0; i < options; ++i) args[keys[i]] = values[i];
    Sentences it(sentences, n);
    std::string proto;
    auto status = sentencepiece::SentencePieceTrainer::Train(args, &it, &proto);
    if (!status.ok()) return fail(error, status.ToString());
    *model = static_cast<char*>(std::malloc(proto.size() ? proto.size() : 1));
    if (!*model) return fail(error, "out of memory");
    std::memcpy(*model, proto.data(), proto.size());
    *model_size = proto.size();
    return 0;
  } catch (const std::exception& e) {
    return fail(error, e.what());
  }
}

CONTRA_SPM_EXPORT int contra_spm_load(const char* model, size_t model_size, void** handle,
                                      char** error) {
  try {
    auto* sp = new sentencepiece::SentencePieceProcessor();
    auto status = sp->LoadFromSerializedProto(std::string_view(model, model_size));
    if (!status.ok()) {
      delete sp;
      return fail(error, status.ToString());
    }
    *handle = sp;
    return 0;
  } catch (const std::exception& e) {
    return fail(error, e.what());
  }
}

CONTRA_SPM_EXPORT void contra_spm_free(void* handle) {
  delete static_cast<sentencepiece::SentencePieceProcessor*>(handle);
}

CONTRA_SPM_EXPORT int contra_spm_info(void* handle, int* pieces, int* pad, int* unk, int* bos,
                                      int* eos) {
  auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(handle);
  *pieces = sp->GetPieceSize();
  *pad = sp->pad_id();
  *unk = sp->unk_id();
  *bos = sp->bos_id();
  *eos = sp->eos_id();
  return 0;
}

CONTRA_SPM_EXPORT int contra_spm_encode(void* handle, const char* text, size_t text_size, int** ids,
                                        size_t* n, char** error) {
  try {
    std::vector<int> out;
    auto status = static_cast<sentencepiece::SentencePieceProcessor*>(handle)->Encode(
        std::string_view(text, text_size), &out);
    if (!status.ok()) return fail(error, status.ToString());
    *ids = static_cast<int*>(std::malloc((out.size() ? out.size() : 1) * sizeof(int)));
    if (!*ids) return fail(error, "out of memory");
    if (!out.empty()) std::memcpy(*ids, out.data(), out.size() * sizeof(int));
    *n = out.size();
    return 0;
  } catch (const std::exception& e) {
    return fail(error, e.what());
  }
}

CONTRA_SPM_EXPORT int contra_spm_encode_pieces(void* handle, const char* text, size_t text_size,
                                               char** pieces, size_t* pieces_size, size_t* n,
                                               char** error) {
  try {
    std::vector<std::string> out;
    auto status = static_cast<sentencepiece::SentencePieceProcessor*>(handle)->Encode(
        std::string_view(text, text_size), &out);
    if (!status.ok()) return fail(error, status.ToString());
    std::string joined;
    for (const auto& p : out) {
      joined += p;
      joined.push_back('\0');
    }
    *pieces = static_cast<char*>(std::malloc(joined.size() ? joined.size() : 1));
    if (!*pieces) return fail(error, "out of memory");
    std::memcpy(*pieces, joined.data(), joined.size());
    *pieces_size = joined.size();
    *n = out.size();
    return 0;
  } catch (const std::exception& e) {
    return fail(error, e.what());
  }
}

CONTRA_SPM_EXPORT int contra_spm_decode(void* handle, const int* ids, size_t n, char** text,
                                        size_t* text_size, char** error) {
  try {
    std::string out;
    auto status = static_cast<sentencepiece::SentencePieceProcessor*>(handle)->Decode(
        std::vector<int>(ids, ids + n), &out);
    if (!status.ok()) return fail(error, status.ToString());
    *text = copy_out(out);
    if (!*text) return fail(error, "out of memory");
    *text_size = out.size();
    return 0;
  } catch (const std::exception& e) {
    return fail(error, e.what());
  }
}

CONTRA_SPM_EXPORT void contra_spm_release(void* buffer) { std::free(buffer); }
