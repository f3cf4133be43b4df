# The layers follow the data: host/ (what a program touches) -> engine/ -> kernels/. An
# include may only run downward, and the build enforces it: each layer's sources compile
# against an include root of its own, made here in the build tree, that holds symbolic
# links to itself and the layers below it and nothing else. `#include "host/..."` from
# engine/ then fails with "No such file or directory" (tests/layers checks that it does).
#   kernels  the library target `sectorcrypt`'s own sources       root: kernels
#   engine   OBJECT library sectorcrypt_engine (engine/)           root: kernels, engine
#   host     OBJECT library sectorcrypt_host (the C API)                root: kernels,
#            engine, and host/ without host/cli (the `sectorcrypt` program sits above the
#            library: the C API must not reach into it)
#   cli etc. the host/ programs and libraries (the CLI, nbdkit filter, LUKS2 reader):
#            the project root
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

# The host root's host/ is a real folder with a link per entry of the source host/ but
# cli/. The glob reruns CMake when host/ gains or loses an entry; a link whose entry is
# gone is removed (file(REMOVE) of a link removes the link, not what it points to).
sectorcrypt_layer_root(host kernels engine)
file(MAKE_DIRECTORY ${SECTORCRYPT_LAYER_ROOTS}/host/host)
file(GLOB _sc_host_entries CONFIGURE_DEPENDS LIST_DIRECTORIES true
     RELATIVE ${PROJECT_SOURCE_DIR}/host ${PROJECT_SOURCE_DIR}/host/*)
list(REMOVE_ITEM _sc_host_entries cli)
file(GLOB _sc_host_links LIST_DIRECTORIES true
     RELATIVE ${SECTORCRYPT_LAYER_ROOTS}/host/host ${SECTORCRYPT_LAYER_ROOTS}/host/host/*)
foreach(_entry IN LISTS _sc_host_links)
  if(NOT _entry IN_LIST _sc_host_entries)
    file(REMOVE ${SECTORCRYPT_LAYER_ROOTS}/host/host/${_entry})
  endif()
endforeach()
foreach(_entry IN LISTS _sc_host_entries)
  if(NOT EXISTS ${SECTORCRYPT_LAYER_ROOTS}/host/host/${_entry})
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/host/${_entry}
         ${SECTORCRYPT_LAYER_ROOTS}/host/host/${_entry} SYMBOLIC)
  endif()
endforeach()
