// The sectorcrypt engine: batched AES-XTS over sectors with bounded, preallocated memory.
//
// Everything the data path touches is allocated by Engine::create: N slots of B bytes of
// pinned host memory, the GPU's device buffers, streams and events, fixed-capacity rings,
// request records, the key table, the stage threads. After create returns no engine
// thread allocates heap memory; load is absorbed by backpressure (a full engine blocks
// in submit() or answers would_block from try_submit()), never by allocation.
//
// Two ways in: submit()/try_submit() from any thread, and channels (class Channel: a
// thread's own records and completion ring, batch submit, no engine-wide lock, small
// requests crypted on the submitting thread on the CPU; engine/README.md, "Channels").
//
// Data flow: three stages run by the engine's `threads` workers, all started by create
// and running until shutdown (see engine/pipeline.cc for how, and why not oneTBB):
//   admit    (serial, in order) take accepted requests in FIFO order, coalesce small
//            ones and split large ones into batches of at most one slot each
//   crypt    (parallel)         run the backend over the batch (gather into the slot
//            where it must be staged, cipher, scatter)
//   complete (serial, in order) merge statuses, deliver completions, free the slot
// A worker takes its batch through all three (on the GPU it waits for its slot's stream
// in crypt; the cuda backend gets a worker per slot).
//
// COMPLETION ORDER: completions are delivered in admission order. Requests submitted
// through submit()/try_submit() are admitted in the order they were accepted (FIFO over
// all producer threads); a request split over several slots completes once, when its
// last part is done, with the worst status of its parts. A zero-copy slot submitted with
// submit_slot() may be admitted ahead of copy requests that are still queued (it needs
// no slot, so it never waits behind them); it is then ordered by that admission.
// Callbacks are never run concurrently with each other. Channels (class Channel) have
// no engine-wide order: each channel's owner reaps its own completions, as they finish
// or, when it chose ChannelOptions::ordered, in its own submission order.
//
// FAULTS: where the data path can fail, what the caller sees (engine/README.md, "Faults"):
//   a CUDA copy or launch error, a kernel error, a crypt worker throwing: every request
//   with a part in the failed batch completes once with backend_failure, the message
//   naming the step ("GPU batch failed at H2D copy: ...", "crypt worker threw: ...");
//   its output is never reported ok (a failed batch is not scattered; a direct CPU write
//   that failed midway is still reported failed). With cpu_fallback, a batch whose parts
//   all failed and whose input is known intact (copy requests on CUDA: the caller's
//   memory is written only after success; zero-copy on CUDA: until the D2H copy was
//   enqueued; CPU: until the kernel started) is instead re-run once on the CPU kernels,
//   and completes with their status. Either way the engine stays usable.
//   A callback that throws: caught on the engine thread, counted in
//   EngineStats::callback_exceptions; the request still counts as completed once.
//   A slot released or submitted twice: invalid_buffer, nothing else changes.
//
// CALLBACKS run on an engine thread, or on a thread inside crypt_sync(), which crypts
// and completes batches itself (and, completing in order, may deliver the completions
// queued behind its own batch). A channel's callbacks run only on its owner, inside
// Channel::poll()/wait(). They must not block on the engine: no submit()
// (try_submit() is fine), no acquire_slot() (try_acquire_slot() is fine), no drain(),
// no destruction of the engine. They may call release_slot(), poll(), shutdown().
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/sector_format.h"
#include "kernels/status.h"
#include "kernels/xts_key.h"

