// Engine::create and the public calls: validation, admission (with backpressure), the
// zero-copy slot calls, polling, the synchronous helpers and the lifecycle. The stages
// themselves are in pipeline.cc.
#include "engine/engine.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>

#include "engine/cpu_backend.h"
#include "engine/hybrid_backend.h"
#include "engine/engine_impl.h"
#include "engine/request_validation.h"
#include "engine/spin_wait.h"
#include "host/gpu_devices.h"
#include "host/numa_node.h"
#ifdef SECTORCRYPT_HAVE_CUDA
#include "engine/cuda_backend.h"
#endif

namespace sectorcrypt {

using engine::Clock;
using engine::RequestRecord;
using engine::SlotState;
using engine::validate_callback;
using engine::validate_device_segments;
using engine::validate_request;

const char* backend_kind_name(BackendKind kind) {
  switch (kind) {
    case BackendKind::automatic: return "auto";
    case BackendKind::cpu: return "cpu";
    case BackendKind::cuda: return "cuda";
    case BackendKind::hybrid: return "hybrid";
  }
  return "unknown";
}

namespace {

uint64_t ns_since(Clock::time_point t) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t).count());
}

Status shut_down_status() {
  return Status::error(Errc::shut_down, "the engine is shut down");
}

}  // namespace

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Engine::~Engine() {
  shutdown();
  // A range left registered would stay pinned after the engine is gone; once its owner
  // frees it, the driver would still take those addresses for pinned memory.
  impl_->registry.unregister_all([this](void* p) { impl_->backend->unregister_host(p); });
}

