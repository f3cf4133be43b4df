# The 256-bit VAES-AVX2 path (xts_vaes_avx2.*): included from kernels/cpu/CMakeLists.txt.
# Only the kernel file gets the ISA flags; the run-time check lives in a file built for the
# baseline ISA, so the library still loads and dispatches on CPUs without VAES.
include(CheckCXXCompilerFlag)

set(SECTORCRYPT_VAES_AVX2_FLAGS -mavx2 -mvaes -mvpclmulqdq -maes -mpclmul)
set(_sc_vaes_ok OFF)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  check_cxx_compiler_flag("-mavx2 -mvaes -mvpclmulqdq -maes -mpclmul" SECTORCRYPT_CXX_HAS_VAES)
  set(_sc_vaes_ok ${SECTORCRYPT_CXX_HAS_VAES})
endif()

target_sources(sectorcrypt PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/xts_vaes_avx2_detect.cc
  ${CMAKE_CURRENT_LIST_DIR}/xts_vaes_avx2.cc)
if(_sc_vaes_ok)
  set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/xts_vaes_avx2.cc
    TARGET_DIRECTORY sectorcrypt
    PROPERTIES COMPILE_OPTIONS "${SECTORCRYPT_VAES_AVX2_FLAGS}")
else()
  # Without the flags the kernel file builds as a stub; detection must then say no.
  set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/xts_vaes_avx2_detect.cc
    TARGET_DIRECTORY sectorcrypt
    PROPERTIES COMPILE_DEFINITIONS SECTORCRYPT_NO_VAES_AVX2=1)
endif()
