// The engine's pipeline: three stages run by the engine's own worker threads, all
// started at create and running until shutdown.
//
//   admit    serial (under mu): take accepted requests FIFO, coalesce and split them
//            into the next free slot's batch; an idle worker polls for up to
//            idle_spin_us, then sleeps on a condition variable for work, a slot, or
//            the flush deadline
//   crypt    parallel: backend->crypt (gather, cipher, CPU scatter)
//   complete backend->finish, statuses, completions, the slot back to the pool (the
//            credit returns): serial and in admission order for ordered batches; at
//            once, on the crypting worker, for a batch of whole channel requests
//
// Each of the `threads` workers runs all three for a batch: admit one, crypt it, then, if
// it is the oldest batch in flight, complete it and every crypted batch behind it. A batch
// therefore never changes threads between stages; the first design (an admit thread,
// crypt workers and a completer, three hand-offs per batch) paid a futex wake per hand-off,
// tens of microseconds on a VM whose other vCPU sleeps, and lost 30% of the kernel's speed
// to it (bench/results/engine_bench.md). The CUDA backend too: its crypt stages the batch
// in, runs H2D, kernel and D2H on the slot's stream, waits, and stages it out, so on a GPU
// the copies run on as many threads as there are batches in flight (a single completer
// thread copying every result out held the GPU to a sixth of the bus). A worker waiting
// on the GPU holds no core (it sleeps in steps); the cuda backend therefore gets a
// worker for every slot (start_threads).
//
// At most slot_count batches exist (a batch is a slot), so the in-order ring, sized
// slot_count at create, never fills up; every batch, part and record is recycled.
//
// Why not oneTBB's parallel_pipeline: it allocates a task object per token from
// per-thread small-object pools. Tasks made on one thread and freed on another migrate
// between pools, and a thread whose pool runs dry calls cache_aligned_allocate (malloc,
// or tbbmalloc). The allocation-counting test saw it in steady state: 2 calls in 8
// rounds after 3 warm-up rounds, from r1::allocate(small_object_pool) on a worker. The
// flow graph and task_arena::enqueue allocate tasks the same way. Fixed threads with
// fixed rings give the same three stages with zero allocations, and forward progress no
// longer depends on the TBB market handing the arena a worker while admit sleeps.
//
// Completion order: admit() puts each ordered batch in `in_order` while it holds mu, so
// the ring is in admission order; only the head completes, one thread at a time
// (`completing`); parts sit in a batch in request order, and a request completes with
// its last part: so completions of submit() requests are delivered in admission order,
// one callback at a time. A batch that holds only whole channel requests is not
// ordered: channels promise no engine-wide order (a channel's own order is kept by its
// owner) and no other batch holds a part of its requests, so its worker completes it
// as soon as it is crypted. One slow batch (a GPU slot waiting on its stream, a worker
// descheduled) then holds back no channel's completions but its own, and several
// workers complete at once.
#include <algorithm>
#include <exception>
#include <stdexcept>

#include "engine/engine_impl.h"
#include "engine/fault_injection.h"

