// Marks code that compiles both for the host and, under nvcc, for the GPU, so that the
// CPU tests run exactly the arithmetic the CUDA kernels run.
#pragma once

#if defined(__CUDACC__)
#define SC_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define SC_HOST_DEVICE inline
#endif
