// The synchronous calls: crypt_sync (inline on the caller when small, else through the
// pipeline with the caller helping) and crypt_fd (pread, crypt in lent slots, pwrite).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "engine/engine_impl.h"
#include "engine/request_validation.h"
#include "engine/spin_wait.h"

namespace sectorcrypt {

using engine::Clock;
using engine::RequestRecord;
using engine::SlotState;
using engine::ns_since;
using engine::shut_down_status;
using engine::validate_request;

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
  // A holder keeps a token for about as long as one small crypt, so a caller that finds
  // none polls briefly rather than pay the pipeline's hand-off.
  const auto take = [&] {
    return token_waiters.load(std::memory_order_relaxed) == 0 && try_take_token();
  };
  if (!take() && !engine::spin_until(take, std::min<uint32_t>(cfg.idle_spin_us, 20))) return false;
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
  counters.completed(r.status.ok(), r.bytes, ns_since(r.accepted));
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

}  // namespace sectorcrypt
