// gpu_datapath: the engine's data paths on a GPU against the bus they ride, and the same
// host's CPU engine, in one run (bench/gpu_datapath.py turns the JSON into
// bench/results/gpu_datapath.json; the copy-engine and kernel rates come from xts_gpu).
//
//   BM_EnginePath/path:P/slot_MiB:S/aes:A/slots:N   64 MiB requests, AES-256, 4 KiB sectors,
//       4 in flight, out of place, polled completions. P:
//         0 registered   source and destination inside register_memory() ranges (DMA)
//         1 slots        zero-copy slots (slot-sized requests, every slot kept busy)
//         2 copy         unregistered pageable memory, staged through pinned slots
//         3 device       device-resident (cudaMalloc), only the kernel runs
//         4 cpu          the CPU engine on every core (slot_MiB 1), for comparison
//         5 hybrid       registered, the CPU workers and the GPU together (adaptive)
//       S: slot size in MiB (0: the backend's default). A: 0 constant-time, 1 table.
//       N: slot count (0: the default).
//   BM_HostMemcpy/threads:T   memcpy between two 512 MiB buffers on T threads: what the
//       host's memory allows the copy path, which moves each byte through it three times.
//   BM_Small4K/backend:B   4 KiB requests, in place, from 16 producer threads with 32 in
//       flight each, random keys among 4 and random sectors; B: 0 cpu, 1 cuda, 2 hybrid.
//   BM_KernelOneThread     the CPU kernel alone on one thread over the same 4 KiB
//       requests: the base the many-producer figure is judged against.
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "engine/engine.h"
#include "kernels/cpu/xts_cpu.h"

