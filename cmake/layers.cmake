# The layers follow the data: host/ (what a program touches) -> engine/ -> kernels/. An
# include may only run downward, and the build enforces it: each layer's sources compile
# against an include root of its own, made here in the build tree, that holds symbolic
# links to itself and the layers below it and nothing else. `#include "host/..."` from
# engine/ then fails with "No such file or directory" (tests/layers checks that it does).
#   kernels  the library target `sectorcrypt`'s own sources       root: kernels
#   engine   OBJECT library sectorcrypt_engine (engine/)           root: kernels, engine
#   host     OBJECT library sectorcrypt_host (the C API), and the host/ programs and
#            libraries (the CLI, nbdkit filter, LUKS2 reader): the project root
# Programs and tests that link `sectorcrypt` get the project root (its INTERFACE).
set(SECTORCRYPT_LAYER_ROOTS ${CMAKE_BINARY_DIR}/layer_roots)

function(sectorcrypt_layer_root layer)
  file(MAKE_DIRECTORY ${SECTORCRYPT_LAYER_ROOTS}/${layer})
  foreach(dir IN LISTS ARGN)
    if(NOT EXISTS ${SECTORCRYPT_LAYER_ROOTS}/${layer}/${dir})
      file(CREATE_LINK ${PROJECT_SOURCE_DIR}/${dir} ${SECTORCRYPT_LAYER_ROOTS}/${layer}/${dir}
           SYMBOLIC)
    endif()
  endforeach()
endfunction()

sectorcrypt_layer_root(kernels kernels)
sectorcrypt_layer_root(engine kernels engine)