namespace sectorcrypt {
namespace engine {

// Runs backend.crypt; an exception fails every part of the batch instead of ending the
// worker thread (which would leave the batch, and with it the pipeline, hung).
void crypt_guarded(Backend& backend, Batch& b) {
  const char* what = nullptr;
  try {
    if (SECTORCRYPT_FAULT(fault::Point::crypt_throw)) {
      throw std::runtime_error("injected fault at crypt_throw");
    }
    backend.crypt(b);
    return;
  } catch (const std::exception& e) {
    what = e.what();
    for (uint32_t k = 0; k < b.part_count; ++k) {
      b.parts[k].status = Status::error(Errc::backend_failure, "crypt worker threw: %s", what);
    }
  } catch (...) {
    for (uint32_t k = 0; k < b.part_count; ++k) {
      b.parts[k].status = Status::error(Errc::backend_failure, "crypt worker threw");
    }
  }
}

// Every part failed in the backend: the whole batch is lost, none of it written.
bool whole_batch_failed(const Batch& b) {
  for (uint32_t k = 0; k < b.part_count; ++k) {
    if (b.parts[k].status.code() != Errc::backend_failure) return false;
  }
  return b.part_count > 0;
}


}  // namespace engine

using engine::Batch;
using engine::Clock;
using engine::Part;
using engine::RequestRecord;
using engine::SlotState;

Status Engine::Impl::start_threads() {
  in_order.init(slots.count());
  crypted = std::make_unique<bool[]>(slots.count());
  // A GPU worker spends most of a batch asleep waiting on its stream: enough of them to
  // keep every slot in flight, whatever the core count.
  worker_count = cfg.threads;
  if (backend->kind() != BackendKind::cpu) {
    worker_count = std::max<unsigned>(worker_count, static_cast<unsigned>(
                                                        std::min<std::size_t>(slots.count(), 64)));
  }
  free_tokens = worker_count;
  // Idle workers that may poll at once. On a 16-core host, 16 threads, `sectorcrypt
  // compare` (4 in flight) against every idle worker polling: 4 KiB 244 -> 748 MiB/s,
  // 64 KiB 3,928 -> 8,381, 256 KiB 12,291 -> 15,633, 4 MiB 41,468 -> 38,033; a cap of 2
  // or 8 did worse at most sizes (bench/results/gpu_h200.md). Two vCPUs: both poll.
  max_spinners = std::max(2u, worker_count / 4);
  workers = std::make_unique<std::thread[]>(worker_count);
  unsigned made = 1;  // worker 0 is the engine thread, started last
  try {
    for (; made < worker_count; ++made) workers[made] = std::thread([this] { run_worker(); });
    engine_thread = std::thread([this] { run_engine_thread(); });
  } catch (const std::system_error& e) {
    // Stop what did start (nothing was submitted yet), then report.
    {
      std::lock_guard lock(mu);
      stopping = true;
    }
    wake_workers_to_stop();
    for (unsigned i = 1; i < made; ++i) workers[i].join();
    return Status::error(Errc::resource_exhausted, "cannot start the engine's threads: %s",
                         e.what());
  }
  started.wait(false);  // a worker is admitting: create returns with everything in place
  return Status();
}

void Engine::Impl::run_engine_thread() {
  run_worker();
  // Stopping: the other workers finish what they hold, complete it, and leave.
  for (unsigned i = 1; i < worker_count; ++i) workers[i].join();
  {
    // A synchronous caller may still be running a batch it admitted itself.
    std::unique_lock lock(mu);
    in_flight_cv.wait(lock, [&] { return batches_in_flight == 0; });
  }
  cancel_leftovers();
}

void Engine::Impl::run_worker() {
  bool token = false;
  while (Batch* b = admit(token)) {
    // The request cannot complete before this batch does, so its record is still live.
    if (RequestRecord* r = b->last_part_of) r->last_part_admitted(r->user_context);
    crypt_and_complete(b);
  }
}

// Marks the batch crypted, then completes the head of `in_order` for as long as it is
// crypted, unless another thread is already doing that (it will reach this batch: it
// checks the head again under pipe_mu before it stops).
void Engine::Impl::crypted_in_order(Batch* b) {
  std::unique_lock lock(pipe_mu);
  crypted[b->slot] = true;
  if (completing) return;
  completing = true;
  Batch* head = nullptr;
  while (head_crypted()) {
    in_order.pop(&head);
    lock.unlock();
    complete(head);
    lock.lock();
  }
  completing = false;
}

void Engine::Impl::crypt(Batch* b) {
  const Clock::time_point t0 = Clock::now();
  engine::crypt_guarded(*backend, *b);
  counters.add(counters.crypt_ns, engine::ns_since(t0));
}
}  // namespace sectorcrypt
