// The C ABI over sectorcrypt::Engine. Every entry point catches everything: no C++
// exception reaches a C caller. Per-request C callbacks travel through the engine itself
// (Request::forward), so submitting allocates and takes nothing of the wrapper's.
#include "host/include/sectorcrypt.h"

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <memory>
#include <new>

#include "engine/engine.h"

using sectorcrypt::Errc;
using sectorcrypt::Status;

namespace {

// The calling thread's last error message (static storage: no allocation).
thread_local char t_last_error[256];

int code_of(Errc e) {
  switch (e) {
    case Errc::ok: return SECTORCRYPT_OK;
    case Errc::invalid_key: return SECTORCRYPT_EINVAL_KEY;
    case Errc::invalid_format: return SECTORCRYPT_EINVAL_FORMAT;
    case Errc::invalid_length: return SECTORCRYPT_EINVAL_LENGTH;
    case Errc::invalid_buffer: return SECTORCRYPT_EINVAL_BUFFER;
    case Errc::would_block: return SECTORCRYPT_EWOULDBLOCK;
    case Errc::shut_down: return SECTORCRYPT_ESHUTDOWN;
    case Errc::backend_failure: return SECTORCRYPT_EBACKEND;
    case Errc::unavailable: return SECTORCRYPT_EUNAVAILABLE;
    case Errc::resource_exhausted: return SECTORCRYPT_ENOMEM;
    case Errc::internal: return SECTORCRYPT_EINTERNAL;
  }
  return SECTORCRYPT_EINTERNAL;
}

int fail(int code, const char* message) {
  std::snprintf(t_last_error, sizeof t_last_error, "%s", message);
  return code;
}

int result(const Status& s) {
  if (s.ok()) return SECTORCRYPT_OK;
  return fail(code_of(s.code()), s.message());
}

// Runs `body` (returning int) with every exception turned into a code.
template <typename F>
int guarded(F&& body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return fail(SECTORCRYPT_ENOMEM, "out of memory");
  } catch (const std::exception& e) {
    return fail(SECTORCRYPT_EINTERNAL, e.what());
  } catch (...) {
    return fail(SECTORCRYPT_EINTERNAL, "unknown exception");
  }
}

bool to_format(const sectorcrypt_format* in, sectorcrypt::SectorFormat* out) {
  if (in == nullptr || in->iv_mode < 0 || in->iv_mode > 2) return false;
  if (!std::all_of(std::begin(in->reserved), std::end(in->reserved), [](uint32_t v) { return v == 0; })) {
    return false;
  }
  out->sector_size = in->sector_size;
  out->iv_mode = static_cast<sectorcrypt::IvMode>(in->iv_mode);
  out->iv_large_sectors = in->iv_large_sectors != 0;
  return true;
}

bool to_direction(int d, sectorcrypt::Direction* out) {
  if (d != SECTORCRYPT_ENCRYPT && d != SECTORCRYPT_DECRYPT) return false;
  *out = d == SECTORCRYPT_ENCRYPT ? sectorcrypt::Direction::encrypt : sectorcrypt::Direction::decrypt;
  return true;
}

}  // namespace

// Holds nothing but the engine: a C callback travels through the engine itself
// (Request::forward), so there is no per-request state here that could run out before a
// request is validated, or be freed while the engine's destructor still delivers
// completions.
struct sectorcrypt_engine {
  std::unique_ptr<sectorcrypt::Engine> engine;
};

