# contra_reuse_pch(target): reuse the library's precompiled LibTorch header in another target.
function(contra_reuse_pch target)
  if(CONTRA_USE_PCH)
    target_precompile_headers(${target} REUSE_FROM contra)
  endif()
endfunction()

# contra_add_test_dir(dir): every tests/<dir>/*_test.cpp becomes one GoogleTest binary per label:
#   *_test.cpp        -> contra_<dir>_test        label unit
#   *_itest.cpp       -> contra_<dir>_itest       label integration
#   *_slowtest.cpp    -> contra_<dir>_slowtest    label slow
#   *_cudatest.cpp    -> contra_<dir>_cudatest    label cuda
# Each test case is its own ctest test (gtest_discover_tests), so `ctest -L unit` and `-LE slow` work.
function(contra_add_test_dir dir)
  foreach(kind test itest slowtest cudatest)
    file(GLOB sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${dir}/*_${kind}.cpp)
    if(NOT sources)
      continue()
    endif()
    if(kind STREQUAL "test")
      set(label unit)
    elseif(kind STREQUAL "itest")
      set(label integration)
    elseif(kind STREQUAL "slowtest")
      set(label slow)
    else()
      set(label cuda)
    endif()
    string(REPLACE "/" "_" name "contra_${dir}_${kind}")
    add_executable(${name} ${sources})
    target_link_libraries(${name} PRIVATE contra_test_support)
    contra_reuse_pch(${name})
    gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST
      PROPERTIES LABELS ${label} ENVIRONMENT "CONTRA_SOURCE_DIR=${CMAKE_SOURCE_DIR}"
      DISCOVERY_TIMEOUT 60)
  endforeach()
endfunction()