namespace sectorcrypt {
namespace {

constexpr std::size_t kRequest = std::size_t{64} << 20;
constexpr int kDepth = 4;
constexpr SectorFormat kFormat{4096, IvMode::plain64, false};

// Fills with a xorshift stream: random bytes (never zeros), fast enough for a GiB.
void fill_random(uint8_t* p, std::size_t n, uint64_t seed) {
  uint64_t x = seed | 1;
  for (std::size_t i = 0; i + 8 <= n; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(p + i, &x, 8);
  }
}

// One page-aligned host arena for every case: 2 x kDepth requests (in and out).
uint8_t* host_arena() {
  static uint8_t* arena = [] {
    auto* p = static_cast<uint8_t*>(std::aligned_alloc(4096, 2 * kDepth * kRequest));
    fill_random(p, 2 * kDepth * kRequest, 7);
    return p;
  }();
  return arena;
}

std::vector<uint8_t> test_key() {
  std::vector<uint8_t> k(64);
  fill_random(k.data(), k.size(), 99);
  k[0] ^= 1;
  return k;
}

bool make_engine(benchmark::State& state, EngineConfig c, std::unique_ptr<Engine>* e,
                 KeyHandle* key) {
  if (Status s = Engine::create(c, e); !s) {
    state.SkipWithError(s.message());
    return false;
  }
  const auto k = test_key();
  if (Status s = (*e)->add_key(k.data(), k.size(), {}, key); !s) {
    state.SkipWithError(s.message());
    return false;
  }
  state.SetLabel((*e)->backend_detail());
  return true;
}

void rate(benchmark::State& state, uint64_t bytes) {
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(bytes) / 1e9,
                                              benchmark::Counter::kIsRate);
}

// Keeps kDepth requests of in[i] -> out[i] in flight for the benchmark's iterations.
void run_requests(benchmark::State& state, Engine& e, KeyHandle key, uint8_t* const* in,
                  uint8_t* const* out, std::size_t bytes, MemoryKind memory) {
  iovec src[kDepth], dst[kDepth];
  auto submit = [&](int i, uint64_t n) {
    src[i] = iovec{in[i], bytes};
    dst[i] = iovec{out[i], bytes};
    Request r;
    r.key = key;
    r.format = kFormat;
    r.start_sector = n * (bytes / 512);
    r.src = &src[i];
    r.src_count = 1;
    r.dst = &dst[i];
    r.dst_count = 1;
    r.memory = memory;
    r.post_completion = true;
    r.flush = true;
    r.user_context = reinterpret_cast<void*>(static_cast<uintptr_t>(i));
    return e.submit(r);
  };
  uint64_t n = 0;
  for (int i = 0; i < kDepth; ++i) {
    if (Status s = submit(i, n++); !s) return state.SkipWithError(s.message());
  }
  uint64_t done = 0;
  for (auto _ : state) {
    Completion c;
    if (e.wait_completions(&c, 1, 60'000'000) != 1 || !c.status.ok()) {
      return state.SkipWithError(c.status.ok() ? "no completion in 60 s" : c.status.message());
    }
    ++done;
    const int i = static_cast<int>(reinterpret_cast<uintptr_t>(c.user_context));
    if (Status s = submit(i, n++); !s) return state.SkipWithError(s.message());
  }
  (void)e.drain();
  Completion rest[kDepth];
  while (e.poll(rest, kDepth) != 0) {
  }
  rate(state, done * bytes);
}

// Every slot lent and kept submitted: the zero-copy path, each request one slot.
void run_slots(benchmark::State& state, Engine& e, KeyHandle key) {
  const std::size_t count = e.config().slot_count;
  std::vector<SlotHandle> slots(count);
  for (std::size_t i = 0; i < count; ++i) {
    if (Status s = e.acquire_slot(&slots[i]); !s) return state.SkipWithError(s.message());
    fill_random(slots[i].data, slots[i].capacity, i + 1);
  }
  uint64_t n = 0;
  auto submit = [&](std::size_t i) {
    SlotRequest r;
    r.key = key;
    r.format = kFormat;
    r.start_sector = n++ * (slots[i].capacity / 512);
    r.bytes = slots[i].capacity;
    r.post_completion = true;
    r.user_context = reinterpret_cast<void*>(static_cast<uintptr_t>(i));
    return e.submit_slot(slots[i], r);
  };
  for (std::size_t i = 0; i < count; ++i) {
    if (Status s = submit(i); !s) return state.SkipWithError(s.message());
  }
  uint64_t bytes = 0;
  for (auto _ : state) {
    Completion c;
    if (e.wait_completions(&c, 1, 60'000'000) != 1 || !c.status.ok()) {
      return state.SkipWithError(c.status.ok() ? "no completion in 60 s" : c.status.message());
    }
    bytes += c.bytes;
    if (Status s = submit(reinterpret_cast<uintptr_t>(c.user_context)); !s) {
      return state.SkipWithError(s.message());
    }
  }
  (void)e.drain();
  std::vector<Completion> rest(count);
  while (e.poll(rest.data(), rest.size()) != 0) {
  }
  for (SlotHandle& s : slots) (void)e.release_slot(s);
  rate(state, bytes);
}

void BM_EnginePath(benchmark::State& state) {
  const int path = static_cast<int>(state.range(0));
  EngineConfig c;
  c.backend = path == 4 ? BackendKind::cpu : path == 5 ? BackendKind::hybrid : BackendKind::cuda;
  c.slot_bytes = static_cast<std::size_t>(state.range(1)) << 20;
  c.gpu_aes = state.range(2) == 1 ? GpuAes::table : GpuAes::constant_time;
  if (state.range(3) != 0) c.slot_count = static_cast<std::size_t>(state.range(3));
  // Hybrid: a slot per CPU core beside the GPU's eight, so both sides can be busy.
  if (path == 5 && state.range(3) == 0) {
    c.slot_count = 8 + std::max(1u, std::thread::hardware_concurrency());
  }
  std::unique_ptr<Engine> e;
  KeyHandle key;
  if (!make_engine(state, c, &e, &key)) return;
  if (path == 1) return run_slots(state, *e, key);
  uint8_t* in[kDepth];
  uint8_t* out[kDepth];
  uint8_t* device = nullptr;
  uint8_t* arena = host_arena();
  if (path == 3) {
    if (cudaMalloc(&device, 2 * kDepth * kRequest) != cudaSuccess) {
      return state.SkipWithError("cudaMalloc of the device buffers failed");
    }
    cudaMemcpy(device, arena, 2 * kDepth * kRequest, cudaMemcpyHostToDevice);
    arena = device;
  }
  for (int i = 0; i < kDepth; ++i) {
    in[i] = arena + 2 * i * kRequest;
    out[i] = in[i] + kRequest;
  }
  if (path == 0 || path == 5) {
    if (Status s = e->register_memory(arena, 2 * kDepth * kRequest); !s) {
      return state.SkipWithError(s.message());
    }
  }
  run_requests(state, *e, key, in, out, kRequest,
               path == 3 ? MemoryKind::device : MemoryKind::host);
  if (path == 0 || path == 5) {
    (void)e->unregister_memory(arena);
    if (e->stats().registered_requests == 0) state.SkipWithError("no request was registered");
  }
  const EngineStats st = e->stats();
  if (st.bytes != 0) {
    state.counters["gpu_share"] =
        static_cast<double>(st.gpu_bytes) / static_cast<double>(st.bytes);
  }
  if (device != nullptr) cudaFree(device);
}
BENCHMARK(BM_EnginePath)
    ->ArgNames({"path", "slot_MiB", "aes", "slots"})
    // The defaults (slot_MiB 0, slots 0), then the sizes and counts they were chosen from.
    ->Args({0, 0, 1, 0})->Args({1, 0, 1, 0})->Args({2, 0, 1, 0})->Args({3, 0, 1, 0})
    ->Args({0, 16, 1, 8})->Args({0, 32, 1, 8})->Args({0, 64, 1, 8})->Args({0, 16, 1, 16})
    ->Args({1, 64, 1, 8})
    ->Args({2, 16, 1, 8})->Args({2, 16, 1, 16})->Args({2, 4, 1, 32})
    ->Args({3, 16, 1, 8})->Args({3, 64, 1, 8})
    ->Args({0, 0, 0, 0})->Args({3, 0, 0, 0})  // constant-time AES
    ->Args({4, 1, 0, 0})->Args({4, 1, 0, 32})  // the CPU engine: default, every core busy
    ->Args({5, 0, 0, 0})->Args({5, 0, 1, 0})  // hybrid, both AES
    ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.5);

