// xts_gpu: CUDA AES-XTS throughput, per variant.
//
//  * device/<variant>/<aes>/<sector>/<dir>: a 1 GiB batch already in device memory, out of
//    place, timed with CUDA events around one launch (manual time) after a warm-up launch.
//  * copy/h2d, copy/d2h: 1 GiB between pinned host memory and the device, the ceiling of
//    the next line.
//  * pipeline/<variant>/...: 1 GiB host -> device -> host through pinned buffers in chunks
//    over three streams, so the upload of one chunk, the kernel on another and the
//    download of a third overlap; the target is >= 85% of min(h2d, d2h).
// Every figure is a median over repetitions. Without a usable GPU the program says why and
// exits without running anything.
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "engine/gpu_devices.h"
#include "kernels/cuda/xts_cuda.h"
#include "kernels/xts_key.h"

namespace sectorcrypt {
namespace {

using cuda::AesVariant;

constexpr std::size_t kBatchBytes = std::size_t{1} << 30;
constexpr std::size_t kChunkBytes = std::size_t{32} << 20;  // 32 chunks: short ramp
constexpr int kStreams = 3;
constexpr int kRepetitions = 5;

std::string cuda_error(const char* what, cudaError_t e) {
  return std::string(what) + ": " + cudaGetErrorString(e);
}

// Everything the benchmarks touch, allocated once: two 1 GiB device buffers, per-sector
// IV numbers and key indices for the smallest sector size, a two-key table (AES-128 at
// index 0, AES-256 at 1), pinned host buffers, streams and events.
struct Context {
  uint8_t* d_in = nullptr;
  uint8_t* d_out = nullptr;
  uint64_t* d_iv = nullptr;
  uint32_t* d_key_index[2] = {nullptr, nullptr};  // all 0 / all 1
  cuda::DeviceXtsKey* d_keys = nullptr;
  uint8_t* h_in = nullptr;
  uint8_t* h_out = nullptr;
  cudaStream_t streams[kStreams] = {};
  cudaEvent_t start = nullptr, stop = nullptr, done[kStreams] = {};
  std::string error;  // set when setup failed

  bool check(const char* what, cudaError_t e) {
    if (e != cudaSuccess && error.empty()) error = cuda_error(what, e);
    return e == cudaSuccess;
  }

  Context() {
    const std::size_t max_sectors = kBatchBytes / 512;
    if (!check("cudaMalloc in", cudaMalloc(&d_in, kBatchBytes)) ||
        !check("cudaMalloc out", cudaMalloc(&d_out, kBatchBytes)) ||
        !check("cudaMalloc iv", cudaMalloc(&d_iv, max_sectors * sizeof(uint64_t))) ||
        !check("cudaMalloc keys", cudaMalloc(&d_keys, 2 * sizeof(cuda::DeviceXtsKey))) ||
        !check("cudaHostAlloc in", cudaHostAlloc(&h_in, kBatchBytes, cudaHostAllocDefault)) ||
        !check("cudaHostAlloc out", cudaHostAlloc(&h_out, kBatchBytes, cudaHostAllocDefault))) {
      return;
    }
    std::mt19937_64 gen(42);
    for (std::size_t i = 0; i < kBatchBytes; i += 8) {
      const uint64_t v = gen();
      for (int b = 0; b < 8; ++b) h_in[i + b] = static_cast<uint8_t>(v >> (8 * b));
    }
    std::vector<uint64_t> ivs(max_sectors);
    for (std::size_t i = 0; i < max_sectors; ++i) ivs[i] = i;
    cuda::DeviceXtsKey keys[2];
    for (int k = 0; k < 2; ++k) {
      std::vector<uint8_t> raw(k == 0 ? 32 : 64);
      for (auto& b : raw) b = static_cast<uint8_t>(gen());
      XtsKey key;
      if (!XtsKey::create(raw.data(), raw.size(), &key)) {
        error = "key creation failed";
        return;
      }
      cuda::to_device_key(key, &keys[k]);
      std::vector<uint32_t> index(max_sectors, static_cast<uint32_t>(k));
      if (!check("cudaMalloc key index",
                 cudaMalloc(&d_key_index[k], max_sectors * sizeof(uint32_t))) ||
          !check("cudaMemcpy key index",
                 cudaMemcpy(d_key_index[k], index.data(), index.size() * sizeof(uint32_t),
                            cudaMemcpyHostToDevice))) {
        return;
      }
    }
    if (!check("cudaMemcpy keys",
               cudaMemcpy(d_keys, keys, sizeof(keys), cudaMemcpyHostToDevice)) ||
        !check("cudaMemcpy iv", cudaMemcpy(d_iv, ivs.data(), ivs.size() * sizeof(uint64_t),
                                           cudaMemcpyHostToDevice)) ||
        !check("cudaMemcpy in", cudaMemcpy(d_in, h_in, kBatchBytes, cudaMemcpyHostToDevice)) ||
        !check("cudaEventCreate", cudaEventCreate(&start)) ||
        !check("cudaEventCreate", cudaEventCreate(&stop))) {
      return;
    }
    for (int s = 0; s < kStreams; ++s) {
      if (!check("cudaStreamCreate",
                 cudaStreamCreateWithFlags(&streams[s], cudaStreamNonBlocking)) ||
          !check("cudaEventCreate",
                 cudaEventCreateWithFlags(&done[s], cudaEventDisableTiming))) {
        return;
      }
    }
  }