Status Engine::create(const EngineConfig& config, std::unique_ptr<Engine>* out) {
  if (out == nullptr) return Status::error(Errc::invalid_buffer, "create: out is null");
  EngineConfig c = config;
  if (c.threads == 0) c.threads = std::max(1u, std::thread::hardware_concurrency());
  if (c.threads > 1024) {
    return Status::error(Errc::invalid_length, "threads = %u; at most 1024", c.threads);
  }
  if (c.slot_count == 0 || c.slot_count > 65536) {
    return Status::error(Errc::invalid_length, "slot_count = %zu; use 1..65536", c.slot_count);
  }
  if (c.slot_bytes != 0 &&
      (c.slot_bytes < 4096 || c.slot_bytes % 4096 != 0 || c.slot_bytes > (std::size_t{1} << 30))) {
    return Status::error(Errc::invalid_length,
                         "slot_bytes = %zu; use a multiple of 4096 from 4096 to 1 GiB "
                         "(or 0 for the backend's default)", c.slot_bytes);
  }
  if (c.hybrid_gpu_percent < -1 || c.hybrid_gpu_percent > 100) {
    return Status::error(Errc::invalid_length, "hybrid_gpu_percent = %d; use -1 (adaptive) or 0..100",
                         c.hybrid_gpu_percent);
  }
  if (c.registration_capacity == 0 || c.registration_capacity > 255) {
    return Status::error(Errc::invalid_length, "registration_capacity = %zu; use 1..255",
                         c.registration_capacity);
  }
  if (c.key_capacity == 0 || c.key_capacity > (std::size_t{1} << 20)) {
    return Status::error(Errc::invalid_length, "key_capacity = %zu; use 1..1048576",
                         c.key_capacity);
  }
  if (c.request_capacity == 0) c.request_capacity = 8 * c.slot_count;
  if (c.request_capacity > (std::size_t{1} << 24)) {
    return Status::error(Errc::invalid_length, "request_capacity = %zu; at most 16777216",
                         c.request_capacity);
  }
  if (c.channel_count > 4096) {
    return Status::error(Errc::invalid_length, "channel_count = %zu; use 0..4096", c.channel_count);
  }
  if (c.channel_depth == 0 || c.channel_depth > 65536) {
    return Status::error(Errc::invalid_length, "channel_depth = %zu; use 1..65536",
                         c.channel_depth);
  }
  if (c.inline_max_bytes % 512 != 0 || c.inline_max_bytes > (std::size_t{16} << 20)) {
    return Status::error(Errc::invalid_length,
                         "inline_max_bytes = %zu; use a multiple of 512 up to 16 MiB (0: off)",
                         c.inline_max_bytes);
  }
  // The backend.
  bool use_cuda = false;
#ifdef SECTORCRYPT_HAVE_CUDA
  GpuInventory inventory;
  const GpuInfo* gpu = nullptr;
  if (c.backend != BackendKind::cpu) {
    inventory = discover_gpus();
    for (const GpuInfo& g : inventory.gpus) {
      if (g.ordinal == c.gpu_ordinal) gpu = &g;
    }
    if (gpu != nullptr) {
      use_cuda = true;
    } else if (c.backend == BackendKind::cuda || c.backend == BackendKind::hybrid) {
      if (!inventory.usable()) {
        return Status::error(Errc::unavailable,
                             "backend %s asked for, but no GPU is usable: %s",
                             backend_kind_name(c.backend), inventory.why_none.c_str());
      }
      return Status::error(Errc::unavailable,
                           "backend %s asked for GPU %d, which is not usable (%zu usable)",
                           backend_kind_name(c.backend), c.gpu_ordinal, inventory.gpus.size());
    }
  }
#else
  if (c.backend == BackendKind::cuda || c.backend == BackendKind::hybrid) {
    return Status::error(Errc::unavailable,
                         "backend %s asked for, but no GPU is usable: built without CUDA",
                         backend_kind_name(c.backend));
  }
#endif
  const bool hybrid = use_cuda && c.backend == BackendKind::hybrid;
  c.backend = hybrid ? BackendKind::hybrid : use_cuda ? BackendKind::cuda : BackendKind::cpu;
  if (c.slot_bytes == 0) c.slot_bytes = use_cuda ? kCudaSlotBytes : kCpuSlotBytes;
  // A GPU launch coalesces up to a slot of 4 KiB requests; the CPU gains nothing from
  // more than 256 parts a batch and pays for each in admission.
  const std::size_t max_sectors = c.slot_bytes / 512;
  if (c.max_parts_per_batch == 0) {
    c.max_parts_per_batch = std::min<std::size_t>(max_sectors, use_cuda ? 4096 : 256);
  }
  c.max_parts_per_batch = std::min(c.max_parts_per_batch, max_sectors);

  auto impl = std::make_unique<Impl>();
  impl->cfg = c;
  PinnedMemory::Options mem;
  mem.cuda = use_cuda;
  mem.require_locked = c.require_locked_memory;
#ifdef SECTORCRYPT_HAVE_CUDA
  // DMA from the GPU's own node does not cross the socket link.
  if (use_cuda && numa_node_count("/sys") > 1) mem.numa_node = gpu->numa_node;
#endif
  if (Status s = impl->slots.init(c.slot_count, c.slot_bytes, c.max_parts_per_batch, mem); !s) {
    return s;
  }
  impl->copy_records = c.request_capacity;
  impl->channel_records = c.request_capacity + c.slot_count;
  const std::size_t all_records = impl->channel_records + c.channel_count * c.channel_depth;
  impl->records = std::make_unique<RequestRecord[]>(all_records);
  impl->free_records.init(c.request_capacity);
  for (std::size_t i = 0; i < all_records; ++i) {
    impl->records[i].index = static_cast<uint32_t>(i);
    if (i < c.request_capacity) {
      impl->free_records.push(static_cast<uint32_t>(c.request_capacity - 1 - i));
    } else if (i < impl->channel_records) {
      impl->records[i].zero_copy_slot = static_cast<uint32_t>(i - c.request_capacity);
    }
  }
  impl->queued.init(all_records - c.slot_count);  // copy and channel records
  impl->ready_slots.init(c.slot_count);
  impl->cq.init(all_records);
  impl->keys.init(c.key_capacity);
  impl->registry.init(c.registration_capacity);
  impl->counters.memory_locked = impl->slots.memory().locked();

#ifdef SECTORCRYPT_HAVE_CUDA
  if (use_cuda) {
    engine::CudaBackendConfig bc;
    bc.ordinal = c.gpu_ordinal;
    bc.slot_count = c.slot_count;
    bc.slot_bytes = c.slot_bytes;
    bc.key_capacity = c.key_capacity;
    bc.aes = c.gpu_aes;
    bc.gpu_name = gpu->name.c_str();
    if (Status s = engine::make_cuda_backend(bc, &impl->backend); !s) return s;
    if (hybrid) {
      impl->backend = engine::make_hybrid_backend(std::move(impl->backend),
                                                  engine::make_cpu_backend(c.threads),
                                                  c.hybrid_gpu_percent, c.hybrid_min_gpu_bytes);
    }
  }
#endif
  if (!use_cuda) impl->backend = engine::make_cpu_backend(c.threads);
  // Hybrid always has its CPU side to fall back on when the GPU side fails.
  if (c.cpu_fallback || hybrid) impl->fallback = engine::make_cpu_backend(1, true);

  if (Status s = impl->init_channels(); !s) return s;
  impl->channel_handles.reset(new Channel[c.channel_count]);

  // Threads: `threads` workers (admit, crypt, complete). create returns once admit runs.
  if (Status s = impl->start_threads(); !s) return s;
  Impl* raw = impl.get();
  out->reset(new Engine(std::move(impl)));
  for (std::size_t i = 0; i < c.channel_count; ++i) {
    raw->channel_handles[i].engine_ = out->get();
    raw->channel_handles[i].id_ = static_cast<uint32_t>(i);
  }
  return Status();
}

