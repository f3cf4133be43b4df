// Engine::create (sizes checked, the backend chosen, everything the data path touches
// allocated, the threads started), drain, shutdown, destruction and introspection.
#include <algorithm>
#include <thread>

#include "engine/cpu_backend.h"
#include "engine/engine_impl.h"
#include "engine/hybrid_backend.h"
#include "engine/gpu_devices.h"
#include "engine/multi_device_backend.h"
#include "engine/numa_node.h"
#ifdef SECTORCRYPT_HAVE_CUDA
#include "engine/cuda_backend.h"
#endif

namespace sectorcrypt {

using engine::Clock;
using engine::RequestRecord;
using engine::SlotState;
using engine::ns_since;
using engine::shut_down_status;

const char* backend_kind_name(BackendKind kind) {
  switch (kind) {
    case BackendKind::automatic: return "auto";
    case BackendKind::cpu: return "cpu";
    case BackendKind::cuda: return "cuda";
    case BackendKind::hybrid: return "hybrid";
  }
  return "unknown";
}

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
  if (c.gpu_ordinals.size() > kMaxGpus) {
    return Status::error(Errc::invalid_length, "gpu_ordinals lists %zu GPUs; at most %zu",
                         c.gpu_ordinals.size(), kMaxGpus);
  }
  for (std::size_t i = 0; i < c.gpu_ordinals.size(); ++i) {
    if (c.gpu_ordinals[i] < 0) {
      return Status::error(Errc::invalid_length,
                           "gpu_ordinals[%zu] = %d; list device ordinals (>= 0), or leave the "
                           "list empty and set gpu_ordinal = -1 for every usable GPU",
                           i, c.gpu_ordinals[i]);
    }
  }
  if (c.gpu_ordinals.empty() && c.gpu_ordinal < -1) {
    return Status::error(Errc::invalid_length,
                         "gpu_ordinal = %d; use a device ordinal, or -1 for every usable GPU",
                         c.gpu_ordinal);
  }
  // The backend: the GPUs asked for (engine.h, gpu_ordinals), each of them usable.
  bool use_cuda = false;
#ifdef SECTORCRYPT_HAVE_CUDA
  GpuInventory inventory;
  std::vector<const GpuInfo*> gpus;  // one per device, in the order asked for
  if (c.backend != BackendKind::cpu) {
    inventory = discover_gpus();
    std::vector<int> want = c.gpu_ordinals;
    if (want.empty() && c.gpu_ordinal >= 0) want.push_back(c.gpu_ordinal);
    if (want.empty()) {  // gpu_ordinal = -1: every usable GPU (the first kMaxGpus)
      for (const GpuInfo& g : inventory.gpus) {
        if (want.size() < kMaxGpus) want.push_back(g.ordinal);
      }
    }
    int unusable = -1;
    for (int o : want) {
      const GpuInfo* found = nullptr;
      for (const GpuInfo& g : inventory.gpus) {
        if (g.ordinal == o) found = &g;
      }
      if (found == nullptr) {
        unusable = o;
        break;
      }
      gpus.push_back(found);
    }
    if (!want.empty() && unusable < 0) {
      use_cuda = true;
      c.gpu_ordinals = want;
    } else if (c.backend == BackendKind::cuda || c.backend == BackendKind::hybrid) {
      if (!inventory.usable()) {
        return Status::error(Errc::unavailable,
                             "backend %s asked for, but no GPU is usable: %s",
                             backend_kind_name(c.backend), inventory.why_none.c_str());
      }
      return Status::error(Errc::unavailable,
                           "backend %s asked for GPU %d, which is not usable (%zu usable)",
                           backend_kind_name(c.backend), unusable, inventory.gpus.size());
    }
    if (use_cuda && gpus.size() > c.slot_count) {
      return Status::error(Errc::invalid_length,
                           "slot_count = %zu; %zu GPUs need at least one slot each (slot i "
                           "belongs to GPU i %% %zu)",
                           c.slot_count, gpus.size(), gpus.size());
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
  // DMA from the GPU's own node does not cross the socket link. One allocation holds
  // every slot, so with several GPUs it sits on the first one's node (engine/README.md).
  if (use_cuda && numa_node_count("/sys") > 1) mem.numa_node = gpus[0]->numa_node;
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
    // One CUDA backend per device, each with its own slots (engine slot i is device
    // i % N's), streams, device buffers and key table; several go under one backend.
    std::vector<std::unique_ptr<engine::Backend>> devices;
    for (std::size_t d = 0; d < gpus.size(); ++d) {
      engine::CudaBackendConfig bc;
      bc.ordinal = gpus[d]->ordinal;
      bc.slot_count = engine::multi_device_slot_count(c.slot_count, gpus.size(), d);
      bc.slot_bytes = c.slot_bytes;
      bc.key_capacity = c.key_capacity;
      bc.aes = c.gpu_aes;
      bc.gpu_name = gpus[d]->name.c_str();
      std::unique_ptr<engine::Backend> dev;
      if (Status s = engine::make_cuda_backend(bc, &dev); !s) {
        if (gpus.size() == 1) return s;
        return Status::error(s.code(), "GPU %d (device %zu of %zu): %s", bc.ordinal, d,
                             gpus.size(), s.message());
      }
      devices.push_back(std::move(dev));
    }
    impl->backend = devices.size() == 1 ? std::move(devices[0])
                                        : engine::make_multi_device_backend(std::move(devices));
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

// ---- lifecycle ----

Status Engine::drain() {
  Impl& m = *impl_;
  if (engine::in_callback_of(&m)) {
    return Status::error(Errc::unavailable, "drain() called from a completion callback");
  }
  std::unique_lock lk(m.mu);
  // Copy requests, zero-copy slots, and what channel owners handed to the workers.
  uint64_t target = m.accepted;
  for (std::size_t i = 0; i < m.cfg.channel_count; ++i) target += m.channels[i].to_workers.load();
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