  // The benchmark process exits right after; freeing is for tidiness, errors are moot.
  ~Context() {
    for (int s = 0; s < kStreams; ++s) {
      if (done[s]) cudaEventDestroy(done[s]);
      if (streams[s]) cudaStreamDestroy(streams[s]);
    }
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
    cudaFreeHost(h_in);
    cudaFreeHost(h_out);
    cudaFree(d_in);
    cudaFree(d_out);
    cudaFree(d_iv);
    cudaFree(d_key_index[0]);
    cudaFree(d_key_index[1]);
    cudaFree(d_keys);
  }

  cuda::GpuBatch batch(const uint8_t* in, uint8_t* out, std::size_t bytes, uint32_t sector,
                       int key, Direction dir) const {
    return cuda::GpuBatch{in,   out,  bytes / sector,   sector,        dir,
                          IvMode::plain64, d_iv, d_key_index[key], d_keys};
  }
};

Context* g_ctx = nullptr;

// Seconds between start and stop once stop has completed.
bool elapsed(benchmark::State& state, double* seconds) {
  float ms = 0;
  cudaError_t e = cudaEventSynchronize(g_ctx->stop);
  if (e == cudaSuccess) e = cudaEventElapsedTime(&ms, g_ctx->start, g_ctx->stop);
  if (e != cudaSuccess) {
    state.SkipWithError(cuda_error("timing", e).c_str());
    return false;
  }
  *seconds = ms / 1e3;
  return true;
}

void set_rate(benchmark::State& state, std::size_t bytes) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(state.iterations() * bytes) / 1e9,
                                              benchmark::Counter::kIsRate);
}

void bm_device(benchmark::State& state, AesVariant v, int key, uint32_t sector, Direction dir) {
  Context& c = *g_ctx;
  const cuda::GpuBatch b = c.batch(c.d_in, c.d_out, kBatchBytes, sector, key, dir);
  cudaError_t e = cuda::launch_xts(b, v, c.streams[0]);  // warm-up
  if (e == cudaSuccess) e = cudaStreamSynchronize(c.streams[0]);
  if (e != cudaSuccess) return state.SkipWithError(cuda_error("warm-up", e).c_str());
  for (auto _ : state) {
    e = cudaEventRecord(c.start, c.streams[0]);
    if (e == cudaSuccess) e = cuda::launch_xts(b, v, c.streams[0]);
    if (e == cudaSuccess) e = cudaEventRecord(c.stop, c.streams[0]);
    if (e != cudaSuccess) {
      state.SkipWithError(cuda_error("launch", e).c_str());
      break;
    }
    double s = 0;
    if (!elapsed(state, &s)) break;
    state.SetIterationTime(s);
  }
  set_rate(state, kBatchBytes);
}

void bm_copy(benchmark::State& state, cudaMemcpyKind kind) {
  Context& c = *g_ctx;
  void* dst = kind == cudaMemcpyHostToDevice ? static_cast<void*>(c.d_out) : c.h_out;
  const void* src = kind == cudaMemcpyHostToDevice ? static_cast<const void*>(c.h_in) : c.d_in;
  for (auto _ : state) {
    cudaError_t e = cudaEventRecord(c.start, c.streams[0]);
    if (e == cudaSuccess) e = cudaMemcpyAsync(dst, src, kBatchBytes, kind, c.streams[0]);
    if (e == cudaSuccess) e = cudaEventRecord(c.stop, c.streams[0]);
    if (e != cudaSuccess) {
      state.SkipWithError(cuda_error("copy", e).c_str());
      break;
    }
    double s = 0;
    if (!elapsed(state, &s)) break;
    state.SetIterationTime(s);
  }
  set_rate(state, kBatchBytes);
}