// ---- keys ----

Status Engine::add_key(const uint8_t* key, std::size_t len, KeyOptions options,
                       KeyHandle* out) {
  if (out == nullptr) return Status::error(Errc::invalid_buffer, "add_key: out is null");
  auto publish = [](void* ctx, uint32_t index, const XtsKey& k) {
    return static_cast<engine::Backend*>(ctx)->publish_key(index, k);
  };
  return impl_->keys.add(key, len, options, publish, impl_->backend.get(), out);
}

Status Engine::remove_key(KeyHandle key) {
  auto clear = [](void* ctx, uint32_t index) {
    static_cast<engine::Backend*>(ctx)->clear_key(index);
  };
  return impl_->keys.remove(key, clear, impl_->backend.get());
}

// ---- registered memory ----

// The backend pins outside mu (cudaHostRegister takes milliseconds per GB), between a
// reservation that keeps other registrations off the range and the activation that lets
// requests match it.
Status Engine::register_memory(void* ptr, std::size_t len) {
  Impl& m = *impl_;
  if (engine::in_callback_of(&m)) {
    return Status::error(Errc::unavailable, "register_memory() called from a completion callback");
  }
  if (ptr == nullptr) return Status::error(Errc::invalid_buffer, "register_memory: ptr is null");
  if (len == 0) return Status::error(Errc::invalid_length, "register_memory: len is 0");
  uint32_t entry = 0;
  {
    std::lock_guard lk(m.mu);
    if (Status s = m.registry.reserve(ptr, len, &entry); !s) return s;
  }
  const Status pinned = m.backend->register_host(ptr, len);
  std::lock_guard lk(m.mu);
  if (!pinned) {
    m.registry.abandon(entry);
    return pinned;
  }
  m.registry.activate(entry);
  return Status();
}

Status Engine::unregister_memory(void* ptr) {
  Impl& m = *impl_;
  if (engine::in_callback_of(&m)) {
    return Status::error(Errc::unavailable,
                         "unregister_memory() called from a completion callback");
  }
  uint32_t entry = 0;
  std::size_t len = 0;
  {
    std::lock_guard lk(m.mu);
    if (Status s = m.registry.begin_unregister(ptr, &entry, &len); !s) return s;
  }
  m.backend->unregister_host(ptr);
  std::lock_guard lk(m.mu);
  m.registry.finish_unregister(entry);
  return Status();
}

// ---- copy requests ----

