# FindEspeakNg: libespeak-ng (GPL-3.0-or-later). Defines EspeakNg::EspeakNg.
# Only apps/speechgen (itself GPL-3.0-or-later) may link it; the contra library and CLI never do.
find_path(EspeakNg_INCLUDE_DIR espeak-ng/speak_lib.h)
find_library(EspeakNg_LIBRARY NAMES espeak-ng)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(EspeakNg REQUIRED_VARS EspeakNg_LIBRARY EspeakNg_INCLUDE_DIR)
if(EspeakNg_FOUND AND NOT TARGET EspeakNg::EspeakNg)
  add_library(EspeakNg::EspeakNg UNKNOWN IMPORTED)
  set_target_properties(EspeakNg::EspeakNg PROPERTIES IMPORTED_LOCATION "${EspeakNg_LIBRARY}"
                        INTERFACE_INCLUDE_DIRECTORIES "${EspeakNg_INCLUDE_DIR}")
endif()
mark_as_advanced(EspeakNg_INCLUDE_DIR EspeakNg_LIBRARY)
