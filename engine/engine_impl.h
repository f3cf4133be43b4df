// Engine::Impl: the state behind engine.h, shared by the files of engine/ (the table in
// engine/README.md says which does what; its "Shared state" table says who may touch
// each piece).
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "engine/backend.h"
#include "engine/batch.h"
#include "engine/channel_state.h"
#include "engine/completion_queue.h"
#include "engine/engine.h"
#include "engine/engine_stats.h"
#include "engine/fixed_ring.h"
#include "engine/key_table.h"
#include "engine/memory_registry.h"
#include "engine/request_validation.h"
#include "engine/slot_pool.h"

namespace sectorcrypt {

struct Engine::Impl {
  EngineConfig cfg;  // defaults resolved
  std::unique_ptr<engine::Backend> backend;
  std::unique_ptr<engine::Backend> fallback;  // CPU, when cfg.cpu_fallback
  engine::SlotPool slots;
  engine::KeyTable keys;
  engine::MemoryRegistry registry;  // guarded by mu, but for release()
  engine::CompletionQueue cq;
  engine::EngineCounters counters;

  // Records [0, request_capacity) serve copy requests; record request_capacity + i is
  // slot i's zero-copy record; from channel_records on, channel c owns channel_depth
  // records each (engine/channel_state.h).
  std::unique_ptr<engine::RequestRecord[]> records;
  std::size_t copy_records = 0;
  std::size_t channel_records = 0;
  std::unique_ptr<engine::ChannelState[]> channels;
  std::unique_ptr<Channel[]> channel_handles;
  bool cpu_inline = false;  // CPU backend with inline_max_bytes > 0 (channel.cc)
  // `stopping`, readable without mu: channel submits check it before taking anything.
  std::atomic<bool> stopping_now{false};

  // ---- guarded by mu ----
  std::mutex mu;
  std::condition_variable admit_cv;   // the admit stage: work, a slot, a flush, shutdown
  std::condition_variable record_cv;  // submit() waiting for a request record
  std::condition_variable slot_cv;    // acquire_slot() waiting for a slot
  std::condition_variable drain_cv;   // drain() waiting for completions
  std::condition_variable in_flight_cv;  // shutdown waiting for batches_in_flight == 0
  engine::FixedStack<uint32_t> free_records;
  engine::FixedRing<uint32_t> queued;       // accepted copy requests, FIFO
  engine::FixedRing<uint32_t> ready_slots;  // submitted zero-copy slots
  engine::FixedStack<uint32_t> free_channels;  // channels not open
  bool stopping = false;
  // Workers asleep in admit(): changed under mu, read without it by a channel's submitter
  // deciding whether a wake-up is needed (wake_for_channel_work).
  std::atomic<uint32_t> admit_waiters{0};
  // Moves whenever admission may have something new (work, a slot, a flush, shutdown):
  // what an idle worker polls, without mu, before it sleeps (EngineConfig::idle_spin_us).
  std::atomic<uint64_t> work_epoch{0};
  void wake_admit() {  // under mu
    work_epoch.fetch_add(1, std::memory_order_relaxed);
    // A polling worker sees the epoch move and looks under mu before it sleeps, so a
    // sleeper is woken only when nobody polls: a futex wake the submitter then skips.
    if (admit_waiters != 0 && spinners == 0) admit_cv.notify_one();
    wake_token_waiter();
  }
  // Crypt tokens: at most cfg.threads threads crypt at once. A worker takes one before it
  // admits a batch and keeps it until it runs out of work; a crypt_sync caller that
  // crypts its own request's batches holds one while it does (admit_on_caller). A worker
  // with work but no token sleeps on token_cv, without polling: on a machine with as many
  // vCPUs as threads, a third thread polling beside the two crypting ones costs them more
  // than it saves (bench/results/engine_bench.md).
  // free_tokens is atomic because a channel's submitter takes a token without mu
  // (try_take_token) to crypt inline; workers take and return them under mu. A worker
  // about to sleep for a token counts itself in token_waiters and looks at free_tokens
  // again (both seq_cst), and a token returned without mu is followed by a look at
  // token_waiters and, if any, a notify under mu: so no wake-up is lost.
  std::atomic<int32_t> free_tokens{0};
  std::atomic<uint32_t> token_waiters{0};
  bool try_take_token() {
    int32_t t = free_tokens.load();
    while (t > 0) {
      if (free_tokens.compare_exchange_weak(t, t - 1)) return true;
    }
    return false;
  }
  void release_token_unlocked() {  // without mu (channel.cc)
    free_tokens.fetch_add(1);
    if (token_waiters.load() != 0) {
      std::lock_guard lk(mu);
      token_cv.notify_one();
    }
  }
  // Workers polling for work (spin_for_work): one will take it. Changed under mu, read
  // without it by channel submitters.
  std::atomic<uint32_t> spinners{0};
  uint32_t max_spinners = 2;  // max(2, threads / 4), set at start: more idle workers sleep
  std::condition_variable token_cv;
  void wake_token_waiter() {  // under mu: a token and work for a sleeper, nobody polling
    if (token_waiters != 0 && free_tokens != 0 && spinners == 0 && admit_has_work()) {
      token_cv.notify_one();
    }
  }
  bool admit_has_work() const {  // under mu: something admit() could turn into a batch
    return !ready_slots.empty() ||
           ((cursor != nullptr || !queued.empty() || channel_work()) && slots.any_free());
  }
  // Under mu: copy requests waiting to be admitted behind the current one.
  bool more_queued() const { return !queued.empty() || channel_work(); }
  // After setting `stopping`: every worker, asleep for work or for a token, must see it.
  void wake_workers_to_stop() {
    admit_cv.notify_all();
    token_cv.notify_all();
  }
  void release_token() {  // under mu
    free_tokens.fetch_add(1);
    if (token_waiters != 0 && (admit_has_work() || stopping)) token_cv.notify_one();
  }
  uint32_t record_waiters = 0;
  // acquire_slot() callers asleep for a slot: changed under mu, read without it by a
  // completing worker that gave a slot back (return_slot).
  std::atomic<uint32_t> slot_waiters{0};
  std::atomic<uint32_t> drain_waiters{0};  // changed under mu; read without it by deliver
  // Emitted by admit, not yet completed: raised under mu, lowered without it by the
  // completing worker (return_slot).
  std::atomic<uint32_t> batches_in_flight{0};
  uint64_t accepted = 0;
  std::atomic<uint64_t> delivered{0};