void Engine::Impl::fill_record(RequestRecord& r, const Request& req, uint32_t key_index) {
  r.key_index = key_index;
  r.key = &keys.key(key_index);
  r.dir = req.dir;
  r.format = req.format;
  r.start_sector = req.start_sector;
  r.src_count = static_cast<uint32_t>(req.src_count);
  uint64_t total = 0;
  for (std::size_t i = 0; i < req.src_count; ++i) {
    r.src[i] = req.src[i];
    total += req.src[i].iov_len;
  }
  r.in_place = req.dst_count == 0;
  if (!r.in_place) {
    r.dst_count = static_cast<uint32_t>(req.dst_count);
    for (std::size_t i = 0; i < req.dst_count; ++i) r.dst[i] = req.dst[i];
  } else {
    r.dst_count = r.src_count;
    for (std::size_t i = 0; i < req.src_count; ++i) r.dst[i] = req.src[i];
  }
  r.memory = req.memory;
  r.registered = false;
  if (r.memory == MemoryKind::device) counters.add(counters.device_requests, 1);
  r.bytes = total;
  r.callback = req.callback;
  r.forward = req.forward;
  r.user_context = req.user_context;
  r.post_completion = req.post_completion;
  r.flush = req.flush;
  r.last_part_admitted = nullptr;
  r.accepted = Clock::now();
  r.pending.store(1, std::memory_order_relaxed);
  r.status = Status();
}

void Engine::Impl::match_registered(RequestRecord& r) {
  r.registered = r.memory == MemoryKind::host &&
                 registry.acquire(r.src, r.src_count, r.dst, r.dst_count, r.src_entry,
                                  r.dst_entry);
  if (r.registered) counters.add(counters.registered_requests, 1);
}

Status Engine::Impl::validate_and_accept(const Request& req, bool blocking,
                                         engine::Batch** run_here,
                                         void (*last_part_admitted)(void*), bool* helping,
                                         engine::RequestRecord** record) {
  if (Status s = validate_request(req); !s) return s;
  if (Status s = validate_device_segments(*backend, req); !s) return s;
  uint32_t key_index = 0;
  if (Status s = keys.acquire(req.key, &key_index); !s) return s;

  std::unique_lock lk(mu);
  if (stopping) {
    keys.release(key_index);
    return shut_down_status();
  }
  if (free_records.empty()) {
    if (!blocking) {
      keys.release(key_index);
      counters.add(counters.would_block, 1);
      return Status::error(Errc::would_block,
                           "engine full: all %zu request records are in use; retry later",
                           copy_records);
    }
    const Clock::time_point t0 = Clock::now();
    ++record_waiters;
    record_cv.wait(lk, [&] { return stopping || !free_records.empty(); });
    --record_waiters;
    counters.add(counters.submit_waits, 1);
    counters.add(counters.submit_wait_ns, ns_since(t0));
    if (stopping) {
      keys.release(key_index);
      return shut_down_status();
    }
  }
  uint32_t ri = 0;
  free_records.pop(&ri);
  RequestRecord& r = records[ri];
  fill_record(r, req, key_index);
  match_registered(r);
  r.last_part_admitted = last_part_admitted;
  ++accepted;
  if (record != nullptr) *record = &r;
  if (run_here != nullptr && (*run_here = admit_on_caller(&r, helping)) != nullptr) {
    if (!queued.empty() || cursor != nullptr) wake_admit();  // the workers take the rest
    return Status();
  }
  queued.push(ri);
  wake_admit();
  return Status();
}

Status Engine::submit(const Request& req) { return impl_->validate_and_accept(req, true); }
Status Engine::try_submit(const Request& req) { return impl_->validate_and_accept(req, false); }

// ---- zero-copy ----

// Under mu: the handle is for an earlier lending of its slot (released, then lent again).
static Status stale_slot_handle(Engine::Impl& m, const SlotHandle& slot) {
  const uint32_t now = m.slots.generation(slot.index);
  if (slot.generation == now) return Status();
  return Status::error(Errc::invalid_buffer,
                       "stale slot handle: slot %u was released and lent again since "
                       "(handle generation %u, slot now at %u)",
                       slot.index, slot.generation, now);
}

static Status acquire_slot_impl(Engine::Impl& m, SlotHandle* slot, bool blocking) {
  if (slot == nullptr) return Status::error(Errc::invalid_buffer, "acquire_slot: slot is null");
  std::unique_lock lk(m.mu);
  if (m.stopping) return shut_down_status();
  if (!m.slots.any_free()) {
    if (!blocking) {
      m.counters.add(m.counters.would_block, 1);
      return Status::error(Errc::would_block, "no free slot (all %zu in use); retry later",
                           m.slots.count());
    }
    const Clock::time_point t0 = Clock::now();
    ++m.slot_waiters;
    m.slot_cv.wait(lk, [&] { return m.stopping || m.slots.any_free(); });
    --m.slot_waiters;
    m.counters.add(m.counters.submit_waits, 1);
    m.counters.add(m.counters.submit_wait_ns, ns_since(t0));
    if (m.stopping) return shut_down_status();
  }
  uint32_t s = 0;
  m.slots.take(&s);
  m.slots.state(s) = SlotState::lent;
  slot->generation = ++m.slots.generation(s);
  slot->index = s;
  slot->data = m.slots.batch(s).data;
  slot->capacity = m.slots.slot_bytes();
  return Status();
}

