# engine_bench: end-to-end engine throughput and latency (issue 5).
# engine_channels_bench.cc: many producers of small requests, channels against the
# any-thread submit, OpenSSL and the kernel on one thread (issue 11).
add_executable(engine_bench ${CMAKE_CURRENT_LIST_DIR}/engine_bench.cc
                            ${CMAKE_CURRENT_LIST_DIR}/engine_channels_bench.cc)
target_link_libraries(engine_bench PRIVATE sectorcrypt sectorcrypt_peers benchmark::benchmark)
target_compile_options(engine_bench PRIVATE ${SECTORCRYPT_WARNINGS})