  // ---- admission state (serial: whichever worker holds mu) ----
  engine::RequestRecord* cursor = nullptr;  // request being cut into parts
  uint64_t cursor_offset = 0;
  engine::Batch* open = nullptr;            // batch being filled

  // ---- channel intake (channel_intake.cc) ----
  // Channels whose owners pushed records onto their submission rings take no lock: the
  // owner pushes, and the first push after the channel was taken off the list puts its id
  // on pending_channels (lock-free, many producers). The admit stage, under mu, takes
  // records from one channel at a time (`intake`) and moves on after kIntakeBurst, so
  // no channel starves the others; admission alternates between them and `queued`.
  static constexpr uint32_t kNoIntake = UINT32_MAX;
  static constexpr uint32_t kIntakeBurst = 16;
  engine::MpscRing pending_channels;
  uint32_t intake = kNoIntake;    // under mu
  uint32_t intake_taken = 0;      // records taken from `intake` in a row (under mu)
  bool channels_first = false;    // under mu: which source admission looks at first
  bool channel_work() const;      // under mu: a channel record is waiting
  bool pop_channel_record(uint32_t* record);  // under mu
  bool pop_next_record(uint32_t* record);     // under mu: `queued` and channels, in turn
  // Without mu, by a channel's owner: hands an accepted record to the workers, and after
  // a run of them, wakes a worker if all sleep (no lock unless one must be woken).
  void publish_channel_record(engine::ChannelState& c, uint32_t record);
  void wake_for_channel_work();
  // Shutdown: waits until no owner is between its stopping check and its last push.
  void wait_for_channel_submitters();

  // ---- completion order (pipeline.cc) ----
  // Ordered batches in admission order, pushed by admit() while it holds mu; the head
  // completes first. Holds at most slot_count entries, since a batch is a slot.
  std::mutex pipe_mu;
  engine::FixedRing<engine::Batch*> in_order;
  std::unique_ptr<bool[]> crypted;      // per slot, guarded by pipe_mu
  bool completing = false;              // a worker is delivering the head (pipe_mu)
  bool head_crypted() const {           // under pipe_mu: the oldest batch may complete
    return !in_order.empty() && crypted[in_order.front()->slot];
  }

  // ---- threads (pipeline.cc) ----
  // `worker_count` workers; worker 0 is the engine thread, which also ends the pipeline.
  std::thread engine_thread;
  std::unique_ptr<std::thread[]> workers;  // workers 1..worker_count-1
  unsigned worker_count = 0;
  std::mutex lifecycle_mu;              // shutdown()/join
  std::atomic<bool> started{false};
  std::atomic<bool> finished{false};    // the pipeline ended, leftovers cancelled