Status Engine::acquire_slot(SlotHandle* slot) { return acquire_slot_impl(*impl_, slot, true); }
Status Engine::try_acquire_slot(SlotHandle* slot) {
  return acquire_slot_impl(*impl_, slot, false);
}

Status Engine::submit_slot(const SlotHandle& slot, const SlotRequest& req) {
  Impl& m = *impl_;
  if (slot.index >= m.slots.count() || slot.data != m.slots.batch(slot.index).data) {
    return Status::error(Errc::invalid_buffer, "not a slot of this engine");
  }
  if (Status s = validate_callback(req.callback, req.forward); !s) return s;
  if (Status s = validate_format(req.format); !s) return s;
  if (req.bytes == 0 || req.bytes % req.format.sector_size != 0 ||
      req.bytes > m.slots.slot_bytes()) {
    return Status::error(Errc::invalid_length,
                         "slot request of %zu bytes: use whole %u-byte sectors, at most %zu",
                         req.bytes, req.format.sector_size, m.slots.slot_bytes());
  }
  IvSequence seq{};
  if (Status s = iv_sequence_for(req.format, req.start_sector, &seq); !s) return s;
  uint32_t key_index = 0;
  if (Status s = m.keys.acquire(req.key, &key_index); !s) return s;

  std::lock_guard lk(m.mu);
  Status err;
  RequestRecord& r = m.records[m.copy_records + slot.index];
  if (m.stopping) {
    err = shut_down_status();
  } else if (Status stale = stale_slot_handle(m, slot); !stale) {
    err = stale;
  } else if (m.slots.state(slot.index) != SlotState::lent) {
    err = Status::error(Errc::invalid_buffer, "slot %u is not lent to the caller %s",
                        slot.index,
                        m.slots.state(slot.index) == SlotState::lent_submitted
                            ? "(already submitted)" : "(acquire it first)");
  } else if (r.awaiting_poll) {
    err = Status::error(Errc::would_block,
                        "slot %u's previous completion has not been polled yet", slot.index);
  }
  if (!err.ok()) {
    m.keys.release(key_index);
    return err;
  }
  r.key_index = key_index;
  r.key = &m.keys.key(key_index);
  r.dir = req.dir;
  r.format = req.format;
  r.start_sector = req.start_sector;
  r.src[0] = iovec{slot.data, req.bytes};
  r.dst[0] = r.src[0];
  r.src_count = r.dst_count = 1;
  r.in_place = true;
  r.memory = MemoryKind::host;
  r.registered = false;
  r.bytes = req.bytes;
  r.callback = req.callback;
  r.forward = req.forward;
  r.user_context = req.user_context;
  r.post_completion = req.post_completion;
  r.flush = true;
  r.last_part_admitted = nullptr;
  r.accepted = Clock::now();
  r.pending.store(1);
  r.status = Status();
  m.slots.state(slot.index) = SlotState::lent_submitted;
  m.ready_slots.push(slot.index);
  ++m.accepted;
  m.wake_admit();
  return Status();
}

Status Engine::release_slot(const SlotHandle& slot) {
  Impl& m = *impl_;
  if (slot.index >= m.slots.count() || slot.data != m.slots.batch(slot.index).data) {
    return Status::error(Errc::invalid_buffer, "not a slot of this engine");
  }
  std::lock_guard lk(m.mu);
  if (Status stale = stale_slot_handle(m, slot); !stale) return stale;
  if (m.slots.state(slot.index) != SlotState::lent) {
    return Status::error(Errc::invalid_buffer, "slot %u is not lent to the caller %s",
                         slot.index,
                         m.slots.state(slot.index) == SlotState::lent_submitted
                             ? "(its request is still running)" : "");
  }
  m.slots.put(slot.index);
  m.wake_admit();
  if (m.slot_waiters != 0) m.slot_cv.notify_one();
  return Status();
}

