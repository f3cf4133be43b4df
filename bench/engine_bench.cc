// End-to-end engine benchmarks (Google Benchmark).
//
//   BM_Engine        throughput of crypt_sync over a 64 MiB (or, in cache, 4 MiB) buffer
//                    by backend, threads, sector size, slot count and slot size; counter
//                    vs_kernel_1t is the engine's throughput over a quick best-of-three
//                    pass of the kernel on one thread on the same data (a hint only: the
//                    goals are judged by bench/engine_goals.py on BM_KernelDirect's median)
//   BM_EngineQueued  the same, but as an asynchronous caller: every request of the buffer
//                    kept in flight with polled completions, so nothing drains between
//                    iterations (the steady state of a storage stack)
//   BM_KernelDirect  BM_Engine's data (64 MiB, or 4 MiB in cache) through
//                    cpu::xts_crypt_sectors on one thread: the goals' denominator
//   BM_KernelDirectThreads  the kernel alone on 1 and 2 threads, 2 MiB each, in cache:
//                    what the machine allows the scaling goal
//   BM_Latency4K     single 4 KiB requests at low load (one in flight): p50/p99 counters
//                    from the engine's histogram (log2 buckets: upper bounds) and from
//                    wall-clock samples
//   BM_Stream8GiB    8 GiB through a 64 MiB pool (16 x 4 MiB slots) with crypt_fd from
//                    /dev/zero to /dev/null; counter peak_rss_MiB from getrusage(ru_maxrss)
//
// Backends: arg 0 = cpu, 1 = cuda (skipped with the reason where no GPU is usable).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "engine/engine.h"
#include "kernels/cpu/xts_cpu.h"

namespace sectorcrypt {
namespace {


std::vector<uint8_t> random_bytes(std::size_t n, uint64_t seed) {
  std::vector<uint8_t> v(n);
  std::mt19937_64 g(seed);
  for (std::size_t i = 0; i + 8 <= n; i += 8) {
    const uint64_t x = g();
    std::memcpy(&v[i], &x, 8);
  }
  return v;
}

const std::vector<uint8_t>& raw_key() {
  static const std::vector<uint8_t> k = random_bytes(64, 7);
  return k;
}

struct Bench {
  std::unique_ptr<Engine> engine;
  KeyHandle key;
};

// Creates an engine or marks the benchmark skipped with the reason.
bool make(benchmark::State& state, const EngineConfig& c, Bench* out) {
  const Status s = Engine::create(c, &out->engine);
  if (!s.ok()) {
    state.SkipWithError(s.message());
    return false;
  }
  const Status k = out->engine->add_key(raw_key().data(), raw_key().size(), {}, &out->key);
  if (!k.ok()) {
    state.SkipWithError(k.message());
    return false;
  }
  state.SetLabel(out->engine->backend_detail());
  return true;
}

double kernel_direct_bytes_per_second(const SectorFormat& f, const uint8_t* in, uint8_t* out,
                                      std::size_t bytes) {
  XtsKey key;
  (void)XtsKey::create(raw_key().data(), raw_key().size(), &key);
  double best = 1e30;  // best of three passes: one pass is at the mercy of the scheduler
  for (int pass = 0; pass < 3; ++pass) {
    const auto t0 = std::chrono::steady_clock::now();
    (void)cpu::xts_crypt_sectors(key, Direction::encrypt, f, 0, in, out, bytes);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return static_cast<double>(bytes) / best;
}

// Args: backend, threads, sector size, slot count, slot KiB, buffer KiB (64 MiB streams
// from memory; 4 MiB stays in this CPU's 32 MiB L3: the "in cache" figure).
void BM_Engine(benchmark::State& state) {
  EngineConfig c;
  c.backend = state.range(0) == 1 ? BackendKind::cuda : BackendKind::cpu;
  c.threads = static_cast<unsigned>(state.range(1));
  const auto ss = static_cast<uint32_t>(state.range(2));
  c.slot_count = static_cast<std::size_t>(state.range(3));
  c.slot_bytes = static_cast<std::size_t>(state.range(4)) << 10;
  Bench b;
  if (!make(state, c, &b)) return;
  const SectorFormat f{ss, IvMode::plain64, false};
  const std::size_t bytes = static_cast<std::size_t>(state.range(5)) << 10;
  const auto in = random_bytes(bytes, 1);
  std::vector<uint8_t> out(bytes);
  const double direct = kernel_direct_bytes_per_second(f, in.data(), out.data(), bytes);
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    const Status s = b.engine->crypt_sync(b.key, Direction::encrypt, f, 0, in.data(),
                                          out.data(), bytes);
    if (!s.ok()) {
      state.SkipWithError(s.message());
      return;
    }
    benchmark::DoNotOptimize(out.data());
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(bytes));
  const double engine_bps = static_cast<double>(state.iterations()) * bytes / secs;
  state.counters["vs_kernel_1t"] = engine_bps / direct;
  const EngineStats st = b.engine->stats();
  state.counters["batches"] = static_cast<double>(st.batches);
  state.counters["on_caller"] =
      st.batches == 0 ? 0.0 : static_cast<double>(st.caller_batches) / static_cast<double>(st.batches);
  state.counters["submit_waits"] = static_cast<double>(st.submit_waits);
  // Stage time per iteration, summed over workers: where the engine's time goes.
  const double per_iter_us = 1e-3 / static_cast<double>(state.iterations());
  state.counters["crypt_us"] = static_cast<double>(st.crypt_ns) * per_iter_us;
  state.counters["complete_us"] = static_cast<double>(st.complete_ns) * per_iter_us;
  state.counters["admit_us"] = static_cast<double>(st.admit_ns) * per_iter_us;
}

void engine_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"backend", "threads", "sector", "slots", "slot_KiB", "buf_KiB"});
  const int stream = 64 << 10, cached = 4 << 10;
  for (int backend : {0, 1}) {
    for (int threads : {1, 2, 4, 8}) {
      for (int ss : {512, 4096}) b->Args({backend, threads, ss, 16, 1024, stream});
      b->Args({backend, threads, 4096, 16, 256, cached});
    }
    for (int slots : {2, 4, 16, 64}) b->Args({backend, 4, 4096, slots, 1024, stream});
    for (int kib : {64, 256, 4096}) b->Args({backend, 4, 4096, 16, kib, stream});
  }

  b->Unit(benchmark::kMillisecond)->UseRealTime();
}
BENCHMARK(BM_Engine)->Apply(engine_args);

