# engine_bench: end-to-end engine throughput and latency (issue 5).
add_executable(engine_bench ${CMAKE_CURRENT_LIST_DIR}/engine_bench.cc)
target_link_libraries(engine_bench PRIVATE sectorcrypt benchmark::benchmark)
target_compile_options(engine_bench PRIVATE ${SECTORCRYPT_WARNINGS})