void BM_HostMemcpy(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  constexpr std::size_t kBytes = std::size_t{512} << 20;
  auto* from = static_cast<uint8_t*>(std::aligned_alloc(4096, kBytes));
  auto* to = static_cast<uint8_t*>(std::aligned_alloc(4096, kBytes));
  fill_random(from, kBytes, 11);
  std::memset(to, 1, kBytes);
  uint64_t bytes = 0;
  for (auto _ : state) {
    std::vector<std::thread> t;
    const std::size_t share = kBytes / threads;
    for (int i = 0; i < threads; ++i) {
      t.emplace_back([=] { std::memcpy(to + i * share, from + i * share, share); });
    }
    for (auto& th : t) th.join();
    bytes += kBytes;
  }
  std::free(from);
  std::free(to);
  rate(state, bytes);
}
BENCHMARK(BM_HostMemcpy)->ArgName("threads")->Arg(1)->Arg(8)->Arg(16)
    ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.5);

// 4 KiB requests from many producers, each keeping kPerProducer in flight.
constexpr int kProducers = 16, kPerProducer = 32, kKeys = 4;
constexpr std::size_t kSmall = 4096;
constexpr int kRequestsPerProducer = 8192;

struct Producer {
  std::atomic<int> in_flight{0};
  std::atomic<int> failed{0};
  static void on_done(const Status& s, void* p) {
    auto* me = static_cast<Producer*>(p);
    if (!s.ok()) me->failed.fetch_add(1);
    me->in_flight.fetch_sub(1, std::memory_order_release);
  }
};