namespace {

void call_c_callback(const Status& s, void (*target)(), void* user_data) {
  reinterpret_cast<sectorcrypt_callback>(target)(code_of(s.code()), s.message(), user_data);
}

sectorcrypt::ForwardedCallback forward_to(sectorcrypt_callback cb) {
  sectorcrypt::ForwardedCallback f;
  if (cb != nullptr) {
    f.call = &call_c_callback;
    f.target = reinterpret_cast<void (*)()>(cb);
  }
  return f;
}

// Larger than any layout will be: a size member never initialised, not to be read past.
constexpr std::size_t kMaxStructSize = 4096;

// A struct the caller filled, of `size` bytes as the caller compiled it, copied into
// *local (already holding the defaults). At least the first layout (`min` bytes) must be
// there; members past what this library knows (a newer header) must be zero, since
// ignoring a setting the caller made would be worse than refusing it.
template <typename T>
int read_sized(const T* in, std::size_t size, std::size_t min, T* local, const char* what) {
  if (size < min) {
    return fail(SECTORCRYPT_EINVAL, size == 0 ? "struct size is 0: call the *_init() function first"
                                              : "struct size smaller than its first layout");
  }
  if (size > kMaxStructSize) {
    return fail(SECTORCRYPT_EINVAL, "struct size implausibly large: call the *_init() function first");
  }
  const auto* bytes = reinterpret_cast<const unsigned char*>(in);
  for (std::size_t i = sizeof(T); i < size; ++i) {
    if (bytes[i] != 0) {
      std::snprintf(t_last_error, sizeof t_last_error,
                    "%s has members this library (%s) does not know set (byte %zu of %zu)",
                    what, SECTORCRYPT_VERSION_STRING, i, size);
      return SECTORCRYPT_EINVAL;
    }
  }
  std::memcpy(local, in, std::min(size, sizeof(T)));
  local->size = sizeof(T);
  return SECTORCRYPT_OK;
}

// Writes *full into the caller's `size` bytes at out: what fits, and zeros past what this
// library knows (the members of a newer header read as 0).
template <typename T>
void write_sized(const T& full, void* out, std::size_t size) {
  std::memcpy(out, &full, std::min(size, sizeof(T)));
  if (size > sizeof(T)) std::memset(static_cast<unsigned char*>(out) + sizeof(T), 0, size - sizeof(T));
}

// The first layouts: a caller compiled against them is still served. Each ends on the
// structs' alignment, so its sizeof (tail padding included) is exactly this.
constexpr std::size_t kConfigFirstSize = offsetof(sectorcrypt_config, gpu_aes);
constexpr std::size_t kStatsFirstSize = offsetof(sectorcrypt_stats, submit_waits);
static_assert(kConfigFirstSize % alignof(sectorcrypt_config) == 0);
static_assert(kStatsFirstSize % alignof(sectorcrypt_stats) == 0);
constexpr std::size_t kRequestFirstSize = sizeof(sectorcrypt_request);
constexpr std::size_t kSlotRequestFirstSize = sizeof(sectorcrypt_slot_request);
constexpr std::size_t kCompletionFirstSize = sizeof(sectorcrypt_completion);

// Everything the engine cannot see: the C encodings of flags, direction and IV mode. The
// request itself (key, format, buffers, lengths) is validated by the engine alone, before
// it takes anything.
int convert_common(const sectorcrypt_format& fmt, int direction, sectorcrypt_callback cb,
                   unsigned flags, unsigned allowed_flags, sectorcrypt::SectorFormat* f,
                   sectorcrypt::Direction* d) {
  if ((flags & SECTORCRYPT_REQ_POLL) != 0 && cb != nullptr) {
    return fail(SECTORCRYPT_EINVAL, "a request has a callback or SECTORCRYPT_REQ_POLL, not both");
  }
  if ((flags & ~allowed_flags) != 0) return fail(SECTORCRYPT_EINVAL, "unknown request flags");
  if (!to_direction(direction, d)) return fail(SECTORCRYPT_EINVAL, "direction out of range");
  if (!to_format(&fmt, f)) {
    return fail(SECTORCRYPT_EINVAL_FORMAT, "IV mode out of range or reserved format members set");
  }
  return SECTORCRYPT_OK;
}

// The engine's Request for a C request (of in->size bytes as the caller compiled it).
int to_engine_request(const sectorcrypt_request* in, sectorcrypt::Request* q) {
  sectorcrypt_request r;
  sectorcrypt_request_init(&r);
  if (int c = read_sized(in, in->size, kRequestFirstSize, &r, "struct sectorcrypt_request"); c != 0) {
    return c;
  }
  if (int c = convert_common(r.format, r.direction, r.callback, r.flags,
                             SECTORCRYPT_REQ_POLL | SECTORCRYPT_REQ_FLUSH | SECTORCRYPT_REQ_DEVICE,
                             &q->format, &q->dir);
      c != 0) {
    return c;
  }
  q->key.value = r.key;
  q->start_sector = r.start_sector;
  q->src = r.src;
  q->src_count = r.src_count;
  q->dst = r.dst;
  q->dst_count = r.dst_count;
  q->flush = (r.flags & SECTORCRYPT_REQ_FLUSH) != 0;
  q->memory = (r.flags & SECTORCRYPT_REQ_DEVICE) != 0 ? sectorcrypt::MemoryKind::device
                                                      : sectorcrypt::MemoryKind::host;
  q->post_completion = (r.flags & SECTORCRYPT_REQ_POLL) != 0;
  q->forward = forward_to(r.callback);
  q->user_context = r.user_data;
  return SECTORCRYPT_OK;
}

int submit_impl(sectorcrypt_engine* e, const sectorcrypt_request* in, bool blocking) {
  if (e == nullptr || in == nullptr) return fail(SECTORCRYPT_EINVAL, "null engine or request");
  sectorcrypt::Request q;
  if (int c = to_engine_request(in, &q); c != 0) return c;
  return result(blocking ? e->engine->submit(q) : e->engine->try_submit(q));
}

// The C completion for an engine one, into the caller's element of elem_size bytes.
void write_completion(const sectorcrypt::Completion& c, unsigned char* at, size_t elem_size) {
  sectorcrypt_completion one{};
  one.status = code_of(c.status.code());
  one.user_data = c.user_context;
  one.bytes = c.bytes;
  one.slot = c.slot;
  std::snprintf(one.message, sizeof one.message, "%s", c.status.message());
  write_sized(one, at, elem_size);
}

// A C channel handle is the engine's Channel itself.
sectorcrypt::Channel* channel_of(sectorcrypt_channel* c) {
  return reinterpret_cast<sectorcrypt::Channel*>(c);
}

sectorcrypt::SlotHandle to_handle(const sectorcrypt_slot& s) {
  sectorcrypt::SlotHandle h;
  h.index = s.index;
  h.data = s.data;
  h.capacity = s.capacity;
  h.generation = s.generation;
  return h;
}

int acquire_impl(sectorcrypt_engine* e, sectorcrypt_slot* out, bool wait) {
  if (e == nullptr || out == nullptr) return fail(SECTORCRYPT_EINVAL, "null engine or slot");
  sectorcrypt::SlotHandle h;
  const Status s = wait ? e->engine->acquire_slot(&h) : e->engine->try_acquire_slot(&h);
  if (!s) return result(s);
  std::memset(out, 0, sizeof *out);
  out->data = h.data;
  out->capacity = h.capacity;
  out->index = h.index;
  out->generation = h.generation;
  return SECTORCRYPT_OK;
}

int slot_arg(const sectorcrypt_engine* e, const sectorcrypt_slot* slot) {
  if (e == nullptr || slot == nullptr) return fail(SECTORCRYPT_EINVAL, "null engine or slot");
  if (slot->reserved[0] != 0 || slot->reserved[1] != 0) {
    return fail(SECTORCRYPT_EINVAL, "reserved members of struct sectorcrypt_slot set");
  }
  return SECTORCRYPT_OK;
}

// The C view of an EngineConfig (the defaults, or what create resolved).
void to_c_config(const sectorcrypt::EngineConfig& c, int backend, sectorcrypt_config* out) {
  out->backend = backend;
  out->threads = c.threads;
  out->slot_count = c.slot_count;
  out->slot_bytes = c.slot_bytes;
  out->request_capacity = c.request_capacity;
  out->key_capacity = c.key_capacity;
  out->flush_deadline_us = c.flush_deadline_us;
  out->require_locked_memory = c.require_locked_memory ? 1 : 0;
  out->gpu_ordinal = c.gpu_ordinal;
  out->idle_spin_us = c.idle_spin_us;
  out->cpu_fallback = c.cpu_fallback ? 1 : 0;
  out->idle_flush = c.idle_flush ? 1 : 0;
  out->gpu_aes = c.gpu_aes == sectorcrypt::GpuAes::table ? SECTORCRYPT_GPU_AES_TABLE
                                                         : SECTORCRYPT_GPU_AES_CONSTANT_TIME;
  out->max_parts_per_batch = c.max_parts_per_batch;
  out->registration_capacity = c.registration_capacity;
  out->hybrid_gpu_percent = c.hybrid_gpu_percent;
  out->hybrid_min_gpu_bytes = c.hybrid_min_gpu_bytes;
  out->channel_count = c.channel_count;
  out->channel_depth = c.channel_depth;
  out->inline_max_bytes = c.inline_max_bytes;
  out->gpu_ordinal_count = std::min<std::size_t>(c.gpu_ordinals.size(), SECTORCRYPT_MAX_GPUS);
  for (std::size_t i = 0; i < out->gpu_ordinal_count; ++i) out->gpu_ordinals[i] = c.gpu_ordinals[i];
}
static_assert(SECTORCRYPT_MAX_GPUS == sectorcrypt::kMaxGpus);
static_assert(sizeof(sectorcrypt_config::gpu_ordinals) == SECTORCRYPT_MAX_GPUS * sizeof(int));

// Reaps into the caller's array of elem_size-byte completions, kChunk at a time:
// reap(buf, want, first) moves up to `want` completions into buf (first: the call's first
// round, the one that may wait). Stops when a round brings fewer than it asked for.
// at_least_once: one round even for max 0 (a channel's reaping runs its callbacks).
template <typename Reap>
int reap_in_chunks(sectorcrypt_completion* out, size_t max, size_t elem_size,
                   bool at_least_once, Reap reap) {
  if (elem_size < kCompletionFirstSize) {
    return fail(SECTORCRYPT_EINVAL, "completion size smaller than its first layout");
  }
  auto* base = reinterpret_cast<unsigned char*>(out);
  constexpr size_t kChunk = 32;
  sectorcrypt::Completion c[kChunk];
  size_t total = 0;
  bool first = true;
  while (total < max || (first && at_least_once)) {
    const size_t want = std::min(kChunk, max - total);
    const size_t got = reap(c, want, first);
    first = false;
    for (size_t i = 0; i < got; ++i) write_completion(c[i], base + (total + i) * elem_size, elem_size);
    total += got;
    if (got < want || want == 0) break;
  }
  return static_cast<int>(std::min<size_t>(total, 0x7fffffff));
}

}  // namespace

