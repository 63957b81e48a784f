/* The C interface of libcontra_sentencepiece, the plug-in through which contra uses SentencePiece.
 *
 * Why a plug-in: Debian's libsentencepiece bundles its own protobuf-lite and exports all of its
 * symbols, while LibTorch loads the system libprotobuf; linked into one process, the two copies
 * interpose each other and the program crashes while the libraries initialise. contra therefore
 * dlopen()s this plug-in with RTLD_LOCAL | RTLD_DEEPBIND: SentencePiece binds to its own protobuf,
 * and none of its symbols reach the rest of the process.
 *
 * Every function returns 0 on success; otherwise non-zero with *error set to a malloc'ed message
 * (free it with contra_spm_release). Buffers handed out are released with contra_spm_release.
 */
#ifndef CONTRA_SENTENCEPIECE_SHIM_H
#define CONTRA_SENTENCEPIECE_SHIM_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CONTRA_SPM_ABI_VERSION 1
int contra_spm_abi_version(void);

/* Trains on n sentences with SentencePiece's key=value trainer options; *model receives the
 * serialized model proto (*model_size bytes). */
int contra_spm_train(const char* const* sentences, size_t n, const char* const* keys,
                     const char* const* values, size_t options, char** model, size_t* model_size,
                     char** error);
/* A processor from a serialized model; *handle is freed with contra_spm_free. */
int contra_spm_load(const char* model, size_t model_size, void** handle, char** error);
void contra_spm_free(void* handle);
/* Vocabulary size and the special ids (-1 when absent). */
int contra_spm_info(void* handle, int* pieces, int* pad, int* unk, int* bos, int* eos);
int contra_spm_encode(void* handle, const char* text, size_t text_size, int** ids, size_t* n,
                      char** error);
/* Pieces as one buffer of n NUL-terminated strings. */
int contra_spm_encode_pieces(void* handle, const char* text, size_t text_size, char** pieces,
                             size_t* pieces_size, size_t* n, char** error);
int contra_spm_decode(void* handle, const int* ids, size_t n, char** text, size_t* text_size,
                      char** error);
void contra_spm_release(void* buffer);

#ifdef __cplusplus
}
#endif
#endif