namespace sectorcrypt {

enum class BackendKind {
  automatic,  // the GPU when discover_gpus().usable(), else the CPU
  cpu,        // cpu::xts_crypt_sectors / xts_crypt_gathered on the workers
  cuda,       // H2D -> cuda::launch_xts -> D2H per slot, on the slot's stream
  hybrid,     // both: each batch to the CPU workers or the GPU (engine/hybrid_split.h)
};
const char* backend_kind_name(BackendKind kind);  // "auto", "cpu", "cuda", "hybrid"

// The most CUDA devices one engine drives (EngineConfig::gpu_ordinals).
inline constexpr std::size_t kMaxGpus = 16;

// Which AES the CUDA kernels run (kernels/cuda/xts_cuda.h). constant_time (the default)
// has no data-dependent memory access: the bitsliced kernel with 32 blocks per thread,
// 186.8 GB/s AES-256 at 4 KiB sectors on an H100 (bench/results/xts_gpu_ct.md). table
// (shared-memory T-tables, 424 GB/s) is faster but only for trusted co-tenancy.
// fixsliced is the earlier constant-time kernel (two blocks per lane, 161.6 GB/s), kept
// to compare against.
enum class GpuAes { constant_time, table, fixsliced };

struct EngineConfig {
  BackendKind backend = BackendKind::automatic;
  unsigned threads = 0;                 // worker threads, and the most threads that crypt
                                        // at once (a crypt_sync() caller crypting its own
                                        // request counts); 0: hardware concurrency
  std::size_t slot_count = 8;           // batch slots = pipeline tokens (>= 1)
  std::size_t slot_bytes = 0;           // bytes per slot: a multiple of 4096, >= 4096;
                                        // 0: the backend's default, kCpuSlotBytes on the
                                        // CPU, kCudaSlotBytes on the GPU (a launch must
                                        // be large enough to fill it)
  std::size_t request_capacity = 0;     // accepted-but-not-finished requests; 0: 8 * slots
  std::size_t max_parts_per_batch = 0;  // requests coalesced into one slot; 0: min(B/512, 256)
  std::size_t key_capacity = 64;        // key table entries (>= 1)
  std::size_t registration_capacity = 64;  // register_memory() ranges at once (1..255)
  uint32_t flush_deadline_us = 100;     // a partly filled batch waits at most this long
  uint32_t idle_spin_us = 50;           // a worker out of work polls for more this long
                                        // before it sleeps (waking a sleeping thread costs
                                        // tens of us on a VM); 0: sleep at once, the right
                                        // choice where other busy processes share the CPUs
                                        // (a poller waits out their time slices)
  bool idle_flush = true;               // no batch in flight: send a partly filled batch at
                                        // once (coalescing only pays while the pipeline is
                                        // busy; waiting at idle is pure latency)
  bool require_locked_memory = false;   // fail create if slot memory cannot be locked
  bool cpu_fallback = false;            // a batch the backend fails (backend_failure) is
                                        // re-run once on the CPU kernels; see FAULTS
  // The CUDA devices of the cuda and hybrid backends (and of auto when it picks the GPU).
  // gpu_ordinals empty: the one device gpu_ordinal, or, with gpu_ordinal = -1, every
  // usable GPU (discover_gpus()). gpu_ordinals set (at most kMaxGpus): those devices,
  // gpu_ordinal ignored. With two or more, each device gets its own slots (engine slot i
  // is device i % N's), streams, device buffers and key table copy; add_key and
  // register_memory reach every device (engine/README.md, "Several GPUs"). An ordinal
  // may be listed twice only as a test mode: the same GPU opened as two devices, each
  // with its own resources. slot_count must be at least the number of devices.
  // auto uses the GPU(s) only when every one asked for is usable; cuda and hybrid fail
  // naming the first that is not. create() leaves the devices it opened in
  // config().gpu_ordinals.
  int gpu_ordinal = 0;
  std::vector<int> gpu_ordinals;
  // hybrid: the share of the bytes (of batches of hybrid_min_gpu_bytes and more) that
  // the GPU crypts: -1 adaptive (what each side delivers, measured as the run goes),
  // 0..100 forced (to test or pin a split). Smaller batches stay on the CPU.
  int hybrid_gpu_percent = -1;
  std::size_t hybrid_min_gpu_bytes = std::size_t{256} << 10;
  GpuAes gpu_aes = GpuAes::constant_time;
  // Channels (open_channel): how many may be open at once, and each one's request
  // records (requests accepted on it and not yet reaped by its poll). All made at create.
  std::size_t channel_count = 8;        // 0..4096
  std::size_t channel_depth = 64;       // 1..65536
  // CPU backend: a channel request of at most this many bytes is crypted on the
  // submitting thread when a crypt token is free (run to completion: handing it to a
  // worker would cost more than the crypt). 0: never; requests always go to the workers.
  std::size_t inline_max_bytes = std::size_t{64} << 10;
};

// slot_bytes = 0 resolves to these. 1 MiB keeps a CPU batch in L2-sized pieces that
// several threads share out. A GPU batch must fill the device and outlast the fixed
// costs of a launch and a stream wait: on an H100, 64 MiB requests through 8 slots of
// 16 / 32 / 64 MiB moved 44.8 / 45.2 / 47.6 GB/s from registered memory (bus 54.2) and
// 293 / - / 381 GB/s device-resident (kernel alone 422); bench/results/gpu_datapath.md.
inline constexpr std::size_t kCpuSlotBytes = std::size_t{1} << 20;
inline constexpr std::size_t kCudaSlotBytes = std::size_t{64} << 20;

// Names a key table entry. Stale handles (removed keys) are detected: a reused entry
// gets a new handle.
struct KeyHandle {
  uint64_t value = 0;
  bool valid() const { return value != 0; }
  friend bool operator==(KeyHandle a, KeyHandle b) { return a.value == b.value; }
};

// Scatter/gather lists hold at most this many segments per side (no allocation).
inline constexpr std::size_t kMaxSegments = 16;

// Where a request's buffers live.
//   host    the caller's host memory. Inside ranges given to register_memory() (every
//           source and destination segment), the cuda backend DMAs straight from and to
//           it; elsewhere it is staged through a pinned slot. The CPU backend crypts host
//           memory where it lies either way.
//   device  device memory of the cuda backend's GPU (cudaMalloc'ed, 16-byte aligned,
//           segments of whole sectors): only the kernel runs, the result is written to
//           device memory. The CPU backend refuses it (invalid_buffer).
enum class MemoryKind : uint8_t { host, device };

// Called once per request with its final status (ok, shut_down, backend_failure, ...).
// `status` is valid only during the call.
using CompletionCallback = void (*)(const Status& status, void* user_context);

// A completion callback for a binding to another language (the C API): instead of
// `callback`, the engine calls forward.call(status, forward.target, user_context), where
// `target` is the binding's caller's own function, handed back untouched. The binding
// then keeps nothing per pending request: no table that could run out before a request is
// validated, nothing that it frees while the engine still delivers completions. A request
// sets at most one of `callback` and `forward.call` (both: invalid_buffer).
struct ForwardedCallback {
  void (*call)(const Status& status, void (*target)(), void* user_context) = nullptr;
  void (*target)() = nullptr;
};

// A copy request. The iovec arrays are copied at submit; the memory they point at must
// stay valid (and the source unchanged) until the completion.
struct Request {
  KeyHandle key;
  Direction dir = Direction::encrypt;
  SectorFormat format;
  uint64_t start_sector = 0;     // 512-byte units, as a bio (see sector_format.h)
  const iovec* src = nullptr;    // 1..kMaxSegments segments; the total is whole sectors
  std::size_t src_count = 0;
  const iovec* dst = nullptr;    // dst_count == 0: in place (the result replaces src)
  std::size_t dst_count = 0;     // else the same total as src, disjoint from src
  CompletionCallback callback = nullptr;  // run on an engine thread when done (optional)
  ForwardedCallback forward;              // or this, for a binding (see above)
  void* user_context = nullptr;
  bool post_completion = false;  // also post a Completion for poll()/wait_completions()
  bool flush = false;            // send its batch at once instead of waiting to coalesce
  MemoryKind memory = MemoryKind::host;
};

// A slot lent to the caller for the zero-copy path: fill `data` in place, then
// submit_slot(); the result is written back into `data`.
struct SlotHandle {
  uint32_t index = UINT32_MAX;
  uint8_t* data = nullptr;
  std::size_t capacity = 0;  // == EngineConfig::slot_bytes
  // Which lending of the slot this handle is for. A copy kept after release_slot() is
  // refused (invalid_buffer, "stale") once the slot has been lent to someone else, so a
  // second release cannot take another owner's slot away from it.
  uint32_t generation = 0;
};

struct SlotRequest {
  KeyHandle key;
  Direction dir = Direction::encrypt;
  SectorFormat format;
  uint64_t start_sector = 0;
  std::size_t bytes = 0;         // from data[0]: whole sectors, <= capacity
  CompletionCallback callback = nullptr;
  ForwardedCallback forward;     // or this, for a binding (see ForwardedCallback)
  void* user_context = nullptr;
  bool post_completion = false;
};

// What poll() returns for requests submitted with post_completion.
struct Completion {
  Status status;
  void* user_context = nullptr;
  uint64_t bytes = 0;
  uint32_t slot = UINT32_MAX;  // zero-copy: the slot holding the result; else UINT32_MAX
};

// Fixed log2 latency histogram: bucket i counts latencies in [2^(i-1), 2^i) ns
// (bucket 0: 0 ns).
struct LatencyHistogram {
  static constexpr std::size_t kBuckets = 64;
  uint64_t buckets[kBuckets] = {};
  uint64_t count() const;
  // Upper bound (ns) of the bucket holding the q-quantile, q in [0, 1]; 0 when empty.
  uint64_t quantile_ns(double q) const;
  uint64_t p50_ns() const { return quantile_ns(0.50); }
  uint64_t p99_ns() const { return quantile_ns(0.99); }
};

// A snapshot of the engine's counters (each read atomically; the set is not one instant).
struct EngineStats {
  uint64_t bytes = 0;               // bytes completed ok
  uint64_t requests = 0;            // requests completed (any status)
  uint64_t requests_failed = 0;     // completed with a status other than ok
  uint64_t batches = 0;             // batches (slots) through the pipeline
  uint64_t caller_batches = 0;      // of those, run by a crypt_sync() caller on its own
                                    // thread (engine idle, request within one slot)
  uint64_t parts = 0;               // request parts in those batches
  uint64_t submit_waits = 0;        // submit()/acquire_slot() calls that had to block
  uint64_t submit_wait_ns = 0;      // total time they blocked
  uint64_t would_block = 0;         // try_submit()/try_acquire_slot() answered would_block
  uint64_t admit_ns = 0;            // time in each stage, summed over batches
  uint64_t crypt_ns = 0;
  uint64_t complete_ns = 0;
  bool memory_locked = false;       // slot memory is pinned (CUDA) or mlock'ed
  uint64_t backend_failures = 0;    // batches the backend failed (before any fallback)
  uint64_t cpu_fallbacks = 0;       // of those, batches re-run on the CPU (cpu_fallback)
  uint64_t callback_exceptions = 0; // completion callbacks that threw (caught)
  uint64_t registered_requests = 0; // accepted requests wholly in registered memory
  uint64_t device_requests = 0;     // accepted device-resident requests
  uint64_t gpu_batches = 0;         // batches the GPU crypted (cuda, or hybrid's GPU side)
  uint64_t gpu_bytes = 0;           // their bytes; the rest went to the CPU
  uint64_t channel_requests = 0;    // requests accepted on channels (Channel::submit)
  uint64_t inline_requests = 0;     // crypted on the submitting thread: channel requests
                                    // and crypt_sync calls (CPU, <= inline_max_bytes)
  LatencyHistogram latency;         // accept -> completion delivered, per request
};

class Engine;

// How a channel delivers its completions (Engine::open_channel).
struct ChannelOptions {
  // false (default): poll() returns each request's completion as soon as it is done.
  // true: in submission order on this channel (a finished request waits for the ones
  // submitted before it). Either way there is no order between channels.
  bool ordered = false;
  // Write the channel's eventfd (completion_fd()) whenever a completion is posted, so an
  // epoll loop can wait on it. Off: the fd is written only while wait() sleeps.
  bool completion_fd = false;
};

// A channel: one thread's private way into the engine, like an SPDK I/O channel or an
// io_uring ring. It owns `channel_depth` request records, a completion ring and an
// eventfd, all made at create; submitting takes no engine-wide lock. On the CPU backend a
// request of at most inline_max_bytes is crypted on the submitting thread when one of
// the `threads` crypt tokens is free; otherwise it goes to the workers through the
// channel's own lock-free submission ring (the workers coalesce requests from every
// channel into batches, taking the channels in turns: on the GPU, always). The engine
// mutex is taken only to wake a worker when all of them sleep, and while memory is
// registered, to match it.
//
// COMPLETIONS are reaped by the channel's owner: poll()/wait() return them, and run the
// `callback` (or `forward.call`) of requests that set one instead of returning them;
// engine threads never run a channel request's callback. post_completion is ignored (a
// request without a callback always gets a Completion). A request's record is its
// channel's until its completion has been reaped, so an owner that stops polling runs
// out of records (would_block), never into unbounded queues.
//
// THREAD SAFETY: one thread at a time per channel (its owner), for every call but
// completion_fd(); different channels from different threads at once. Callbacks run on
// the owner thread, inside poll()/wait(); they may submit() on the channel (not poll it).
class Channel {
 public:
  // Validates and accepts requests in order, reqs[0] first, and stops at the first it
  // cannot accept: *accepted (required) says how many were. Each accepted request gets
  // exactly one completion; one not accepted has none and nothing of it was written.
  // Requests crypted inline complete before submit returns (poll() to reap them).
  //
  // RETURN VALUE: ok (all `count` accepted); else the status of reqs[*accepted]:
  //   would_block     every record of the channel is taken: reap completions and retry
  //   the validation errors of Engine::submit (invalid_key, invalid_format,
  //   invalid_length, invalid_buffer), shut_down
  //   invalid_buffer  reqs or accepted null, or the channel is closed
  Status submit(const Request* reqs, std::size_t count, std::size_t* accepted);
  Status submit(const Request& req) {
    std::size_t n = 0;
    return submit(&req, 1, &n);
  }

