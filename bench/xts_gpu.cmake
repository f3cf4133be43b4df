# xts_gpu: CUDA AES-XTS throughput, device-resident and host -> device -> host (issue 4).
# Included by bench/CMakeLists.txt only when CUDA is enabled.
add_executable(xts_gpu ${CMAKE_CURRENT_LIST_DIR}/xts_gpu.cu)
target_link_libraries(xts_gpu PRIVATE sectorcrypt CUDA::cudart benchmark::benchmark)
target_compile_options(xts_gpu PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>)
