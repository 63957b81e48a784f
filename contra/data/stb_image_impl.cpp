// The one translation unit that compiles stb_image and stb_image_write (Debian libstb-dev, MIT /
// public domain). Only the PNG and JPEG decoders are built: those are the formats image folders may
// hold. The writer is complete (PNG for write_png; tests also write JPEG fixtures with it); nothing
// else may define STB_IMAGE_WRITE_IMPLEMENTATION.
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_NO_STDIO
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