// Args: backend, threads, request KiB, buffer KiB. The steady state of an asynchronous
// caller: the buffer is cut into requests of `request KiB`, all kept in flight with
// polled completions (each request is resubmitted as soon as its completion is polled),
// so the pipeline never drains between iterations as it does for crypt_sync. One
// iteration = every request of the buffer completed once.
void BM_EngineQueued(benchmark::State& state) {
  EngineConfig c;
  c.backend = state.range(0) == 1 ? BackendKind::cuda : BackendKind::cpu;
  c.threads = static_cast<unsigned>(state.range(1));
  const std::size_t req = static_cast<std::size_t>(state.range(2)) << 10;
  const std::size_t bytes = static_cast<std::size_t>(state.range(3)) << 10;
  const std::size_t n = bytes / req;
  c.slot_count = 16;
  c.slot_bytes = std::max<std::size_t>(req, 256u << 10);  // small requests coalesce
  c.request_capacity = n;
  Bench b;
  if (!make(state, c, &b)) return;
  const SectorFormat f{4096, IvMode::plain64, false};
  const auto in = random_bytes(bytes, 1);
  std::vector<uint8_t> out(bytes);
  const double direct = kernel_direct_bytes_per_second(f, in.data(), out.data(), bytes);
  std::vector<iovec> src(n), dst(n);
  auto submit = [&](std::size_t i) {
    src[i] = {const_cast<uint8_t*>(in.data()) + i * req, req};
    dst[i] = {out.data() + i * req, req};
    Request r;
    r.key = b.key;
    r.format = f;
    r.start_sector = i * req / 512;
    r.src = &src[i];
    r.src_count = 1;
    r.dst = &dst[i];
    r.dst_count = 1;
    r.post_completion = true;
    r.user_context = reinterpret_cast<void*>(i);
    return b.engine->submit(r);
  };
  for (std::size_t i = 0; i < n; ++i) {
    if (Status s = submit(i); !s) {
      state.SkipWithError(s.message());
      return;
    }
  }
  Completion done[64];
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    std::size_t completed = 0;
    while (completed < n) {
      const std::size_t got = b.engine->wait_completions(done, 64, 1'000'000);
      for (std::size_t k = 0; k < got; ++k) {
        if (!done[k].status.ok()) {
          state.SkipWithError(done[k].status.message());
          return;
        }
        (void)submit(reinterpret_cast<std::size_t>(done[k].user_context));
      }
      completed += got;
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  (void)b.engine->drain();
  while (b.engine->poll(done, 64) != 0) {
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(bytes));
  state.counters["vs_kernel_1t"] =
      static_cast<double>(state.iterations()) * static_cast<double>(bytes) / secs / direct;
}
BENCHMARK(BM_EngineQueued)
    ->ArgNames({"backend", "threads", "req_KiB", "buf_KiB"})
    ->Args({0, 1, 256, 4 << 10})
    ->Args({0, 2, 256, 4 << 10})
    ->Args({0, 2, 64, 4 << 10})
    ->Args({0, 2, 4, 4 << 10})
    ->Args({1, 2, 256, 4 << 10})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// Args: sector size, buffer KiB: the one-thread kernel figure for BM_Engine's buffers
// (64 MiB from memory, 4 MiB in cache), measured as a benchmark of its own so that its
// median over repetitions can be set against the engine's (bench/engine_goals.py).
void BM_KernelDirect(benchmark::State& state) {
  const SectorFormat f{static_cast<uint32_t>(state.range(0)), IvMode::plain64, false};
  const std::size_t bytes = static_cast<std::size_t>(state.range(1)) << 10;
  XtsKey key;
  (void)XtsKey::create(raw_key().data(), raw_key().size(), &key);
  const auto in = random_bytes(bytes, 1);
  std::vector<uint8_t> out(bytes);
  for (auto _ : state) {
    (void)cpu::xts_crypt_sectors(key, Direction::encrypt, f, 0, in.data(), out.data(), bytes);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(bytes));
  state.SetLabel(cpu::selected_implementation());
}
BENCHMARK(BM_KernelDirect)
    ->ArgNames({"sector", "buf_KiB"})
    ->Args({512, 64 << 10})
    ->Args({4096, 64 << 10})
    ->Args({4096, 4 << 10})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The machine's ceiling for the scaling goal: each benchmark thread runs the kernel
// directly on its own 2 MiB (in cache) with no engine at all; bytes are summed over the
// threads. Two threads reaching well under 2x the one-thread figure means the vCPUs share
// an AES unit or a memory path, and the engine cannot do better than that.
void BM_KernelDirectThreads(benchmark::State& state) {
  const SectorFormat f{4096, IvMode::plain64, false};
  XtsKey key;
  (void)XtsKey::create(raw_key().data(), raw_key().size(), &key);
  const std::size_t bytes = 2u << 20;
  const auto in = random_bytes(bytes, 1 + static_cast<uint64_t>(state.thread_index()));
  std::vector<uint8_t> out(bytes);
  for (auto _ : state) {
    (void)cpu::xts_crypt_sectors(key, Direction::encrypt, f, 0, in.data(), out.data(), bytes);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(bytes));
}
BENCHMARK(BM_KernelDirectThreads)->Threads(1)->Threads(2)->Unit(benchmark::kMicrosecond)->UseRealTime();

// Args: backend. One 4 KiB request at a time, flushed at once.
void BM_Latency4K(benchmark::State& state) {
  EngineConfig c;
  c.backend = state.range(0) == 1 ? BackendKind::cuda : BackendKind::cpu;
  c.threads = 2;
  c.slot_count = 4;
  c.slot_bytes = 1u << 20;
  Bench b;
  if (!make(state, c, &b)) return;
  const SectorFormat f{4096, IvMode::plain64, false};
  auto buf = random_bytes(4096, 3);
  std::vector<double> samples;
  samples.reserve(1 << 20);
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    const Status s = b.engine->crypt_sync(b.key, Direction::encrypt, f, 8, buf.data(), buf.data(), 4096);
    samples.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    if (!s.ok()) {
      state.SkipWithError(s.message());
      return;
    }
  }
  std::sort(samples.begin(), samples.end());
  auto pick = [&](double q) { return samples[std::min(samples.size() - 1, static_cast<std::size_t>(q * samples.size()))]; };
  const EngineStats st = b.engine->stats();
  state.counters["p50_us"] = pick(0.50);
  state.counters["p99_us"] = pick(0.99);
  state.counters["hist_p50_us_le"] = static_cast<double>(st.latency.p50_ns()) / 1000.0;
  state.counters["hist_p99_us_le"] = static_cast<double>(st.latency.p99_ns()) / 1000.0;
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 4096);
}
BENCHMARK(BM_Latency4K)->ArgName("backend")->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();