// ---- polled completions ----

static std::size_t poll_impl(Engine::Impl& m, Completion* out, std::size_t max,
                             std::chrono::microseconds first_wait) {
  if (out == nullptr) return 0;
  std::size_t n = 0;
  engine::CompletionQueue::Entry chunk[16];
  while (n < max) {
    const std::size_t got =
        m.cq.pop(chunk, std::min<std::size_t>(16, max - n),
                 n == 0 ? first_wait : std::chrono::microseconds(0), m.cfg.idle_spin_us);
    if (got == 0) break;
    for (std::size_t i = 0; i < got; ++i) out[n++] = chunk[i].completion;
    m.free_polled_records(chunk, got);
  }
  return n;
}

std::size_t Engine::poll(Completion* out, std::size_t max) {
  return poll_impl(*impl_, out, max, std::chrono::microseconds(0));
}

std::size_t Engine::wait_completions(Completion* out, std::size_t max, uint64_t timeout_us) {
  return poll_impl(*impl_, out, max, std::chrono::microseconds(timeout_us));
}

// ---- synchronous bulk ----

namespace {

// Filled by the completion callback; notified under its mutex so the waiter cannot
// return (and free this stack object) before the notifier is done with it.
struct SyncWait {
  std::mutex mu;
  std::condition_variable cv;
  bool last_part_running = false;
  // Set under mu (so a sleeper cannot miss it) and read without it while polling.
  std::atomic<bool> posted{false};
  Status status;

  static void on_done(const Status& s, void* ctx) {
    auto* w = static_cast<SyncWait*>(ctx);
    std::lock_guard lock(w->mu);
    w->status = s;
    w->posted.store(true, std::memory_order_release);
    w->cv.notify_one();
  }
  // The request's last batch is about to run: wake now, while it runs, so the caller is
  // polling when it completes (a wake after it would add the sleeping vCPU's wake-up to
  // the call).
  static void on_last_part(void* ctx) {
    auto* w = static_cast<SyncWait*>(ctx);
    std::lock_guard lock(w->mu);
    w->last_part_running = true;
    w->cv.notify_one();
  }
  // For reuse (crypt_fd's window): back to not done.
  void reset() {
    std::lock_guard lock(mu);
    last_part_running = false;
    posted.store(false, std::memory_order_relaxed);
    status = Status();
  }
  // Polls for spin_us (engine/spin_wait.h), then sleeps until done, or until the last
  // part runs and then polls again.
  Status wait(uint32_t spin_us) {
    auto is_posted = [&] { return posted.load(std::memory_order_acquire); };
    (void)engine::spin_until(is_posted, spin_us);
    std::unique_lock lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return is_posted() || last_part_running; });
      if (is_posted()) return status;
      last_part_running = false;
      lock.unlock();
      (void)engine::spin_until(is_posted, spin_us);
      lock.lock();
    }
  }
};

}  // namespace

bool Engine::Impl::crypt_sync_inline(const Request& req, Status* result) {
  // Registered ranges keep their bookkeeping on the pipeline path; a shutting-down engine
  // answers there too.
  if (!cpu_inline || req.src[0].iov_len > cfg.inline_max_bytes || registry.any_active() ||
      stopping_now.load(std::memory_order_acquire)) {
    return false;
  }
  if (Status s = validate_request(req); !s) {
    *result = s;
    return true;
  }
  // Only while no worker waits for a token: queued work is not starved.
  if (token_waiters.load(std::memory_order_relaxed) != 0 || !try_take_token()) return false;
  uint32_t key_index = 0;
  if (Status s = keys.acquire(req.key, &key_index); !s) {
    release_token_unlocked();
    *result = s;
    return true;
  }
  RequestRecord r;
  fill_record(r, req, key_index);
  engine::Part part;
  engine::Batch b;  // one contiguous part on both sides: direct, no per-sector arrays
  b.slot = UINT32_MAX;
  b.parts = &part;
  b.capacity = r.bytes;
  crypt_inline(b, r);
  release_token_unlocked();
  counters.add(counters.inline_requests, 1);
  counters.add(counters.requests, 1);
  if (r.status.ok()) {
    counters.add(counters.bytes, r.bytes);
  } else {
    counters.add(counters.requests_failed, 1);
  }
  counters.record_latency(ns_since(r.accepted));
  *result = r.status;
  return true;
}

