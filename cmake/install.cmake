# Packaging (issue 6): `cmake --install` puts in place
#   lib/libsectorcrypt.so.<soversion>  the library, shared (see below), with its SONAME
#   include/sectorcrypt.h              the C API
#   include/sectorcrypt/{engine,kernels}/*.h   the C++ engine API and what it includes
#   share/man/man3/sectorcrypt*.3      the C API's man pages
#   bin/sectorcrypt                    the command-line tool
#   lib/cmake/sectorcrypt/             find_package(sectorcrypt) -> sectorcrypt::sectorcrypt
#   lib/pkgconfig/sectorcrypt.pc       pkg-config --cflags --libs sectorcrypt
#
# Why shared: the library is C++ over Highway and (optionally) the CUDA runtime.
# As a shared object it records those as its own dependencies (DT_NEEDED), so a C program
# links with just -lsectorcrypt (no -lstdc++ -lhwy, no find_dependency for C++
# consumers either: the public headers include none of theirs), and fixes in the library
# reach programs without relinking. It is the whole static library (built for the tests
# and the tool) wrapped into one .so; the SONAME carries the major version, and for 0.x
# the minor too, since 0.x releases may change the ABI. A version script
# (libsectorcrypt.map) exports only the public C and C++ API.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(SECTORCRYPT_SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
else()
  set(SECTORCRYPT_SOVERSION ${PROJECT_VERSION_MAJOR})
endif()

file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/sectorcrypt_shared.c
  "/* libsectorcrypt.so is the static library linked whole; nothing of its own. */\n")
add_library(sectorcrypt_shared SHARED ${CMAKE_CURRENT_BINARY_DIR}/sectorcrypt_shared.c)
target_link_libraries(sectorcrypt_shared PRIVATE "$<LINK_LIBRARY:WHOLE_ARCHIVE,sectorcrypt>")
target_link_options(sectorcrypt_shared PRIVATE -Wl,--no-undefined
  -Wl,--version-script=${CMAKE_CURRENT_LIST_DIR}/libsectorcrypt.map)
set_property(TARGET sectorcrypt_shared APPEND PROPERTY
  LINK_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/libsectorcrypt.map)
target_include_directories(sectorcrypt_shared INTERFACE
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/sectorcrypt>)
target_compile_features(sectorcrypt_shared INTERFACE cxx_std_20)
set_target_properties(sectorcrypt_shared PROPERTIES
  OUTPUT_NAME sectorcrypt
  EXPORT_NAME sectorcrypt
  VERSION ${PROJECT_VERSION}
  SOVERSION ${SECTORCRYPT_SOVERSION}
  LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/shared
  # Keep non-system library paths (e.g. the CUDA runtime) in the installed RPATH.
  INSTALL_RPATH_USE_LINK_PATH TRUE)

install(TARGETS sectorcrypt_shared EXPORT sectorcryptTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
if(TARGET sectorcrypt-cli)
  set_target_properties(sectorcrypt-cli PROPERTIES INSTALL_RPATH_USE_LINK_PATH TRUE)
  install(TARGETS sectorcrypt-cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

# Public headers: the C API at the top level, the C++ engine API and its includes under
# sectorcrypt/ with their source-tree paths (so "engine/engine.h" resolves).
install(FILES ${PROJECT_SOURCE_DIR}/host/include/sectorcrypt.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_SOURCE_DIR}/engine/engine.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/sectorcrypt/engine)
install(FILES
  ${PROJECT_SOURCE_DIR}/kernels/status.h
  ${PROJECT_SOURCE_DIR}/kernels/sector_format.h
  ${PROJECT_SOURCE_DIR}/kernels/portable.h
  ${PROJECT_SOURCE_DIR}/kernels/xts_key.h
  ${PROJECT_SOURCE_DIR}/kernels/aes_key_schedule.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/sectorcrypt/kernels)

# The C API's man pages (sectorcrypt.h(3), one per call).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/host/capi/man3/
  DESTINATION ${CMAKE_INSTALL_MANDIR}/man3 FILES_MATCHING PATTERN "*.3")

# CMake package.
set(SECTORCRYPT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/sectorcrypt)
install(EXPORT sectorcryptTargets NAMESPACE sectorcrypt:: DESTINATION ${SECTORCRYPT_CMAKE_DIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/sectorcryptConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/sectorcryptConfig.cmake
  INSTALL_DESTINATION ${SECTORCRYPT_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/sectorcryptConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/sectorcryptConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/sectorcryptConfigVersion.cmake
  DESTINATION ${SECTORCRYPT_CMAKE_DIR})

# pkg-config, relocatable: the prefix is found from the .pc file's own location, so
# `cmake --install --prefix DIR` works for any DIR.
file(RELATIVE_PATH SECTORCRYPT_PC_TO_PREFIX
  /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
string(REGEX REPLACE "/$" "" SECTORCRYPT_PC_TO_PREFIX "${SECTORCRYPT_PC_TO_PREFIX}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/sectorcrypt.pc.in
  ${CMAKE_CURRENT_BINARY_DIR}/sectorcrypt.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/sectorcrypt.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
