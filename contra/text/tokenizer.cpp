#include "contra/text/tokenizer.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "plugins/sentencepiece/sentencepiece_shim.h"

#ifndef CONTRA_SPM_PLUGIN_BUILD_PATH
#define CONTRA_SPM_PLUGIN_BUILD_PATH ""
#endif

namespace contra::text {
namespace fs = std::filesystem;

void TokenizerConfig::validate() const {
  check<ConfigError>(model_type == "bpe" || model_type == "unigram",
                     "model_type: must be bpe or unigram (got '{}')", model_type);
  check<ConfigError>(vocab_size >= 8 && vocab_size <= 65536,
                     "vocab_size: must be in 8..65536 (got {})", vocab_size);
}

namespace {

// The plug-in's functions, resolved once.
struct Plugin {
  decltype(&contra_spm_abi_version) abi_version;
  decltype(&contra_spm_train) train;
  decltype(&contra_spm_load) load;
  decltype(&contra_spm_free) free;
  decltype(&contra_spm_info) info;
  decltype(&contra_spm_encode) encode;
  decltype(&contra_spm_encode_pieces) encode_pieces;
  decltype(&contra_spm_decode) decode;
  decltype(&contra_spm_release) release;
};

std::vector<std::string> plugin_candidates() {
  constexpr const char* kName = "libcontra_sentencepiece.so";
  std::vector<std::string> out;
  if (const char* env = std::getenv("CONTRA_SENTENCEPIECE_PLUGIN"); env && *env) {
    out.push_back(fs::absolute(env).string());  // dlopen of a bare name would search elsewhere
  }
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    out.push_back((exe.parent_path().parent_path() / "lib" / kName).string());
    out.push_back((exe.parent_path() / kName).string());
  }
  if (*CONTRA_SPM_PLUGIN_BUILD_PATH) out.push_back(CONTRA_SPM_PLUGIN_BUILD_PATH);
  return out;
}

template <class F>
F symbol(void* lib, const char* name) {
  return reinterpret_cast<F>(dlsym(lib, name));
}

const Plugin& plugin() {
  static std::once_flag once;
  static Plugin p;
  static std::string failure;
  std::call_once(once, [] {
    std::vector<std::string> tried;
    for (const auto& path : plugin_candidates()) {
      if (!fs::exists(path)) {
        tried.push_back(path + " (missing)");
        continue;
      }
      // RTLD_DEEPBIND: SentencePiece binds to its bundled protobuf, not the process's libprotobuf.
      void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
      if (!lib) {
        tried.push_back(fmt::format("{} ({})", path, dlerror()));
        continue;
      }
      Plugin q;
      q.abi_version = symbol<decltype(q.abi_version)>(lib, "contra_spm_abi_version");
      q.train = symbol<decltype(q.train)>(lib, "contra_spm_train");
      q.load = symbol<decltype(q.load)>(lib, "contra_spm_load");
      q.free = symbol<decltype(q.free)>(lib, "contra_spm_free");
      q.info = symbol<decltype(q.info)>(lib, "contra_spm_info");
      q.encode = symbol<decltype(q.encode)>(lib, "contra_spm_encode");
      q.encode_pieces = symbol<decltype(q.encode_pieces)>(lib, "contra_spm_encode_pieces");
      q.decode = symbol<decltype(q.decode)>(lib, "contra_spm_decode");
      q.release = symbol<decltype(q.release)>(lib, "contra_spm_release");
      if (!q.abi_version || !q.train || !q.load || !q.free || !q.info || !q.encode ||
          !q.encode_pieces || !q.decode || !q.release) {
        tried.push_back(path + " (not a contra SentencePiece plug-in: functions missing)");
        dlclose(lib);
        continue;
      }
      if (q.abi_version() != CONTRA_SPM_ABI_VERSION) {
        tried.push_back(fmt::format("{} (interface version {}, expected {})", path, q.abi_version(),
                                    CONTRA_SPM_ABI_VERSION));
        dlclose(lib);
        continue;
      }
      p = q;  // kept open for the life of the process
      return;
    }
    failure = fmt::format(
        "the SentencePiece plug-in libcontra_sentencepiece.so could not be opened (tried: {}; set "
        "CONTRA_SENTENCEPIECE_PLUGIN to its path)",
        fmt::join(tried, "; "));
  });
  if (!failure.empty()) throw UnavailableError(failure);
  return p;
}

// Takes ownership of a plug-in error message.
std::string take_error(char* error) {
  std::string s = error ? error : "unknown error";
  if (error) plugin().release(error);
  return s;
}

}  // namespace