Status Engine::crypt_sync(KeyHandle key, Direction dir, const SectorFormat& format,
                          uint64_t start_sector, const void* in, void* out, std::size_t bytes) {
  if (engine::in_callback_of(impl_.get())) {
    return Status::error(Errc::unavailable, "crypt_sync() called from a completion callback");
  }
  iovec src{const_cast<void*>(in), bytes};
  iovec dst{out, bytes};
  Request r;
  r.key = key;
  r.dir = dir;
  r.format = format;
  r.start_sector = start_sector;
  r.src = &src;
  r.src_count = 1;
  if (in != out) {
    r.dst = &dst;
    r.dst_count = 1;
  }
  if (Status done; impl_->crypt_sync_inline(r, &done)) return done;
  SyncWait w;
  r.callback = &SyncWait::on_done;
  r.user_context = &w;
  r.flush = true;
  engine::Batch* run_here = nullptr;
  bool helping = false;
  engine::RequestRecord* mine = nullptr;
  if (Status s = impl_->validate_and_accept(r, true, &run_here, &SyncWait::on_last_part,
                                            &helping, &mine);
      !s) {
    return s;
  }
  if (run_here != nullptr) impl_->crypt_and_complete(run_here);  // no hand-off
  if (helping) {
    // Crypt this request's batches here, beside the workers, rather than wait idle.
    while (engine::Batch* b = impl_->admit_next_part_on_caller(mine, w.posted)) {
      impl_->crypt_and_complete(b);
    }
    impl_->stop_helping();
  }
  return w.wait(impl_->cfg.idle_spin_us);
}

namespace {

Status read_full(int fd, uint8_t* p, std::size_t n, off_t off) {
  while (n > 0) {
    const ssize_t got = pread(fd, p, n, off);
    if (got < 0) {
      if (errno == EINTR) continue;
      return Status::error(Errc::backend_failure, "pread at offset %lld failed: %s",
                           static_cast<long long>(off), std::strerror(errno));
    }
    if (got == 0) {
      return Status::error(Errc::invalid_length, "end of input at offset %lld (short read)",
                           static_cast<long long>(off));
    }
    p += got;
    n -= static_cast<std::size_t>(got);
    off += got;
  }
  return Status();
}

Status write_full(int fd, const uint8_t* p, std::size_t n, off_t off) {
  while (n > 0) {
    const ssize_t put = pwrite(fd, p, n, off);
    if (put < 0) {
      if (errno == EINTR) continue;
      return Status::error(Errc::backend_failure, "pwrite at offset %lld failed: %s",
                           static_cast<long long>(off), std::strerror(errno));
    }
    p += put;
    n -= static_cast<std::size_t>(put);
    off += put;
  }
  return Status();
}

}  // namespace

