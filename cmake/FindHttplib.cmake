# FindHttplib: cpp-httplib (MIT), Debian's compiled build (libcpp-httplib-dev). Defines Httplib::Httplib.
# Debian compiles the library with OpenSSL, zlib and Brotli support; its header must be read with the
# same CPPHTTPLIB_* definitions (from cpp-httplib.pc), or the classes' layout would not match.
find_package(PkgConfig REQUIRED)
pkg_check_modules(PC_HTTPLIB QUIET cpp-httplib)
find_path(Httplib_INCLUDE_DIR httplib.h HINTS ${PC_HTTPLIB_INCLUDE_DIRS})
find_library(Httplib_LIBRARY NAMES cpp-httplib HINTS ${PC_HTTPLIB_LIBRARY_DIRS})
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Httplib REQUIRED_VARS Httplib_LIBRARY Httplib_INCLUDE_DIR
                                  VERSION_VAR PC_HTTPLIB_VERSION)
if(Httplib_FOUND AND NOT TARGET Httplib::Httplib)
  set(Httplib_DEFINITIONS "")
  foreach(flag IN LISTS PC_HTTPLIB_CFLAGS_OTHER)
    if(flag MATCHES "^-D(.+)$")
      list(APPEND Httplib_DEFINITIONS "${CMAKE_MATCH_1}")
    endif()
  endforeach()
  add_library(Httplib::Httplib UNKNOWN IMPORTED)
  set_target_properties(Httplib::Httplib PROPERTIES IMPORTED_LOCATION "${Httplib_LIBRARY}"
                        INTERFACE_INCLUDE_DIRECTORIES "${Httplib_INCLUDE_DIR}"
                        INTERFACE_COMPILE_DEFINITIONS "${Httplib_DEFINITIONS}")
endif()
mark_as_advanced(Httplib_INCLUDE_DIR Httplib_LIBRARY)