// Chunk i goes up, through the kernel (in place in its stream's slice of d_out) and back
// down on stream i % 3; a stream's operations are ordered, different streams overlap.
cudaError_t pipeline_once(AesVariant v, int key, uint32_t sector) {
  Context& c = *g_ctx;
  cudaError_t e = cudaEventRecord(c.start, c.streams[0]);
  for (int s = 1; s < kStreams && e == cudaSuccess; ++s) {
    e = cudaStreamWaitEvent(c.streams[s], c.start, 0);
  }
  for (std::size_t off = 0, i = 0; off < kBatchBytes && e == cudaSuccess;
       off += kChunkBytes, ++i) {
    cudaStream_t st = c.streams[i % kStreams];
    uint8_t* dev = c.d_out + (i % kStreams) * kChunkBytes;
    e = cudaMemcpyAsync(dev, c.h_in + off, kChunkBytes, cudaMemcpyHostToDevice, st);
    if (e == cudaSuccess) {
      e = cuda::launch_xts(c.batch(dev, dev, kChunkBytes, sector, key, Direction::encrypt), v,
                           st);
    }
    if (e == cudaSuccess) {
      e = cudaMemcpyAsync(c.h_out + off, dev, kChunkBytes, cudaMemcpyDeviceToHost, st);
    }
  }
  for (int s = 1; s < kStreams && e == cudaSuccess; ++s) {
    e = cudaEventRecord(c.done[s], c.streams[s]);
    if (e == cudaSuccess) e = cudaStreamWaitEvent(c.streams[0], c.done[s], 0);
  }
  if (e == cudaSuccess) e = cudaEventRecord(c.stop, c.streams[0]);
  return e;
}

void bm_pipeline(benchmark::State& state, AesVariant v, int key, uint32_t sector) {
  cudaError_t e = pipeline_once(v, key, sector);  // warm-up
  if (e == cudaSuccess) e = cudaEventSynchronize(g_ctx->stop);
  if (e != cudaSuccess) return state.SkipWithError(cuda_error("warm-up", e).c_str());
  for (auto _ : state) {
    e = pipeline_once(v, key, sector);
    if (e != cudaSuccess) {
      state.SkipWithError(cuda_error("pipeline", e).c_str());
      break;
    }
    double s = 0;
    if (!elapsed(state, &s)) break;
    state.SetIterationTime(s);
  }
  set_rate(state, kBatchBytes);
}

void configure(benchmark::internal::Benchmark* b) {
  b->UseManualTime()->Unit(benchmark::kMillisecond)->Repetitions(kRepetitions)
      ->ReportAggregatesOnly(true);
}

void register_all() {
  for (AesVariant v : {AesVariant::table, AesVariant::constant_time, AesVariant::bitsliced32}) {
    for (int key : {1, 0}) {
      for (uint32_t sector : {512u, 4096u}) {
        for (Direction dir : {Direction::encrypt, Direction::decrypt}) {
          const std::string name = std::string("device/") + cuda::aes_variant_name(v) +
                                   (key ? "/aes256/" : "/aes128/") + std::to_string(sector) +
                                   (dir == Direction::encrypt ? "/enc" : "/dec");
          configure(benchmark::RegisterBenchmark(name.c_str(), bm_device, v, key, sector, dir));
        }
      }
    }
  }
  configure(benchmark::RegisterBenchmark("copy/h2d", bm_copy, cudaMemcpyHostToDevice));
  configure(benchmark::RegisterBenchmark("copy/d2h", bm_copy, cudaMemcpyDeviceToHost));
  for (AesVariant v : {AesVariant::table, AesVariant::constant_time, AesVariant::bitsliced32}) {
    for (uint32_t sector : {512u, 4096u}) {
      const std::string name = std::string("pipeline/") + cuda::aes_variant_name(v) +
                               "/aes256/" + std::to_string(sector) + "/enc";
      configure(benchmark::RegisterBenchmark(name.c_str(), bm_pipeline, v, 1, sector));
    }
  }
}

}  // namespace
}  // namespace sectorcrypt

int main(int argc, char** argv) {
  using namespace sectorcrypt;
  benchmark::Initialize(&argc, argv);
  const GpuInventory inv = discover_gpus();
  if (!inv.usable()) {
    std::fprintf(stderr, "xts_gpu: nothing to measure, no usable GPU: %s\n",
                 inv.why_none.c_str());
    return 0;
  }
  const GpuInfo& gpu = inv.gpus.front();
  if (cudaError_t e = cudaSetDevice(gpu.ordinal); e != cudaSuccess) {
    std::fprintf(stderr, "xts_gpu: %s\n", cuda_error("cudaSetDevice", e).c_str());
    return 1;
  }
  benchmark::AddCustomContext("gpu", gpu.name + " (compute " + std::to_string(gpu.compute_major) +
                                         "." + std::to_string(gpu.compute_minor) + ")");
  Context ctx;
  if (!ctx.error.empty()) {
    std::fprintf(stderr, "xts_gpu: setup failed: %s\n", ctx.error.c_str());
    return 1;
  }
  g_ctx = &ctx;
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