Status Engine::crypt_fd(KeyHandle key, Direction dir, const SectorFormat& format,
                        uint64_t start_sector, int in_fd, off_t in_offset, int out_fd,
                        off_t out_offset, uint64_t bytes) {
  if (engine::in_callback_of(impl_.get())) {
    return Status::error(Errc::unavailable, "crypt_fd() called from a completion callback");
  }
  if (Status s = validate_format(format); !s) return s;
  if (bytes == 0 || bytes % format.sector_size != 0) {
    return Status::error(Errc::invalid_length,
                         "length %llu is not a positive whole number of %u-byte sectors",
                         static_cast<unsigned long long>(bytes), format.sector_size);
  }
  // Read-ahead runs several chunks before the write-back, so one file's input and output
  // ranges must be the same (in place) or disjoint.
  struct stat in_st{}, out_st{};
  if (fstat(in_fd, &in_st) != 0 || fstat(out_fd, &out_st) != 0) {
    return Status::error(Errc::invalid_buffer, "fstat of the %s descriptor failed: %s",
                         fstat(in_fd, &in_st) != 0 ? "input" : "output", std::strerror(errno));
  }
  if (in_st.st_dev == out_st.st_dev && in_st.st_ino == out_st.st_ino && in_offset != out_offset) {
    const auto b = static_cast<off_t>(bytes);
    if (in_offset < out_offset + b && out_offset < in_offset + b) {
      return Status::error(Errc::invalid_buffer,
                           "input and output ranges of one file overlap without being the "
                           "same range (in place needs equal offsets)");
    }
  }
  // Chunks of whole sectors per slot; several in flight, written back in order.
  const std::size_t chunk_max = impl_->slots.slot_bytes() / format.sector_size * format.sector_size;
  struct Inflight {
    SlotHandle slot;
    uint64_t offset = 0;
    std::size_t len = 0;
    SyncWait wait;
  };
  constexpr std::size_t kWindow = 8;
  Inflight window[kWindow];
  const std::size_t depth = std::min<std::size_t>(kWindow, std::max<std::size_t>(1, impl_->slots.count() / 2));
  std::size_t head = 0, count = 0;
  uint64_t issued = 0;
  Status result;

  auto retire_oldest = [&]() {
    Inflight& f = window[head];
    Status s = f.wait.wait(impl_->cfg.idle_spin_us);
    if (s.ok() && result.ok()) {
      s = write_full(out_fd, f.slot.data, f.len, out_offset + static_cast<off_t>(f.offset));
    }
    if (!s.ok() && result.ok()) result = s;
    (void)release_slot(f.slot);
    head = (head + 1) % kWindow;
    --count;
  };

  while (result.ok() && issued < bytes) {
    if (count == depth) {
      retire_oldest();
      continue;
    }
    Inflight& f = window[(head + count) % kWindow];
    f.offset = issued;
    f.len = static_cast<std::size_t>(std::min<uint64_t>(chunk_max, bytes - issued));
    f.wait.reset();
    if (Status s = acquire_slot(&f.slot); !s) {
      result = s;
      break;
    }
    if (Status s = read_full(in_fd, f.slot.data, f.len, in_offset + static_cast<off_t>(issued)); !s) {
      (void)release_slot(f.slot);
      result = s;
      break;
    }
    SlotRequest sr;
    sr.key = key;
    sr.dir = dir;
    sr.format = format;
    sr.start_sector = start_sector + issued / 512;
    sr.bytes = f.len;
    sr.callback = &SyncWait::on_done;
    sr.user_context = &f.wait;
    if (Status s = submit_slot(f.slot, sr); !s) {
      (void)release_slot(f.slot);
      result = s;
      break;
    }
    ++count;
    issued += f.len;
  }
  while (count > 0) retire_oldest();
  return result;
}

// ---- lifecycle ----

Status Engine::drain() {
  Impl& m = *impl_;
  if (engine::in_callback_of(&m)) {
    return Status::error(Errc::unavailable, "drain() called from a completion callback");
  }
  std::unique_lock lk(m.mu);
  const uint64_t target = m.accepted;
  ++m.drain_waiters;
  m.wake_admit();  // send a partly filled batch now
  m.drain_cv.wait(lk, [&] { return m.delivered.load() >= target; });
  --m.drain_waiters;
  return Status();
}

void Engine::shutdown() {
  Impl& m = *impl_;
  {
    std::lock_guard lk(m.mu);
    m.stopping = true;
    m.stopping_now.store(true);
    m.work_epoch.fetch_add(1, std::memory_order_relaxed);
    m.wake_workers_to_stop();
    m.record_cv.notify_all();
    m.slot_cv.notify_all();
  }
  if (engine::in_callback_of(&m)) return;  // joining would wait on ourselves
  std::lock_guard lk(m.lifecycle_mu);
  if (m.engine_thread.joinable()) m.engine_thread.join();
}

// ---- introspection ----

BackendKind Engine::backend() const { return impl_->backend->kind(); }
const char* Engine::backend_detail() const { return impl_->backend->detail(); }
bool Engine::memory_locked() const { return impl_->slots.memory().locked(); }
const char* Engine::memory_detail() const { return impl_->slots.memory().detail(); }
const EngineConfig& Engine::config() const { return impl_->cfg; }
EngineStats Engine::stats() const {
  EngineStats s = impl_->counters.snapshot();
  for (std::size_t i = 0; i < impl_->cfg.channel_count; ++i) impl_->channels[i].counters.add_to(&s);
  return s;
}

}  // namespace sectorcrypt