  // Moves up to `max` finished requests' completions into out[] (ordered channels: in
  // submission order), running the callbacks of those that have one. Never waits, and
  // reaps at most what was finished on entry (a request a callback submits, even one
  // crypted inline at once, waits for the next call).
  // RETURN VALUE: how many Completions were written (callbacks run are not counted).
  std::size_t poll(Completion* out, std::size_t max);

  // As poll(), but first waits up to timeout_us until at least min(min_count, requests
  // in flight) requests are reapable (polling for idle_spin_us, then sleeping on the
  // channel's eventfd). RETURN VALUE: as poll().
  std::size_t wait(Completion* out, std::size_t max, std::size_t min_count,
                   uint64_t timeout_us);

  // The channel's eventfd (EFD_NONBLOCK | EFD_CLOEXEC): readable when completions may
  // be waiting (with ChannelOptions::completion_fd). Read it to re-arm, then poll():
  // a wake-up may find nothing new. Owned by the engine; do not close it.
  // THREAD SAFETY: any thread.
  int completion_fd() const;

  std::size_t in_flight() const;  // accepted and not yet reaped
  std::size_t depth() const;      // EngineConfig::channel_depth

 private:
  friend class Engine;
  friend struct ChannelAccess;
  Channel() = default;
  Engine* engine_ = nullptr;
  uint32_t id_ = 0;
};

class Engine {
 public:
  // Allocates everything and starts the pipeline.
  //
  // RETURN VALUE: ok and *out set; or
  //   invalid_length     a size in `config` is out of range (named in the message)
  //   unavailable        backend cuda asked for but no GPU is usable (reason included)
  //   resource_exhausted memory, locked memory (require_locked_memory: the message names
  //                      RLIMIT_MEMLOCK and its `ulimit -l` value), streams, threads
  // On error *out is untouched and nothing is leaked.
  // THREAD SAFETY: any thread.
  static Status create(const EngineConfig& config, std::unique_ptr<Engine>* out);