struct Tokenizer::Handle {
  void* sp = nullptr;
  ~Handle() {
    if (sp) plugin().free(sp);
  }
};

Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::train(const std::vector<std::string>& sentences,
                           const TokenizerConfig& config) {
  config.validate();
  std::vector<const char*> usable;
  for (const auto& s : sentences)
    if (s.find_first_not_of(" \t\r\n") != std::string::npos) usable.push_back(s.c_str());
  check<DataError>(!usable.empty(), "tokenizer: no non-empty text to train on ({} sentences)",
                   sentences.size());
  // Special ids fixed at 0..3 so padding/SOT/EOT never depend on the corpus; NFKC + case folding;
  // one thread and no sampling or shuffling, so the same captions give the same model bytes.
  const std::vector<std::pair<std::string, std::string>> args = {
      {"model_type", config.model_type},
      {"vocab_size", std::to_string(config.vocab_size)},
      {"hard_vocab_limit", "false"},
      {"pad_id", std::to_string(kPad)},
      {"unk_id", std::to_string(kUnknown)},
      {"bos_id", std::to_string(kStart)},
      {"eos_id", std::to_string(kEnd)},
      {"normalization_rule_name", "nmt_nfkc_cf"},
      {"character_coverage", "1.0"},
      {"num_threads", "1"},
      {"minloglevel", "2"},
      {"input_sentence_size", "0"},
      {"shuffle_input_sentence", "false"},
  };
  std::vector<const char*> keys, values;
  for (const auto& [k, v] : args) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  const Plugin& p = plugin();
  char* model = nullptr;
  size_t size = 0;
  char* error = nullptr;
  if (p.train(usable.data(), usable.size(), keys.data(), values.data(), keys.size(), &model, &size,
              &error) != 0) {
    throw DataError("tokenizer: SentencePiece training failed: " + take_error(error));
  }
  std::string proto(model, size);
  p.release(model);
  return load(proto);
}

Tokenizer Tokenizer::load(const std::string& serialized) {
  check<DataError>(!serialized.empty(), "tokenizer: empty model (0 bytes)");
  const Plugin& p = plugin();
  Tokenizer t;
  t.sp_ = std::make_unique<Handle>();
  char* error = nullptr;
  if (p.load(serialized.data(), serialized.size(), &t.sp_->sp, &error) != 0) {
    throw DataError(fmt::format("tokenizer: not a SentencePiece model ({} bytes): {}",
                                serialized.size(), take_error(error)));
  }
  int pieces = 0, pad = 0, unk = 0, bos = 0, eos = 0;
  p.info(t.sp_->sp, &pieces, &pad, &unk, &bos, &eos);
  check<DataError>(pad == kPad && bos == kStart && eos == kEnd && unk == kUnknown,
                   "tokenizer: the model's special ids (pad {}, unk {}, bos {}, eos {}) are not "
                   "contra's (0, 1, 2, 3)",
                   pad, unk, bos, eos);
  t.pieces_ = pieces;
  t.serialized_ = serialized;
  return t;
}

std::vector<int> Tokenizer::pieces(const std::string& text) const {
  const Plugin& p = plugin();
  int* ids = nullptr;
  size_t n = 0;
  char* error = nullptr;
  if (p.encode(sp_->sp, text.data(), text.size(), &ids, &n, &error) != 0)
    throw DataError(fmt::format("tokenizer: cannot encode '{}': {}", text, take_error(error)));
  std::vector<int> out(ids, ids + n);
  p.release(ids);
  return out;
}

std::vector<std::string> Tokenizer::piece_strings(const std::string& text) const {
  const Plugin& p = plugin();
  char* buffer = nullptr;
  size_t size = 0, n = 0;
  char* error = nullptr;
  if (p.encode_pieces(sp_->sp, text.data(), text.size(), &buffer, &size, &n, &error) != 0)
    throw DataError(fmt::format("tokenizer: cannot encode '{}': {}", text, take_error(error)));
  std::vector<std::string> out;
  for (size_t i = 0, at = 0; i < n; ++i) {
    out.emplace_back(buffer + at);
    at += out.back().size() + 1;
  }
  p.release(buffer);
  return out;
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
  std::vector<int> kept;
  for (int id : ids)
    if (id > kEnd && id < pieces_) kept.push_back(id);
  const Plugin& p = plugin();
  char* text = nullptr;
  size_t size = 0;
  char* error = nullptr;
  if (p.decode(sp_->sp, kept.data(), kept.size(), &text, &size, &error) != 0)
    throw DataError("tokenizer: cannot decode: " + take_error(error));
  std::string out(text, size);
  p.release(text);
  return out;
}

torch::Tensor Tokenizer::encode(const std::string& text, std::int64_t context_length) const {
  check<ConfigError>(context_length >= 3, "context_length: must be >= 3 (got {})", context_length);
  std::vector<int> p = pieces(text);
  const auto n = std::min<std::int64_t>(static_cast<std::int64_t>(p.size()), context_length - 2);
  torch::Tensor out = torch::full({context_length}, kPad, torch::kLong);
  auto* o = out.data_ptr<int64_t>();
  o[0] = kStart;
  for (std::int64_t i = 0; i < n; ++i) o[i + 1] = p[static_cast<std::size_t>(i)];
  o[n + 1] = kEnd;
  return out;
}

torch::Tensor Tokenizer::encode_batch(const std::vector<std::string>& texts,
                                      std::int64_t context_length) const {
  std::vector<torch::Tensor> rows;
  rows.reserve(texts.size());
  for (const auto& t : texts) rows.push_back(encode(t, context_length));
  if (rows.empty()) return torch::zeros({0, context_length}, torch::kLong);
  return torch::stack(rows);
}

std::int64_t Tokenizer::vocab_size() const { return pieces_; }

torch::Tensor bytes_to_tensor(const std::string& bytes) {
  torch::Tensor t = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kUInt8);
  if (!bytes.empty()) std::memcpy(t.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  return t;
}

std::string tensor_to_bytes(const torch::Tensor& tensor) {
  torch::Tensor t = tensor.to(torch::kCPU).contiguous();
  check<DataError>(t.scalar_type() == torch::kUInt8 && t.dim() == 1,
                   "tokenizer: expected a 1-D uint8 tensor of model bytes");
  return std::string(reinterpret_cast<const char*>(t.data_ptr<uint8_t>()),
                     static_cast<std::size_t>(t.numel()));
}

}  // namespace contra::text