void BM_Small4K(benchmark::State& state) {
  EngineConfig c;
  const int64_t b = state.range(0);
  c.backend = b == 1 ? BackendKind::cuda : b == 2 ? BackendKind::hybrid : BackendKind::cpu;
  std::unique_ptr<Engine> e;
  KeyHandle keys[kKeys];
  if (!make_engine(state, c, &e, &keys[0])) return;
  for (int k = 1; k < kKeys; ++k) {
    auto raw = test_key();
    raw[1] ^= static_cast<uint8_t>(k);
    if (Status s = e->add_key(raw.data(), raw.size(), {}, &keys[k]); !s) {
      return state.SkipWithError(s.message());
    }
  }
  std::vector<uint8_t> buffers(std::size_t{kProducers} * kPerProducer * kSmall);
  fill_random(buffers.data(), buffers.size(), 3);
  std::vector<Producer> producers(kProducers);
  uint64_t requests = 0;
  int failed = 0;
  for (auto _ : state) {
    std::vector<std::thread> threads;
    for (int p = 0; p < kProducers; ++p) {
      threads.emplace_back([&, p] {
        Producer& me = producers[p];
        uint64_t x = 0x9e3779b97f4a7c15ull * (p + 1);
        for (int i = 0; i < kRequestsPerProducer; ++i) {
          while (me.in_flight.load(std::memory_order_acquire) >= kPerProducer) {
            std::this_thread::yield();
          }
          x ^= x << 13;
          x ^= x >> 7;
          x ^= x << 17;
          iovec v{buffers.data() + (static_cast<std::size_t>(p) * kPerProducer + i % kPerProducer) * kSmall,
                  kSmall};
          Request r;
          r.key = keys[x % kKeys];
          r.format = kFormat;
          r.start_sector = (x >> 8) % (1u << 30) * 8;
          r.src = &v;
          r.src_count = 1;
          r.callback = &Producer::on_done;
          r.user_context = &me;
          me.in_flight.fetch_add(1, std::memory_order_relaxed);
          if (!e->submit(r).ok()) me.failed.fetch_add(1);
        }
        while (me.in_flight.load(std::memory_order_acquire) != 0) std::this_thread::yield();
      });
    }
    for (auto& t : threads) t.join();
    requests += uint64_t{kProducers} * kRequestsPerProducer;
  }
  for (Producer& p : producers) failed += p.failed.load();
  if (failed != 0) return state.SkipWithError("requests failed");
  rate(state, requests * kSmall);
  state.counters["Mreq/s"] =
      benchmark::Counter(static_cast<double>(requests) / 1e6, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Small4K)->ArgName("backend")->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)
    ->UseRealTime()->MinTime(0.5);

void BM_KernelOneThread(benchmark::State& state) {
  const auto raw = test_key();
  XtsKey key;
  if (Status s = XtsKey::create(raw.data(), raw.size(), &key); !s) {
    return state.SkipWithError(s.message());
  }
  std::vector<uint8_t> buf(kPerProducer * kSmall);
  fill_random(buf.data(), buf.size(), 5);
  uint64_t n = 0;
  for (auto _ : state) {
    uint8_t* p = buf.data() + (n % kPerProducer) * kSmall;
    const Status s = cpu::xts_crypt_sectors(key, Direction::encrypt, kFormat, n * 8, p, p, kSmall);
    benchmark::DoNotOptimize(s);
    ++n;
  }
  rate(state, n * kSmall);
}
BENCHMARK(BM_KernelOneThread)->UseRealTime()->MinTime(0.5);

}  // namespace
}  // namespace sectorcrypt

BENCHMARK_MAIN();