  // shutdown(), unregisters what is still registered, then frees everything. Not from a
  // callback.
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // ---- keys (off the data path; may take a lock and, for CUDA, copy to the device) ----

  // Validates and expands a 32- or 64-byte XTS key into a free table entry.
  //
  // RETURN VALUE: ok and *out set; invalid_key (length, equal halves: the message says
  // which); resource_exhausted (table full); backend_failure (device upload failed).
  // THREAD SAFETY: any thread, concurrently with everything.
  Status add_key(const uint8_t* key, std::size_t len, KeyOptions options, KeyHandle* out);

  // Zeroes the entry (host and device copies) and frees it for reuse.
  //
  // RETURN VALUE: ok; invalid_key (unknown or stale handle); would_block (the key is in
  // use by accepted, unfinished requests: drain() first, or retry).
  // THREAD SAFETY: any thread. A remove racing a submit with the same key may make
  // either fail (never both succeed unsafely).
  Status remove_key(KeyHandle key);

  // ---- registered memory (off the data path) ----

  // Registers [ptr, ptr + len) of host memory for DMA. A request whose every source and
  // destination segment lies inside registered ranges is DMA'd by the GPU's copy engines
  // straight from and to the caller's memory, with no CPU copy. On the cuda backend this
  // pins the pages (cudaHostRegister: about 1-2 GB/s, so register once, not per
  // request); on the CPU backend it is bookkeeping only, so one program runs on both.
  //
  // RETURN VALUE: ok; invalid_buffer (null ptr, or overlapping a registered range);
  // invalid_length (len 0); resource_exhausted (registration_capacity ranges already
  // registered); backend_failure (the driver refused to pin: the message says why).
  // THREAD SAFETY: any thread except a callback; concurrently with requests.
  Status register_memory(void* ptr, std::size_t len);