  // pipeline.cc, admission.cc, completion.cc
  Status start_threads();               // at create
  void run_engine_thread();
  void run_worker();
  engine::Batch* admit(bool& token);    // nullptr: stop; token: this worker holds one
  bool spin_for_work(std::unique_lock<std::mutex>& lk);  // true: work_epoch moved
  // Under mu, at admission of a crypt_sync request: a batch for the calling thread to
  // run (crypt, complete) itself, or nullptr to queue the request as usual.
  //  - The engine is idle and the request fits one slot: its one batch; the call then
  //    needs no thread hand-off at all.
  //  - The request spans several slots, it would be admitted next, a crypt token is
  //    free and `helping` is not null: its first batch, and *helping is set: the caller holds a token, crypts the
  //    request's batches with admit_next_part_on_caller() beside the workers, and gives
  //    the token back with stop_helping().
  engine::Batch* admit_on_caller(engine::RequestRecord* r, bool* helping);
  // The next batch of the helping caller's request `r`, while it is still being cut
  // (`done`, the caller's completion flag, is read under mu: it is set before r's record
  // can be freed and reused); nullptr when r is fully admitted or admission has other
  // work first (a submitted zero-copy slot) or no free slot.
  engine::Batch* admit_next_part_on_caller(engine::RequestRecord* r,
                                           const std::atomic<bool>& done);
  void stop_helping();
  engine::Batch* admit_part_of_cursor();  // under mu: the next part of cursor alone
  uint64_t part_length(const engine::RequestRecord& r, uint64_t offset,
                       std::size_t room) const;  // under mu
  // Under mu: appends the next part of `cursor` (part_length of `room`) to b. Returns
  // the request when that was its last part (cursor is then null), else nullptr (the
  // request has one more part pending and stays the cursor).
  engine::RequestRecord* append_cursor_part(engine::Batch& b, std::size_t room);
  void append_part(engine::Batch& b, engine::RequestRecord* r, uint64_t offset, uint64_t len);
  void emit_batch(engine::Batch& b);    // under mu: an ordered batch joins the order
  void crypt(engine::Batch* b);
  void crypted_in_order(engine::Batch* b);
  void crypt_and_complete(engine::Batch* b) {
    crypt(b);
    if (b->ordered) {
      crypted_in_order(b);
    } else {
      complete(b);  // whole channel requests: no order to wait for (batch.h)
    }
  }
  void rerun_on_cpu(engine::Batch* b);
  void complete(engine::Batch* b);
  // The end of a batch (completion.cc): its slot back to the pool unless it is a lent
  // zero-copy slot, one batch fewer in flight, and a wake-up for whoever sleeps on it,
  // taking mu only when someone does.
  void end_batch(uint32_t slot, bool zero_copy);
  void deliver(engine::RequestRecord* r);
  void cancel_leftovers();
  // channel.cc: a channel request finished by a worker (or cancelled) goes to its
  // channel's completion ring; the channel's owner reaps it.
  void post_to_channel(engine::RequestRecord* r);
  Status init_channels();               // at create
  void crypt_inline(engine::Batch& b, engine::RequestRecord& r);
  // sync_calls.cc: crypt_sync of at most inline_max_bytes on the CPU, run on the caller
  // when a crypt token is free; false: take the pipeline (nothing was done).
  bool crypt_sync_inline(const Request& req, Status* result);
  // submit.cc: copies a validated request into its record (not the registry lookup).
  void fill_record(engine::RequestRecord& r, const Request& req, uint32_t key_index);
  // Under mu: looks the record's segments up in the registry (registered memory).
  void match_registered(engine::RequestRecord& r);
  // poll(): the records of polled completions, freed under one lock.
  void free_polled_records(const engine::CompletionQueue::Entry* e, std::size_t n);

  // submit.cc
  // For synchronous calls: run_here is set to a batch the caller must
  // crypt_and_complete() (admit_on_caller), else nullptr; *helping and *record as
  // admit_on_caller says; last_part_admitted goes into the record (batch.h).
  Status validate_and_accept(const Request& req, bool blocking,
                             engine::Batch** run_here = nullptr,
                             void (*last_part_admitted)(void*) = nullptr,
                             bool* helping = nullptr,
                             engine::RequestRecord** record = nullptr);
};

namespace engine {
// True on a thread that is running one of this engine's callbacks.
bool in_callback_of(const Engine::Impl* impl);
// pipeline.cc: backend.crypt with a throw turned into backend_failure of every part;
// and whether every part of a batch failed in the backend (a cpu_fallback re-run).
void crypt_guarded(Backend& backend, Batch& b);
bool whole_batch_failed(const Batch& b);
}  // namespace engine

}  // namespace sectorcrypt