extern "C" {

void sectorcrypt_config_init_sized(struct sectorcrypt_config* cfg, size_t size) {
  if (cfg == nullptr) return;
  sectorcrypt_config c{};
  to_c_config(sectorcrypt::EngineConfig{}, SECTORCRYPT_BACKEND_AUTO, &c);
  write_sized(c, cfg, size);
  if (size >= sizeof cfg->size) cfg->size = size;
}

void sectorcrypt_format_init(struct sectorcrypt_format* fmt) {
  if (fmt == nullptr) return;
  std::memset(fmt, 0, sizeof *fmt);
  fmt->sector_size = 512;
  fmt->iv_mode = SECTORCRYPT_IV_PLAIN64;
}

void sectorcrypt_request_init_sized(struct sectorcrypt_request* req, size_t size) {
  if (req == nullptr) return;
  sectorcrypt_request r{};
  r.direction = SECTORCRYPT_ENCRYPT;
  sectorcrypt_format_init(&r.format);
  write_sized(r, req, size);
  if (size >= sizeof req->size) req->size = size;
}

void sectorcrypt_slot_request_init_sized(struct sectorcrypt_slot_request* req, size_t size) {
  if (req == nullptr) return;
  sectorcrypt_slot_request r{};
  r.direction = SECTORCRYPT_ENCRYPT;
  sectorcrypt_format_init(&r.format);
  write_sized(r, req, size);
  if (size >= sizeof req->size) req->size = size;
}

int sectorcrypt_create(const struct sectorcrypt_config* cfg, sectorcrypt_engine** out) {
  return guarded([&] {
    if (out == nullptr) return fail(SECTORCRYPT_EINVAL, "out is null");
    sectorcrypt_config c;
    sectorcrypt_config_init(&c);
    if (cfg != nullptr) {
      if (int rc = read_sized(cfg, cfg->size, kConfigFirstSize, &c, "struct sectorcrypt_config"); rc != 0) {
        return rc;
      }
    }
    sectorcrypt::EngineConfig ec;
    switch (c.backend) {
      case SECTORCRYPT_BACKEND_AUTO: ec.backend = sectorcrypt::BackendKind::automatic; break;
      case SECTORCRYPT_BACKEND_CPU: ec.backend = sectorcrypt::BackendKind::cpu; break;
      case SECTORCRYPT_BACKEND_CUDA: ec.backend = sectorcrypt::BackendKind::cuda; break;
      case SECTORCRYPT_BACKEND_HYBRID: ec.backend = sectorcrypt::BackendKind::hybrid; break;
      default: return fail(SECTORCRYPT_EINVAL, "backend out of range");
    }
    ec.threads = c.threads;
    ec.slot_count = c.slot_count;
    ec.slot_bytes = c.slot_bytes;
    ec.request_capacity = c.request_capacity;
    ec.key_capacity = c.key_capacity;
    ec.flush_deadline_us = c.flush_deadline_us;
    ec.require_locked_memory = c.require_locked_memory != 0;
    ec.gpu_ordinal = c.gpu_ordinal;
    ec.idle_spin_us = c.idle_spin_us;
    ec.cpu_fallback = c.cpu_fallback != 0;
    ec.idle_flush = c.idle_flush != 0;
    switch (c.gpu_aes) {
      case SECTORCRYPT_GPU_AES_CONSTANT_TIME: ec.gpu_aes = sectorcrypt::GpuAes::constant_time; break;
      case SECTORCRYPT_GPU_AES_TABLE: ec.gpu_aes = sectorcrypt::GpuAes::table; break;
      default: return fail(SECTORCRYPT_EINVAL, "gpu_aes out of range");
    }
    ec.max_parts_per_batch = c.max_parts_per_batch;
    ec.registration_capacity = c.registration_capacity;
    ec.hybrid_gpu_percent = c.hybrid_gpu_percent;
    ec.hybrid_min_gpu_bytes = c.hybrid_min_gpu_bytes;
    ec.channel_count = c.channel_count;
    ec.channel_depth = c.channel_depth;
    ec.inline_max_bytes = c.inline_max_bytes;
    if (c.gpu_ordinal_count > SECTORCRYPT_MAX_GPUS) {
      return fail(SECTORCRYPT_EINVAL_LENGTH, "gpu_ordinal_count out of range (at most 16)");
    }
    ec.gpu_ordinals.assign(c.gpu_ordinals, c.gpu_ordinals + c.gpu_ordinal_count);
    auto w = std::make_unique<sectorcrypt_engine>();
    if (Status s = sectorcrypt::Engine::create(ec, &w->engine); !s) return result(s);
    *out = w.release();
    return SECTORCRYPT_OK;
  });
}

void sectorcrypt_destroy(sectorcrypt_engine* engine) {
  if (engine == nullptr) return;
  try {
    engine->engine.reset();  // shuts down and returns once every callback has returned
  } catch (...) {
  }
  delete engine;
}

int sectorcrypt_add_key(sectorcrypt_engine* engine, const uint8_t* key, size_t len,
                        unsigned flags, sectorcrypt_key* out) {
  return guarded([&] {
    if (engine == nullptr || out == nullptr) return fail(SECTORCRYPT_EINVAL, "null engine or out");
    if (key == nullptr) return fail(SECTORCRYPT_EINVAL_KEY, "key is null");
    if ((flags & ~SECTORCRYPT_KEY_ALLOW_EQUAL_HALVES) != 0) return fail(SECTORCRYPT_EINVAL, "unknown key flags");
    sectorcrypt::KeyOptions o;
    o.allow_equal_halves = (flags & SECTORCRYPT_KEY_ALLOW_EQUAL_HALVES) != 0;
    sectorcrypt::KeyHandle h;
    if (Status s = engine->engine->add_key(key, len, o, &h); !s) return result(s);
    *out = h.value;
    return SECTORCRYPT_OK;
  });
}

int sectorcrypt_remove_key(sectorcrypt_engine* engine, sectorcrypt_key key) {
  return guarded([&] {
    if (engine == nullptr) return fail(SECTORCRYPT_EINVAL, "null engine");
    return result(engine->engine->remove_key(sectorcrypt::KeyHandle{key}));
  });
}

int sectorcrypt_submit(sectorcrypt_engine* engine, const struct sectorcrypt_request* req) {
  return guarded([&] { return submit_impl(engine, req, true); });
}

int sectorcrypt_try_submit(sectorcrypt_engine* engine, const struct sectorcrypt_request* req) {
  return guarded([&] { return submit_impl(engine, req, false); });
}

namespace {
int poll_impl(sectorcrypt_engine* e, sectorcrypt_completion* out, size_t max, size_t elem_size,
              bool wait, uint64_t timeout_us) {
  if (e == nullptr || (out == nullptr && max > 0)) return fail(SECTORCRYPT_EINVAL, "null engine or out");
  return reap_in_chunks(out, max, elem_size, false,
                        [&](sectorcrypt::Completion* c, size_t want, bool first) {
                          return (wait && first) ? e->engine->wait_completions(c, want, timeout_us)
                                                 : e->engine->poll(c, want);
                        });
}
}  // namespace

int sectorcrypt_poll_sized(sectorcrypt_engine* engine, struct sectorcrypt_completion* out,
                           size_t max, size_t elem_size) {
  return guarded([&] {
    return poll_impl(engine, out, std::min<size_t>(max, 0x7fffffff), elem_size, false, 0);
  });
}

int sectorcrypt_wait_sized(sectorcrypt_engine* engine, struct sectorcrypt_completion* out,
                           size_t max, size_t elem_size, uint64_t timeout_us) {
  return guarded([&] {
    return poll_impl(engine, out, std::min<size_t>(max, 0x7fffffff), elem_size, true, timeout_us);
  });
}

void sectorcrypt_channel_options_init_sized(struct sectorcrypt_channel_options* opts, size_t size) {
  if (opts == nullptr) return;
  sectorcrypt_channel_options o{};
  write_sized(o, opts, size);
  if (size >= sizeof opts->size) opts->size = size;
}

int sectorcrypt_channel_open(sectorcrypt_engine* engine,
                             const struct sectorcrypt_channel_options* opts,
                             sectorcrypt_channel** out) {
  return guarded([&] {
    if (engine == nullptr || out == nullptr) return fail(SECTORCRYPT_EINVAL, "null engine or out");
    sectorcrypt_channel_options o;
    sectorcrypt_channel_options_init(&o);
    if (opts != nullptr) {
      if (int rc = read_sized(opts, opts->size, sizeof(sectorcrypt_channel_options), &o,
                              "struct sectorcrypt_channel_options");
          rc != 0) {
        return rc;
      }
    }
    sectorcrypt::ChannelOptions co;
    co.ordered = o.ordered != 0;
    co.completion_fd = o.completion_fd != 0;
    sectorcrypt::Channel* ch = nullptr;
    if (Status s = engine->engine->open_channel(co, &ch); !s) return result(s);
    *out = reinterpret_cast<sectorcrypt_channel*>(ch);
    return SECTORCRYPT_OK;
  });
}

int sectorcrypt_channel_close(sectorcrypt_engine* engine, sectorcrypt_channel* channel) {
  return guarded([&] {
    if (engine == nullptr || channel == nullptr) return fail(SECTORCRYPT_EINVAL, "null engine or channel");
    return result(engine->engine->close_channel(channel_of(channel)));
  });
}

// Converted and submitted a chunk at a time on the stack (no allocation), stopping at the
// first request refused, by this layer or by the engine.
int sectorcrypt_channel_submit(sectorcrypt_channel* channel, const struct sectorcrypt_request* reqs,
                               size_t count, size_t* accepted) {
  return guarded([&] {
    if (accepted == nullptr) return fail(SECTORCRYPT_EINVAL, "accepted is null");
    *accepted = 0;
    if (channel == nullptr || (reqs == nullptr && count > 0)) {
      return fail(SECTORCRYPT_EINVAL, "null channel or requests");
    }
    if (count == 0) {  // nothing to convert; the channel still says whether it is open
      size_t none = 0;
      return result(channel_of(channel)->submit(nullptr, 0, &none));
    }
    const size_t stride = reqs[0].size;
    if (stride < kRequestFirstSize || stride > kMaxStructSize) {
      return fail(SECTORCRYPT_EINVAL, "reqs[0].size out of range: call sectorcrypt_request_init()");
    }
    const auto* base = reinterpret_cast<const unsigned char*>(reqs);
    constexpr size_t kChunk = 32;
    sectorcrypt::Request chunk[kChunk];
    while (*accepted < count) {
      size_t n = 0;
      int refused = SECTORCRYPT_OK;
      while (n < kChunk && *accepted + n < count) {
        const auto* r = reinterpret_cast<const sectorcrypt_request*>(base + (*accepted + n) * stride);
        chunk[n] = sectorcrypt::Request{};
        if ((refused = to_engine_request(r, &chunk[n])) != SECTORCRYPT_OK) break;
        ++n;
      }
      size_t took = 0;
      const Status s = channel_of(channel)->submit(chunk, n, &took);
      *accepted += took;
      if (!s) return result(s);
      if (refused != SECTORCRYPT_OK) return refused;
    }
    return SECTORCRYPT_OK;
  });
}

namespace {
int channel_reap(sectorcrypt_channel* channel, sectorcrypt_completion* out, size_t max,
                 size_t elem_size, bool wait, size_t min_count, uint64_t timeout_us) {
  if (channel == nullptr || (out == nullptr && max > 0)) {
    return fail(SECTORCRYPT_EINVAL, "null channel or out");
  }
  // Always once, even with max 0: reaping runs the callbacks.
  return reap_in_chunks(out, max, elem_size, true,
                        [&](sectorcrypt::Completion* c, size_t want, bool first) {
                          return (wait && first)
                                     ? channel_of(channel)->wait(c, want, min_count, timeout_us)
                                     : channel_of(channel)->poll(c, want);
                        });
}
}  // namespace

int sectorcrypt_channel_poll_sized(sectorcrypt_channel* channel, struct sectorcrypt_completion* out,
                                   size_t max, size_t elem_size) {
  return guarded([&] {
    return channel_reap(channel, out, std::min<size_t>(max, 0x7fffffff), elem_size, false, 0, 0);
  });
}

int sectorcrypt_channel_wait_sized(sectorcrypt_channel* channel, struct sectorcrypt_completion* out,
                                   size_t max, size_t elem_size, size_t min_count,
                                   uint64_t timeout_us) {
  return guarded([&] {
    return channel_reap(channel, out, std::min<size_t>(max, 0x7fffffff), elem_size, true,
                        min_count, timeout_us);
  });
}

int sectorcrypt_channel_fd(const sectorcrypt_channel* channel) {
  if (channel == nullptr) return fail(SECTORCRYPT_EINVAL, "null channel");
  return reinterpret_cast<const sectorcrypt::Channel*>(channel)->completion_fd();
}

int sectorcrypt_acquire_slot(sectorcrypt_engine* engine, struct sectorcrypt_slot* slot) {
  return guarded([&] { return acquire_impl(engine, slot, true); });
}

int sectorcrypt_try_acquire_slot(sectorcrypt_engine* engine, struct sectorcrypt_slot* slot) {
  return guarded([&] { return acquire_impl(engine, slot, false); });
}

int sectorcrypt_submit_slot(sectorcrypt_engine* engine, const struct sectorcrypt_slot* slot,
                            const struct sectorcrypt_slot_request* in) {
  return guarded([&] {
    if (int c = slot_arg(engine, slot); c != 0) return c;
    if (in == nullptr) return fail(SECTORCRYPT_EINVAL, "null slot request");
    sectorcrypt_slot_request r;
    sectorcrypt_slot_request_init(&r);
    if (int c = read_sized(in, in->size, kSlotRequestFirstSize, &r, "struct sectorcrypt_slot_request");
        c != 0) {
      return c;
    }
    sectorcrypt::SlotRequest q;
    if (int c = convert_common(r.format, r.direction, r.callback, r.flags, SECTORCRYPT_REQ_POLL,
                               &q.format, &q.dir);
        c != 0) {
      return c;
    }
    q.key.value = r.key;
    q.start_sector = r.start_sector;
    q.bytes = r.bytes;
    q.forward = forward_to(r.callback);
    q.user_context = r.user_data;
    q.post_completion = (r.flags & SECTORCRYPT_REQ_POLL) != 0;
    return result(engine->engine->submit_slot(to_handle(*slot), q));
  });
}

int sectorcrypt_release_slot(sectorcrypt_engine* engine, const struct sectorcrypt_slot* slot) {
  return guarded([&] {
    if (int c = slot_arg(engine, slot); c != 0) return c;
    return result(engine->engine->release_slot(to_handle(*slot)));
  });
}

int sectorcrypt_crypt(sectorcrypt_engine* engine, sectorcrypt_key key, int direction,
                      const struct sectorcrypt_format* format, uint64_t start_sector,
                      const void* in, void* out, size_t bytes) {
  return guarded([&] {
    if (engine == nullptr) return fail(SECTORCRYPT_EINVAL, "null engine");
    sectorcrypt::Direction d;
    sectorcrypt::SectorFormat f;
    if (!to_direction(direction, &d)) return fail(SECTORCRYPT_EINVAL, "direction out of range");
    if (!to_format(format, &f)) return fail(SECTORCRYPT_EINVAL_FORMAT, "format null, IV mode out of range or reserved members set");
    return result(engine->engine->crypt_sync(sectorcrypt::KeyHandle{key}, d, f, start_sector, in, out, bytes));
  });
}

int sectorcrypt_crypt_fd(sectorcrypt_engine* engine, sectorcrypt_key key, int direction,
                         const struct sectorcrypt_format* format, uint64_t start_sector,
                         int in_fd, off_t in_offset, int out_fd, off_t out_offset,
                         uint64_t bytes) {
  return guarded([&] {
    if (engine == nullptr) return fail(SECTORCRYPT_EINVAL, "null engine");
    sectorcrypt::Direction d;
    sectorcrypt::SectorFormat f;
    if (!to_direction(direction, &d)) return fail(SECTORCRYPT_EINVAL, "direction out of range");
    if (!to_format(format, &f)) return fail(SECTORCRYPT_EINVAL_FORMAT, "format null, IV mode out of range or reserved members set");
    return result(engine->engine->crypt_fd(sectorcrypt::KeyHandle{key}, d, f, start_sector, in_fd,
                                           in_offset, out_fd, out_offset, bytes));
  });
}

int sectorcrypt_register_memory(sectorcrypt_engine* engine, void* ptr, size_t len) {
  return guarded([&] {
    if (engine == nullptr) return fail(SECTORCRYPT_EINVAL, "null engine");
    return result(engine->engine->register_memory(ptr, len));
  });
}

int sectorcrypt_unregister_memory(sectorcrypt_engine* engine, void* ptr) {
  return guarded([&] {
    if (engine == nullptr) return fail(SECTORCRYPT_EINVAL, "null engine");
    return result(engine->engine->unregister_memory(ptr));
  });
}

int sectorcrypt_drain(sectorcrypt_engine* engine) {
  return guarded([&] {
    if (engine == nullptr) return fail(SECTORCRYPT_EINVAL, "null engine");
    return result(engine->engine->drain());
  });
}

int sectorcrypt_shutdown(sectorcrypt_engine* engine) {
  return guarded([&] {
    if (engine == nullptr) return fail(SECTORCRYPT_EINVAL, "null engine");
    engine->engine->shutdown();
    return SECTORCRYPT_OK;
  });
}

int sectorcrypt_get_stats_sized(const sectorcrypt_engine* engine, struct sectorcrypt_stats* out,
                                size_t size) {
  return guarded([&] {
    if (engine == nullptr || out == nullptr) return fail(SECTORCRYPT_EINVAL, "null engine or out");
    if (size < kStatsFirstSize) return fail(SECTORCRYPT_EINVAL, "stats size smaller than its first layout");
    const sectorcrypt::EngineStats s = engine->engine->stats();
    sectorcrypt_stats st{};
    st.bytes = s.bytes;
    st.requests = s.requests;
    st.requests_failed = s.requests_failed;
    st.batches = s.batches;
    st.would_block = s.would_block;
    st.latency_p50_ns = s.latency.p50_ns();
    st.latency_p99_ns = s.latency.p99_ns();
    st.submit_waits = s.submit_waits;
    st.submit_wait_ns = s.submit_wait_ns;
    st.backend_failures = s.backend_failures;
    st.cpu_fallbacks = s.cpu_fallbacks;
    st.callback_exceptions = s.callback_exceptions;
    st.memory_locked = s.memory_locked ? 1u : 0u;
    st.registered_requests = s.registered_requests;
    st.device_requests = s.device_requests;
    st.gpu_bytes = s.gpu_bytes;
    st.channel_requests = s.channel_requests;
    st.inline_requests = s.inline_requests;
    write_sized(st, out, size);
    return SECTORCRYPT_OK;
  });
}

int sectorcrypt_get_config_sized(const sectorcrypt_engine* engine, struct sectorcrypt_config* out,
                                 size_t size) {
  return guarded([&] {
    if (engine == nullptr || out == nullptr) return fail(SECTORCRYPT_EINVAL, "null engine or out");
    if (size < kConfigFirstSize) return fail(SECTORCRYPT_EINVAL, "config size smaller than its first layout");
    const sectorcrypt::BackendKind kind = engine->engine->backend();
    sectorcrypt_config c{};
    to_c_config(engine->engine->config(),
                kind == sectorcrypt::BackendKind::cuda     ? SECTORCRYPT_BACKEND_CUDA
                : kind == sectorcrypt::BackendKind::hybrid ? SECTORCRYPT_BACKEND_HYBRID
                                                           : SECTORCRYPT_BACKEND_CPU,
                &c);
    write_sized(c, out, size);
    out->size = size;
    return SECTORCRYPT_OK;
  });
}

const char* sectorcrypt_backend_detail(const sectorcrypt_engine* engine) {
  if (engine == nullptr) return "";
  try {
    return engine->engine->backend_detail();
  } catch (...) {
    return "";
  }
}

const char* sectorcrypt_strerror(int code) {
  switch (code) {
    case SECTORCRYPT_OK: return "success";
    case SECTORCRYPT_EINVAL_KEY: return "invalid key: wrong length, equal XTS halves, or unknown handle";
    case SECTORCRYPT_EINVAL_FORMAT: return "invalid format: sector size or IV generator not supported";
    case SECTORCRYPT_EINVAL_LENGTH: return "invalid length: not a whole number of sectors, or sizes differ";
    case SECTORCRYPT_EINVAL_BUFFER: return "invalid buffer: null, overlapping, or misaligned start sector";
    case SECTORCRYPT_EWOULDBLOCK: return "would block: the engine is full right now; retry later";
    case SECTORCRYPT_ESHUTDOWN: return "the engine is shut down";
    case SECTORCRYPT_EBACKEND: return "backend failure: the output is not valid";
    case SECTORCRYPT_EUNAVAILABLE: return "unavailable: the requested backend or resource does not exist here";
    case SECTORCRYPT_ENOMEM: return "resources exhausted: memory, locked memory, streams or key table";
    case SECTORCRYPT_EINTERNAL: return "internal error (a bug)";
    case SECTORCRYPT_EINVAL: return "invalid argument: null pointer or value out of range";
    default: return "unknown sectorcrypt error code";
  }
}

const char* sectorcrypt_last_error(void) { return t_last_error; }

const char* sectorcrypt_version(void) { return SECTORCRYPT_VERSION_STRING; }
int sectorcrypt_major_version(void) { return SECTORCRYPT_VERSION_MAJOR; }
int sectorcrypt_minor_version(void) { return SECTORCRYPT_VERSION_MINOR; }
int sectorcrypt_patch_version(void) { return SECTORCRYPT_VERSION_PATCH; }

int sectorcrypt_check_version(int major, int minor) {
  if (major != SECTORCRYPT_VERSION_MAJOR) return 0;
  // 0.x: every minor release may change the ABI (the SONAME carries it too).
  if (major == 0) return minor == SECTORCRYPT_VERSION_MINOR;
  return minor <= SECTORCRYPT_VERSION_MINOR;
}

}  // extern "C"