// Args: backend. 8 GiB streamed through a 64 MiB pool; memory stays bounded.
void BM_Stream8GiB(benchmark::State& state) {
  EngineConfig c;
  c.backend = state.range(0) == 1 ? BackendKind::cuda : BackendKind::cpu;
  c.slot_count = 16;
  c.slot_bytes = 4u << 20;  // 64 MiB of slots
  Bench b;
  if (!make(state, c, &b)) return;
  // From /dev/zero to /dev/null through the slots (crypt_fd): the caller holds no data
  // of its own, so peak RSS is the process plus the pool plus whatever the engine adds.
  const int in = open("/dev/zero", O_RDONLY | O_CLOEXEC);
  const int out = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (in < 0 || out < 0) {
    state.SkipWithError("cannot open /dev/zero or /dev/null");
    if (in >= 0) close(in);
    if (out >= 0) close(out);
    return;
  }
  const SectorFormat f{4096, IvMode::plain64, false};
  const uint64_t total = 8ull << 30;
  for (auto _ : state) {
    const Status s = b.engine->crypt_fd(b.key, Direction::encrypt, f, 0, in, 0, out, 0, total);
    if (!s.ok()) {
      state.SkipWithError(s.message());
      break;
    }
  }
  close(in);
  close(out);
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  state.counters["peak_rss_MiB"] = static_cast<double>(ru.ru_maxrss) / 1024.0;
  state.counters["pool_MiB"] = static_cast<double>(c.slot_count * c.slot_bytes) / (1 << 20);
  state.counters["memory_locked"] = b.engine->memory_locked() ? 1 : 0;
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(total));
}
BENCHMARK(BM_Stream8GiB)->ArgName("backend")->Arg(0)->Arg(1)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

}  // namespace
}  // namespace sectorcrypt

BENCHMARK_MAIN();