  // Unregisters the range that register_memory() started at ptr. A request holds the
  // ranges it lies in from its acceptance until its callback has returned (or its
  // completion is posted), so after ok no request is using the memory.
  //
  // RETURN VALUE: ok; invalid_buffer (no range starts at ptr); would_block (accepted,
  // unfinished requests still use the range: wait for their completions, or drain(),
  // and retry; the range stays registered).
  // THREAD SAFETY: any thread except a callback.
  Status unregister_memory(void* ptr);

  // ---- copy requests ----

  // Validates `req` synchronously, then waits for a free request record and queues it.
  //
  // RETURN VALUE: ok (accepted: exactly one completion follows); or, before anything is
  // taken and with no completion and no byte of output written:
  //   invalid_key     unknown/stale/removed handle
  //   invalid_format  sector size or IV generator
  //   invalid_length  no segments, too many (> kMaxSegments), empty segment, total not a
  //                   whole number of sectors, dst total != src total
  //   invalid_buffer  null base, dst overlapping src or itself, misaligned start sector
  //                   with iv_large_sectors; memory = device on the CPU backend, or not
  //                   device memory of the engine's GPU, or not 16-byte aligned
  //   shut_down       the engine is shutting down (also for a waiter woken by it)
  // THREAD SAFETY: any thread except a callback.
  Status submit(const Request& req);

