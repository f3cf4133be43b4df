// The encrypt/decrypt data loop over engine slots.
#include "host/cli/crypt_pump.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <vector>

#include "host/cli/cli_common.h"
#include "host/cli/progress.h"

namespace sectorcrypt::cli {
namespace {

bool interrupted() { return interrupt_signal().load(std::memory_order_relaxed) != 0; }

// Reads up to n bytes; fewer only at end of input or when interrupted.
std::size_t read_some(const PumpEnd& in, uint8_t* p, std::size_t n, uint64_t pos, bool* stop) {
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = in.positional
        ? ::pread(in.fd, p + got, n - got, static_cast<off_t>(in.offset + pos + got))
        : ::read(in.fd, p + got, n - got);
    if (r < 0) {
      if (errno == EINTR) {
        if (interrupted()) {
          *stop = true;
          return got;
        }
        continue;
      }
      fail("read failed after {} bytes of input: {}", pos + got, std::strerror(errno));
    }
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  return got;
}

void write_all(const PumpEnd& out, const uint8_t* p, std::size_t n, uint64_t pos) {
  std::size_t put = 0;
  while (put < n) {
    const ssize_t w = out.positional
        ? ::pwrite(out.fd, p + put, n - put, static_cast<off_t>(out.offset + pos + put))
        : ::write(out.fd, p + put, n - put);
    if (w < 0) {
      if (errno == EINTR) continue;  // finish the chunk: output stays whole-sector
      fail("write failed after {} bytes of output: {}", pos + put, std::strerror(errno));
    }
    put += static_cast<std::size_t>(w);
  }
}

// One slot in flight; the engine's callback marks it done.
struct Flight {
  SlotHandle slot;
  uint64_t pos = 0;
  std::size_t len = 0;
  bool done = false;
  Status status;
};

struct Waiter {
  std::mutex mu;
  std::condition_variable cv;
};

struct CallbackContext {
  Waiter* waiter;
  Flight* flight;
};

void on_complete(const Status& s, void* ctx) {
  auto* c = static_cast<CallbackContext*>(ctx);
  std::lock_guard lock(c->waiter->mu);
  c->flight->status = s;
  c->flight->done = true;
  c->waiter->cv.notify_all();
}

}  // namespace

bool skip_input(int fd, uint64_t bytes, const char* name) {
  std::vector<uint8_t> buf(64 << 10);
  PumpEnd in{fd, false, 0};
  uint64_t done = 0;
  while (done < bytes) {
    bool stop = false;
    const std::size_t want = static_cast<std::size_t>(std::min<uint64_t>(buf.size(), bytes - done));
    const std::size_t got = read_some(in, buf.data(), want, done, &stop);
    if (stop) return false;
    if (got < want) fail("{} ended after {} bytes, before --offset ({} bytes)", name, done + got, bytes);
    done += got;
  }
  return true;
}

PumpResult run_pump(const PumpJob& job, const PumpEnd& in, const PumpEnd& out,
                    Progress* progress) {
  Engine& engine = *job.engine;
  const uint32_t ss = job.format.sector_size;
  const std::size_t chunk_max = engine.config().slot_bytes / ss * ss;
  // Keep at most half the slots (>= 1, <= 8) lent to this loop: reading the next chunk
  // overlaps with the engine working on the others.
  const std::size_t depth = std::clamp<std::size_t>(engine.config().slot_count / 2, 1, 8);
  Waiter waiter;
  Flight flights[8];
  CallbackContext contexts[8];
  for (std::size_t i = 0; i < 8; ++i) contexts[i] = {&waiter, &flights[i]};

  PumpResult result;
  uint64_t issued = 0;  // bytes read and submitted
  std::size_t head = 0, count = 0;
  bool eof = false;
  std::string failure;

  auto retire_oldest = [&]() {
    Flight& f = flights[head];
    {
      std::unique_lock lock(waiter.mu);
      waiter.cv.wait(lock, [&] { return f.done; });
    }
    if (failure.empty()) {
      if (!f.status.ok()) {
        failure = fmt::format("engine failed at byte {}: {}", f.pos, f.status.message());
      } else {
        try {
          if (job.then) {
            const Status s2 = engine.crypt_sync(job.then->key, job.then->dir, job.format,
                                                job.then->iv_sector + f.pos / 512, f.slot.data,
                                                f.slot.data, f.len);
            if (!s2.ok()) fail("engine failed at byte {}: {}", f.pos, s2.message());
          }
          write_all(out, f.slot.data, f.len, f.pos);
          result.bytes_done += f.len;
          if (progress) progress->update(job.progress_base + result.bytes_done);
        } catch (const Error& e) {
          failure = e.what();
        }
      }
    }
    (void)engine.release_slot(f.slot);
    head = (head + 1) % 8;
    --count;
  };

  while (failure.empty() && !eof) {
    if (job.bytes && issued >= *job.bytes) break;
    if (interrupted()) {
      result.interrupted = true;
      break;
    }
    if (count == depth) {
      retire_oldest();
      continue;
    }
    Flight& f = flights[(head + count) % 8];
    f.done = false;
    f.status = Status();
    f.pos = issued;
    if (Status s = engine.acquire_slot(&f.slot); !s) {
      failure = fmt::format("engine: {}", s.message());
      break;
    }
    std::size_t want = chunk_max;
    if (job.bytes) want = static_cast<std::size_t>(std::min<uint64_t>(want, *job.bytes - issued));
    bool stop = false;
    std::size_t got = 0;
    try {
      got = read_some(in, f.slot.data, want, issued, &stop);
    } catch (const Error& e) {
      failure = e.what();
    }
    if (!failure.empty() || stop || got == 0) {
      (void)engine.release_slot(f.slot);
      if (stop) result.interrupted = true;
      eof = got == 0 || stop;
      break;
    }
    if (got < want) {
      eof = true;
      if (job.bytes) {
        failure = fmt::format("{} ended at byte {} of the {} bytes asked for (--size)",
                              "input", issued + got, *job.bytes);
      } else if (got % ss != 0) {
        failure = fmt::format(
            "input ended after {} bytes, not a whole number of {}-byte sectors", issued + got, ss);
      }
      if (!failure.empty()) {
        (void)engine.release_slot(f.slot);
        break;
      }
    }
    SlotRequest req;
    req.key = job.key;
    req.dir = job.dir;
    req.format = job.format;
    req.start_sector = job.iv_sector + issued / 512;
    req.bytes = got;
    req.callback = &on_complete;
    req.user_context = &contexts[(head + count) % 8];
    f.len = got;
    if (Status s = engine.submit_slot(f.slot, req); !s) {
      (void)engine.release_slot(f.slot);
      failure = fmt::format("engine refused the data at byte {}: {}", issued, s.message());
      break;
    }
    ++count;
    issued += got;
  }
  // Whatever happened, let every slot in flight finish and write what completed, so the
  // output holds exactly bytes_done processed bytes from the start of the area.
  while (count > 0) retire_oldest();
  if (progress && (job.last_part || !failure.empty() || result.interrupted)) {
    progress->finish(job.progress_base + result.bytes_done);
  }
  if (!failure.empty()) {
    throw Error(fmt::format("{} ({} bytes written)", failure, result.bytes_done));
  }
  return result;
}

}  // namespace sectorcrypt::cli
