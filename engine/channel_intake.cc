// How channel requests reach the workers without a lock on the submitting side.
//
// A channel's owner pushes each record it hands to the workers onto the channel's own
// submission ring (spsc_ring.h) and, if the channel was not already scheduled, its id
// onto the engine's pending_channels ring (mpsc_ring.h). Neither takes a lock, and the
// owner touches no line another producer writes but the pending ring's tail, once per
// run of requests. The admit stage, under mu, takes records from one scheduled channel
// at a time (`intake`), kIntakeBurst in a row before moving on to the next, and
// alternates between the channels and the any-thread FIFO (`queued`).
//
// Three hand-shakes keep this from losing anything (each is a store, then a look at what
// the other side stores, both seq_cst, so one of the two sees the other):
//   scheduled   the owner pushes a record, then sets `scheduled`; if it was clear, it
//               pushes the id. The admit stage, finding the ring empty, clears
//               `scheduled`, then looks at the ring again and reschedules if a record
//               came in between.
//   wake-up     the owner pushes, then looks at admit_waiters and spinners; a worker
//               going to sleep counts itself in admit_waiters, then looks for channel
//               work (under mu, which the owner takes to notify). A polling worker sees
//               work_epoch move, and looks under mu before it sleeps.
//   shutdown    the owner raises `submitting`, then looks at stopping_now; shutdown sets
//               stopping_now, then waits for every `submitting` to fall before it
//               cancels what the rings hold. An owner that sees stopping_now completes
//               the record itself with shut_down.
#include <thread>

#include "engine/engine_impl.h"

namespace sectorcrypt {

using engine::ChannelState;
using engine::RequestRecord;

bool Engine::Impl::channel_work() const {
  return (intake != kNoIntake && channels[intake].submitted.ready()) || pending_channels.ready();
}

bool Engine::Impl::pop_channel_record(uint32_t* record) {
  for (;;) {
    if (intake == kNoIntake) {
      if (!pending_channels.pop(&intake)) return false;
      intake_taken = 0;
    }
    ChannelState& c = channels[intake];
    if (c.submitted.pop(record)) {
      if (++intake_taken == kIntakeBurst) {
        // Fair turns: to the back of the list, still scheduled, if it has more.
        if (c.submitted.ready()) {
          (void)pending_channels.push(c.id);  // one entry per channel: never full
        } else {
          c.scheduled.store(false);
          if (c.submitted.ready() && !c.scheduled.exchange(true)) (void)pending_channels.push(c.id);
        }
        intake = kNoIntake;
      }
      return true;
    }
    // Empty: unschedule, then look again for a push that came before the flag fell.
    c.scheduled.store(false);
    if (c.submitted.ready() && !c.scheduled.exchange(true)) (void)pending_channels.push(c.id);
    intake = kNoIntake;
  }
}

bool Engine::Impl::pop_next_record(uint32_t* record) {
  channels_first = !channels_first;
  if (channels_first) return pop_channel_record(record) || queued.pop(record);
  return queued.pop(record) || pop_channel_record(record);
}

void Engine::Impl::publish_channel_record(ChannelState& c, uint32_t record) {
  engine::ChannelCounters::bump(c.to_workers, 1);
  c.submitted.push(record);
  if (!c.scheduled.exchange(true)) (void)pending_channels.push(c.id);
}

void Engine::Impl::wake_for_channel_work() {
  work_epoch.fetch_add(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // A poller will see work_epoch move; a sleeper needs the notify, under mu so that it
  // cannot fall between its look for work and its wait.
  if (admit_waiters.load(std::memory_order_relaxed) != 0 &&
      spinners.load(std::memory_order_relaxed) == 0) {
    std::lock_guard lk(mu);
    if (admit_waiters.load(std::memory_order_relaxed) != 0) admit_cv.notify_one();
    wake_token_waiter();
  }
}

void Engine::Impl::wait_for_channel_submitters() {
  for (std::size_t i = 0; i < cfg.channel_count; ++i) {
    while (channels[i].submitting.load()) std::this_thread::yield();
  }
}

}  // namespace sectorcrypt