  // As submit(), but never waits.
  //
  // RETURN VALUE: as submit(), plus would_block when no request record is free right now
  // ("full"; a valid request is never answered with invalid_* and vice versa).
  // THREAD SAFETY: any thread, including callbacks.
  Status try_submit(const Request& req);

  // ---- channels ----

  // Gives the calling thread a channel of its own (see Channel).
  //
  // RETURN VALUE: ok and *out set; resource_exhausted (all channel_count channels are
  // open: the message names EngineConfig::channel_count); invalid_buffer (out null);
  // shut_down; unavailable (called from a completion callback).
  // THREAD SAFETY: any thread except a callback.
  Status open_channel(const ChannelOptions& options, Channel** out);

  // Returns the channel to the engine for a later open_channel().
  //
  // RETURN VALUE: ok; invalid_buffer (not an open channel of this engine); would_block
  // (requests accepted on it have not been reaped yet: poll() or wait() for them, then
  // close; it stays open); unavailable (from a callback inside the channel's own poll).
  // THREAD SAFETY: the channel's owner, not from a callback.
  Status close_channel(Channel* channel);

  // ---- zero-copy ----

  // Lends a free slot: the caller fills slot->data, then calls submit_slot().
  //
  // RETURN VALUE: ok and *slot set; shut_down. try_acquire_slot: also would_block.
  // THREAD SAFETY: any thread; acquire_slot not from a callback.
  Status acquire_slot(SlotHandle* slot);
  Status try_acquire_slot(SlotHandle* slot);

  // Queues the lent slot's first req.bytes bytes for crypt in place. The slot stays lent:
  // after the completion the result is in slot.data; the caller then release_slot()s it.
  //
  // RETURN VALUE: ok (exactly one completion follows); invalid_key, invalid_format,
  // invalid_length (bytes 0, not whole sectors, > capacity), invalid_buffer (not a slot
  // lent to the caller, already submitted, or a stale handle; misaligned start),
  // shut_down. On error the slot is still lent and its data untouched.
  // THREAD SAFETY: any thread.
  Status submit_slot(const SlotHandle& slot, const SlotRequest& req);

  // Returns a lent slot to the pool (not while submitted and not yet completed).
  //
  // RETURN VALUE: ok; invalid_buffer (not lent, its request is still running, or a stale
  // handle: the slot was released and lent again since).
  // THREAD SAFETY: any thread, including callbacks.
  Status release_slot(const SlotHandle& slot);

  // ---- polled completions ----

  // Moves up to `max` posted completions into out[] in completion order, without
  // waiting. RETURN VALUE: how many. THREAD SAFETY: any thread.
  std::size_t poll(Completion* out, std::size_t max);

  // As poll(), but waits up to timeout_us for at least one. RETURN VALUE: how many (0 on
  // timeout, or when shut down with nothing left). THREAD SAFETY: any thread, not a
  // callback.
  std::size_t wait_completions(Completion* out, std::size_t max, uint64_t timeout_us);

  // ---- synchronous bulk ----

  // Encrypts/decrypts `bytes` from `in` to `out` (in == out: in place) and returns when
  // done. On the CPU backend a call of at most inline_max_bytes is crypted on the calling
  // thread when a crypt token is free (no hand-off, no queue: it does not wait behind
  // queued requests, nor they behind it). Otherwise it goes through the pipeline (split
  // over slots; several in flight), and the calling thread does not only wait: when its
  // request is next in line it crypts the request's batches itself, as one of the
  // `threads` crypting threads (engine/README.md).
  //
  // RETURN VALUE: the validation errors of submit(), or the request's final status.
  // THREAD SAFETY: any thread except a callback.
  Status crypt_sync(KeyHandle key, Direction dir, const SectorFormat& format,
                    uint64_t start_sector, const void* in, void* out, std::size_t bytes);

  // The same over file descriptors: pread()s `bytes` from in_fd at in_offset through
  // slots (zero-copy path, several in flight) and pwrite()s the result to out_fd at
  // out_offset (the same file with equal offsets works in place; other overlapping
  // ranges of one file are refused).
  //
  // RETURN VALUE: ok; the validation errors of submit_slot(); invalid_length (short
  // read: end of file before `bytes`); invalid_buffer (overlapping ranges of one file,
  // fstat failed); backend_failure naming errno for a failed pread/pwrite; shut_down.
  // On error some output may have been written.
  // THREAD SAFETY: any thread except a callback.
  Status crypt_fd(KeyHandle key, Direction dir, const SectorFormat& format,
                  uint64_t start_sector, int in_fd, off_t in_offset, int out_fd,
                  off_t out_offset, uint64_t bytes);

  // ---- lifecycle ----

  // Waits until every request accepted before the call has completed (partly filled
  // batches are sent at once rather than at their deadline).
  //
  // RETURN VALUE: ok; unavailable when called from a callback (it would wait on itself).
  // THREAD SAFETY: any thread except a callback.
  Status drain();

  // Stops admitting (later submits get shut_down, blocked submitters wake with it);
  // batches already in the pipeline complete normally; accepted requests not yet in a
  // batch complete with shut_down. Every accepted request gets exactly one completion.
  // Returns when all of that is done; idempotent. From a callback it only starts the
  // shutdown and returns.
  // THREAD SAFETY: any thread.
  void shutdown();

  // ---- introspection (any thread) ----
  BackendKind backend() const;            // cpu or cuda: what `automatic` resolved to
  const char* backend_detail() const;     // e.g. "cpu (VAES-AVX2), 4 threads"
  bool memory_locked() const;             // slot memory pinned (CUDA) or mlock'ed
  const char* memory_detail() const;      // e.g. "mlock'ed", "not locked: RLIMIT_..."
  const EngineConfig& config() const;     // with the defaults resolved
  EngineStats stats() const;

  struct Impl;

 private:
  friend class Channel;
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sectorcrypt
