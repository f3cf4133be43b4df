/*
 * sectorcrypt.h: the C API of sectorcrypt, batched AES-XTS over disk sectors on the CPU
 * or an NVIDIA GPU, byte-compatible with dm-crypt/LUKS2 (aes-xts-plain64).
 *
 * A thin C ABI over the C++ engine (engine/engine.h): opaque handles, plain structs,
 * int return codes. Everything the data path needs is allocated by sectorcrypt_create();
 * after it returns, submitting and completing requests allocates nothing. A full engine
 * answers SECTORCRYPT_EWOULDBLOCK (try_submit) or makes the caller wait (submit), never
 * "out of memory".
 *
 * RETURN CODES: 0 (SECTORCRYPT_OK) on success, or a negative SECTORCRYPT_E* value.
 * sectorcrypt_strerror() names a code; sectorcrypt_last_error() gives the detailed
 * message of the calling thread's last failed call (never containing key bytes).
 * SECTORCRYPT_EWOULDBLOCK means "full, retry later" and is never returned for an invalid
 * request; an invalid request is never answered with SECTORCRYPT_EWOULDBLOCK.
 *
 * No C++ exception crosses this interface.
 *
 * ABI: the structs a caller fills (config, request, slot request) start with a `size`
 * member that their *_init() call sets to the size the caller was compiled with; the
 * structs the library fills (config, stats, completions) are passed with their size by
 * the inline wrappers below. New members are only ever appended, so a program compiled
 * against an older sectorcrypt.h of the same SONAME keeps working: the library takes
 * missing members as their defaults and never writes past the caller's size. A member
 * appended after a 4-byte one starts on the next 8-byte boundary, so an older layout's
 * size (which counts its tail padding) never takes in a newer member's bytes. struct
 * sectorcrypt_format and struct sectorcrypt_slot do not grow; their reserved members
 * must be zero. The man pages (sectorcrypt.h(3), one per call) say the rest.
 */
#ifndef SECTORCRYPT_H
#define SECTORCRYPT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- version: of this header; sectorcrypt_major_version() etc. give the library's ---- */
#define SECTORCRYPT_VERSION_MAJOR 0
#define SECTORCRYPT_VERSION_MINOR 2
#define SECTORCRYPT_VERSION_PATCH 0
#define SECTORCRYPT_VERSION_STRING "0.2.0"

/* ---- return codes ---- */
#define SECTORCRYPT_OK 0
#define SECTORCRYPT_EINVAL_KEY (-1)       /* key length, equal XTS halves, unknown handle */
#define SECTORCRYPT_EINVAL_FORMAT (-2)    /* sector size or IV generator not supported */
#define SECTORCRYPT_EINVAL_LENGTH (-3)    /* not whole sectors, sizes that do not match */
#define SECTORCRYPT_EINVAL_BUFFER (-4)    /* null or overlapping buffers, misaligned start */
#define SECTORCRYPT_EWOULDBLOCK (-5)      /* no room right now: retry (never "invalid") */
#define SECTORCRYPT_ESHUTDOWN (-6)        /* engine shut down, or request cancelled by it */
#define SECTORCRYPT_EBACKEND (-7)         /* the backend failed; the output is not valid */
#define SECTORCRYPT_EUNAVAILABLE (-8)     /* e.g. the CUDA backend without a usable GPU */
#define SECTORCRYPT_ENOMEM (-9)           /* create: memory, locked memory, streams; every
                                             table entry or channel taken */
#define SECTORCRYPT_EINTERNAL (-10)       /* a broken invariant: a bug */
#define SECTORCRYPT_EINVAL (-11)          /* a null handle/pointer or an out-of-range value */

/* ---- enums ---- */
enum sectorcrypt_backend {
  SECTORCRYPT_BACKEND_AUTO = 0, /* the GPU when one is usable, else the CPU */
  SECTORCRYPT_BACKEND_CPU = 1,
  SECTORCRYPT_BACKEND_CUDA = 2,
  SECTORCRYPT_BACKEND_HYBRID = 3 /* the CPU workers and the GPU together */
};

enum sectorcrypt_direction { SECTORCRYPT_ENCRYPT = 0, SECTORCRYPT_DECRYPT = 1 };

/* dm-crypt IV generators: aes-xts-plain64, aes-xts-plain, aes-xts-plain64be. */
enum sectorcrypt_iv_mode {
  SECTORCRYPT_IV_PLAIN64 = 0,
  SECTORCRYPT_IV_PLAIN = 1,
  SECTORCRYPT_IV_PLAIN64BE = 2
};

/* Which AES the CUDA kernels run: constant_time has no data-dependent memory access;
 * table (shared-memory T-tables) is faster but only for trusted co-tenancy. */
enum sectorcrypt_gpu_aes { SECTORCRYPT_GPU_AES_CONSTANT_TIME = 0, SECTORCRYPT_GPU_AES_TABLE = 1 };

/* ---- configuration ---- */
struct sectorcrypt_config {
  size_t size;                  /* set by sectorcrypt_config_init(): the caller's sizeof */
  int backend;                  /* enum sectorcrypt_backend */
  unsigned threads;             /* engine threads; 0: hardware concurrency */
  size_t slot_count;            /* batch slots (>= 1) */
  size_t slot_bytes;            /* bytes per slot: a multiple of 4096; 0 (default): the
                                   backend's, 1 MiB on the CPU, 64 MiB on the GPU */
  size_t request_capacity;      /* accepted, unfinished requests; 0: 8 * slot_count */
  size_t key_capacity;          /* key table entries (>= 1) */
  uint32_t flush_deadline_us;   /* a partly filled batch waits at most this long */
  int require_locked_memory;    /* nonzero: fail create when slots cannot be locked */
  int gpu_ordinal;              /* CUDA device for the cuda and hybrid backends; -1: every
                                   usable GPU (when gpu_ordinal_count is 0) */
  uint32_t idle_spin_us;        /* an idle engine thread polls this long before it sleeps;
                                   0 where other busy processes share the CPUs */
  int cpu_fallback;             /* nonzero: a batch the backend fails is re-run once on
                                   the CPU kernels (engine.h, FAULTS) */
  int idle_flush;               /* nonzero (default): with no batch in flight, a partly
                                   filled batch is sent at once instead of at its deadline */
  /* appended after the first layout (a caller without them gets their defaults): */
  int gpu_aes;                  /* enum sectorcrypt_gpu_aes */
  size_t max_parts_per_batch;   /* requests coalesced into one slot; 0: min(B/512, 256)
                                   on the CPU, min(B/512, 4096) on the GPU */
  size_t registration_capacity; /* sectorcrypt_register_memory ranges at once (1..255) */
  int hybrid_gpu_percent;       /* hybrid: -1 (default) the split adapts to what each
                                   side delivers; 0..100 the GPU's share of the bytes */
  size_t hybrid_min_gpu_bytes;  /* hybrid: smaller batches stay on the CPU */
  size_t channel_count;         /* channels open at once (sectorcrypt_channel_open); 0..4096 */
  size_t channel_depth;         /* each channel's requests accepted and not yet reaped */
  size_t inline_max_bytes;      /* CPU: a channel request or sectorcrypt_crypt() call of at
                                   most this many bytes is crypted on the calling thread
                                   when a crypt thread slot is free (0: never) */
  /* Several GPUs (engine/README.md, "Several GPUs"). gpu_ordinal_count 0 (default): the
   * one GPU gpu_ordinal (-1: every usable GPU). 1..SECTORCRYPT_MAX_GPUS: the devices
   * gpu_ordinals[0 .. count), gpu_ordinal ignored; each gets its own slots (slot i is
   * device i % count's, so slot_count >= count), streams and key table copy, and keys
   * and registered memory reach every one. Listing one GPU twice opens it as two devices
   * (a test mode). Device-resident requests need memory every device reaches. */
  size_t gpu_ordinal_count;
  int gpu_ordinals[16];         /* SECTORCRYPT_MAX_GPUS entries; those past the count
                                   are not read (get_config writes them 0) */
};
#define SECTORCRYPT_MAX_GPUS 16

/* Fills the first `size` bytes of *cfg with the defaults (auto backend, 8 slots of 1 MiB,
 * ...) and sets cfg->size = size. Call it through sectorcrypt_config_init().
 * THREAD SAFETY: any thread. */
void sectorcrypt_config_init_sized(struct sectorcrypt_config *cfg, size_t size);
static inline void sectorcrypt_config_init(struct sectorcrypt_config *cfg) {
  sectorcrypt_config_init_sized(cfg, sizeof *cfg);
}

/* How sectors are laid out and numbered (see kernels/sector_format.h). Fixed size (it is
 * embedded in other structs): later fields take the reserved space, which must be 0. */
struct sectorcrypt_format {
  uint32_t sector_size;  /* 512, 1024, 2048 or 4096 */
  int iv_mode;           /* enum sectorcrypt_iv_mode */
  int iv_large_sectors;  /* nonzero: IVs count sector_size units, not 512-byte units */
  uint32_t reserved[5];  /* 0 */
};

/* Fills *fmt with 512-byte sectors, plain64, 512-byte IV units.
 * THREAD SAFETY: any thread. */
void sectorcrypt_format_init(struct sectorcrypt_format *fmt);

/* ---- engine ---- */
typedef struct sectorcrypt_engine sectorcrypt_engine;

/*
 * Allocates everything the engine will use and starts it. cfg may be NULL (defaults);
 * else cfg->size says which members the caller has (sectorcrypt_config_init sets it).
 *
 * RETURN VALUE: 0 and *out set; SECTORCRYPT_EINVAL (out NULL, backend or gpu_aes out of
 * range, cfg->size smaller than the first layout's, or members this library does not
 * know set to nonzero),
 * SECTORCRYPT_EINVAL_LENGTH (a size in cfg out of range), SECTORCRYPT_EUNAVAILABLE (cuda
 * asked for without a usable GPU), SECTORCRYPT_ENOMEM. On error *out is untouched.
 * THREAD SAFETY: any thread.
 */
int sectorcrypt_create(const struct sectorcrypt_config *cfg, sectorcrypt_engine **out);

/*
 * Shuts the engine down and frees it: every accepted request completes (possibly with
 * SECTORCRYPT_ESHUTDOWN) and its callback has returned before this call returns, so the
 * callbacks may use anything the caller frees after it. A channel's requests are the
 * exception: their callbacks run only in the channel's poll or wait, and completions not
 * reaped by then are dropped, uncalled. Open channels are freed too. NULL is ignored.
 * THREAD SAFETY: once, from a thread that is not in a completion callback, with no other
 * call on this engine running or starting.
 */
void sectorcrypt_destroy(sectorcrypt_engine *engine);

/* ---- keys ---- */
typedef uint64_t sectorcrypt_key; /* 0 is never a valid key */

#define SECTORCRYPT_KEY_ALLOW_EQUAL_HALVES 1u /* for known-answer vectors only */

/*
 * Validates and expands a raw XTS key (32 bytes: AES-128, 64 bytes: AES-256; Key1 ||
 * Key2) into the engine's key table. The caller may wipe `key` once this returns.
 *
 * RETURN VALUE: 0 and *out set; SECTORCRYPT_EINVAL_KEY (length, equal halves);
 * SECTORCRYPT_ENOMEM (table full); SECTORCRYPT_EBACKEND (device upload); SECTORCRYPT_EINVAL.
 * THREAD SAFETY: any thread, concurrently with all other calls.
 */
int sectorcrypt_add_key(sectorcrypt_engine *engine, const uint8_t *key, size_t len,
                        unsigned flags, sectorcrypt_key *out);

/*
 * Wipes a key and frees its entry.
 *
 * RETURN VALUE: 0; SECTORCRYPT_EINVAL_KEY (unknown or already removed);
 * SECTORCRYPT_EWOULDBLOCK (unfinished requests use it: drain first, or retry).
 * THREAD SAFETY: any thread.
 */
int sectorcrypt_remove_key(sectorcrypt_engine *engine, sectorcrypt_key key);

/* ---- asynchronous requests ---- */

/* Called once per request on an engine thread with its final code (0 or negative) and
 * the engine's message for it ("ok", or e.g. "GPU batch failed at H2D copy: ..."), valid
 * only during the call. It must not call sectorcrypt_submit, sectorcrypt_drain,
 * sectorcrypt_crypt*, sectorcrypt_acquire_slot or sectorcrypt_destroy;
 * sectorcrypt_try_submit, sectorcrypt_release_slot and sectorcrypt_poll are fine. */
typedef void (*sectorcrypt_callback)(int status, const char *message, void *user_data);

#define SECTORCRYPT_REQ_POLL 1u  /* report the completion through sectorcrypt_poll() */
#define SECTORCRYPT_REQ_FLUSH 2u /* send its batch now instead of waiting to coalesce */
#define SECTORCRYPT_REQ_DEVICE 4u /* src/dst are device memory of the engine's GPU
                                     (16-byte aligned, segments of whole sectors): only
                                     the kernel runs; the CPU backend refuses it */

#define SECTORCRYPT_MAX_SEGMENTS 16

struct sectorcrypt_request {
  size_t size;                        /* set by sectorcrypt_request_init() */
  sectorcrypt_key key;
  int direction;                      /* enum sectorcrypt_direction */
  struct sectorcrypt_format format;
  uint64_t start_sector;              /* 512-byte units, like a bio */
  const struct iovec *src;            /* 1..SECTORCRYPT_MAX_SEGMENTS; whole sectors */
  size_t src_count;
  const struct iovec *dst;            /* dst_count 0: in place */
  size_t dst_count;
  sectorcrypt_callback callback;      /* a callback, or SECTORCRYPT_REQ_POLL, or neither */
  void *user_data;
  unsigned flags;                     /* SECTORCRYPT_REQ_* */
};

/* Fills the first `size` bytes of *req with defaults (encrypt, sectorcrypt_format_init,
 * no buffers, no callback) and sets req->size. Call it through sectorcrypt_request_init(). */
void sectorcrypt_request_init_sized(struct sectorcrypt_request *req, size_t size);
static inline void sectorcrypt_request_init(struct sectorcrypt_request *req) {
  sectorcrypt_request_init_sized(req, sizeof *req);
}

/*
 * Queues a request, waiting while the engine is full. The iovec arrays are copied; the
 * memory they point at must stay valid and unchanged until the completion. A request
 * completes exactly once: through its callback if it has one, else through
 * sectorcrypt_poll() if SECTORCRYPT_REQ_POLL is set, else silently (sectorcrypt_drain()
 * waits for it). Setting both a callback and SECTORCRYPT_REQ_POLL is invalid.
 *
 * An invalid request is refused at once, before anything is taken, however full the
 * engine is and however many threads wait in sectorcrypt_submit().
 *
 * RETURN VALUE: 0 (accepted; one completion follows); or, with nothing taken and no
 * completion: SECTORCRYPT_EINVAL_KEY, SECTORCRYPT_EINVAL_FORMAT, SECTORCRYPT_EINVAL_LENGTH,
 * SECTORCRYPT_EINVAL_BUFFER, SECTORCRYPT_EINVAL (NULL engine/req, req->size out of range
 * or members this library does not know set, callback with SECTORCRYPT_REQ_POLL, bad
 * direction, unknown flags), SECTORCRYPT_ESHUTDOWN.
 * THREAD SAFETY: any thread except a completion callback.
 */
int sectorcrypt_submit(sectorcrypt_engine *engine, const struct sectorcrypt_request *req);

/*
 * As sectorcrypt_submit(), but never waits.
 *
 * RETURN VALUE: as sectorcrypt_submit(), plus SECTORCRYPT_EWOULDBLOCK when the engine is
 * full right now (the request is valid; retry after a completion).
 * THREAD SAFETY: any thread, including completion callbacks.
 */
int sectorcrypt_try_submit(sectorcrypt_engine *engine, const struct sectorcrypt_request *req);

#define SECTORCRYPT_MESSAGE_MAX 192 /* a message's bytes, with its terminating NUL */
#define SECTORCRYPT_NO_SLOT 0xffffffffu

struct sectorcrypt_completion {
  int status;       /* 0 or a negative SECTORCRYPT_E* code */
  void *user_data;  /* the request's user_data */
  uint64_t bytes;
  uint32_t slot;    /* zero-copy: the index of the slot holding the result; else
                       SECTORCRYPT_NO_SLOT */
  char message[SECTORCRYPT_MESSAGE_MAX]; /* "ok", or why the request failed */
};

/*
 * Moves up to `max` completions of SECTORCRYPT_REQ_POLL requests into out[] (elements of
 * `elem_size` bytes), in completion order. The wait variant waits up to timeout_us for at
 * least one. Call them through sectorcrypt_poll() and sectorcrypt_wait().
 *
 * RETURN VALUE: how many (>= 0); SECTORCRYPT_EINVAL (NULL engine, out NULL with max > 0,
 * elem_size smaller than the first layout's).
 * THREAD SAFETY: any thread; sectorcrypt_wait not from a completion callback.
 */
int sectorcrypt_poll_sized(sectorcrypt_engine *engine, struct sectorcrypt_completion *out,
                           size_t max, size_t elem_size);
int sectorcrypt_wait_sized(sectorcrypt_engine *engine, struct sectorcrypt_completion *out,
                           size_t max, size_t elem_size, uint64_t timeout_us);
static inline int sectorcrypt_poll(sectorcrypt_engine *engine,
                                   struct sectorcrypt_completion *out, size_t max) {
  return sectorcrypt_poll_sized(engine, out, max, sizeof *out);
}
static inline int sectorcrypt_wait(sectorcrypt_engine *engine,
                                   struct sectorcrypt_completion *out, size_t max,
                                   uint64_t timeout_us) {
  return sectorcrypt_wait_sized(engine, out, max, sizeof *out, timeout_us);
}

/* ---- channels ---- */

/*
 * A channel is one thread's own way into the engine (like an SPDK I/O channel or an
 * io_uring ring): its own request records, made at create (config channel_count
 * channels of channel_depth records), a completion ring and an eventfd. Submitting on a
 * channel takes no engine-wide lock; on the CPU backend a request of at most
 * inline_max_bytes is crypted on the submitting thread itself while a crypt thread slot
 * is free, with no hand-off to another thread. Completions are reaped by the channel's
 * owner with sectorcrypt_channel_poll()/_wait(), which also run the callbacks of the
 * channel's requests (on the owner thread; engine threads never do). A request without
 * a callback always gets a completion there (SECTORCRYPT_REQ_POLL is implied).
 * THREAD SAFETY: one thread at a time per channel; different channels concurrently.
 */
typedef struct sectorcrypt_channel sectorcrypt_channel;

struct sectorcrypt_channel_options {
  size_t size;        /* set by sectorcrypt_channel_options_init() */
  int ordered;        /* nonzero: completions in this channel's submission order; 0
                         (default): each as soon as it is done */
  int completion_fd;  /* nonzero: write the channel's eventfd on every completion, for an
                         epoll loop; 0: only while sectorcrypt_channel_wait() sleeps */
};

/* Fills the first `size` bytes of *opts with the defaults and sets opts->size. Call it
 * through sectorcrypt_channel_options_init(). THREAD SAFETY: any thread. */
void sectorcrypt_channel_options_init_sized(struct sectorcrypt_channel_options *opts,
                                            size_t size);
static inline void sectorcrypt_channel_options_init(struct sectorcrypt_channel_options *opts) {
  sectorcrypt_channel_options_init_sized(opts, sizeof *opts);
}

/*
 * Lends the calling thread one of the engine's channels (opts NULL: the defaults).
 * RETURN VALUE: 0 and *out set; SECTORCRYPT_ENOMEM (all channel_count channels are open:
 * the message names channel_count); SECTORCRYPT_ESHUTDOWN; SECTORCRYPT_EINVAL (NULL
 * engine or out, opts->size out of range); SECTORCRYPT_EUNAVAILABLE (from a callback).
 * THREAD SAFETY: any thread except a completion callback.
 */
int sectorcrypt_channel_open(sectorcrypt_engine *engine,
                             const struct sectorcrypt_channel_options *opts,
                             sectorcrypt_channel **out);

/*
 * Gives the channel back for a later sectorcrypt_channel_open().
 * RETURN VALUE: 0; SECTORCRYPT_EWOULDBLOCK (requests accepted on it are not reaped yet:
 * reap them, then close; it stays open); SECTORCRYPT_EINVAL_BUFFER (not an open channel
 * of this engine); SECTORCRYPT_EINVAL (NULL engine or channel).
 * THREAD SAFETY: the channel's owner, not from a completion callback.
 */
int sectorcrypt_channel_close(sectorcrypt_engine *engine, sectorcrypt_channel *channel);

/*
 * Validates and accepts reqs[0..count) in order (each struct as sectorcrypt_request_init
 * made it; the array's stride is reqs[0].size) and stops at the first it cannot accept;
 * *accepted (required) says how many were. Each accepted request completes exactly once;
 * one not accepted has no completion and nothing of it was written. Requests crypted
 * inline are done when the call returns (reap them with sectorcrypt_channel_poll()).
 * RETURN VALUE: 0 (all accepted); else the code for reqs[*accepted]:
 * SECTORCRYPT_EWOULDBLOCK (every record of the channel holds a request not yet reaped:
 * reap, then retry the rest), the validation codes of sectorcrypt_submit(),
 * SECTORCRYPT_ESHUTDOWN, SECTORCRYPT_EINVAL_BUFFER (the channel is closed, also with
 * count 0), SECTORCRYPT_EINVAL (NULL channel, reqs or accepted).
 * THREAD SAFETY: the channel's owner (also from inside its callbacks).
 */
int sectorcrypt_channel_submit(sectorcrypt_channel *channel,
                               const struct sectorcrypt_request *reqs, size_t count,
                               size_t *accepted);

/*
 * Reaps up to `max` finished requests of the channel into out[] (ordered channels: in
 * submission order), running the callbacks of those that have one instead. The wait
 * variant first waits up to timeout_us until at least min(min_count, requests in flight)
 * are finished (polling briefly, then sleeping on the channel's eventfd). Call them
 * through sectorcrypt_channel_poll() and sectorcrypt_channel_wait().
 * RETURN VALUE: how many completions were written (callbacks run are not counted);
 * SECTORCRYPT_EINVAL (NULL channel, out NULL with max > 0, elem_size too small).
 * THREAD SAFETY: the channel's owner, not from inside its callbacks.
 */
int sectorcrypt_channel_poll_sized(sectorcrypt_channel *channel,
                                   struct sectorcrypt_completion *out, size_t max,
                                   size_t elem_size);
int sectorcrypt_channel_wait_sized(sectorcrypt_channel *channel,
                                   struct sectorcrypt_completion *out, size_t max,
                                   size_t elem_size, size_t min_count, uint64_t timeout_us);
static inline int sectorcrypt_channel_poll(sectorcrypt_channel *channel,
                                           struct sectorcrypt_completion *out, size_t max) {
  return sectorcrypt_channel_poll_sized(channel, out, max, sizeof *out);
}
static inline int sectorcrypt_channel_wait(sectorcrypt_channel *channel,
                                           struct sectorcrypt_completion *out, size_t max,
                                           size_t min_count, uint64_t timeout_us) {
  return sectorcrypt_channel_wait_sized(channel, out, max, sizeof *out, min_count, timeout_us);
}

/*
 * The channel's eventfd (nonblocking, close-on-exec, owned by the engine: do not close
 * it): readable when completions may be waiting (every completion with the
 * completion_fd option). Read it to re-arm, then reap; a wake-up may find nothing new.
 * RETURN VALUE: the descriptor; SECTORCRYPT_EINVAL (NULL channel).
 * THREAD SAFETY: any thread.
 */
int sectorcrypt_channel_fd(const sectorcrypt_channel *channel);

/* ---- zero-copy slots ---- */

/* A batch slot lent to the caller: fill data[0..bytes), submit it, and after its
 * completion read the result from data; then release it. Fixed size. */
struct sectorcrypt_slot {
  uint8_t *data;         /* the slot's pinned (CUDA) or locked memory */
  size_t capacity;       /* == the config's slot_bytes */
  uint32_t index;        /* which slot; completions name it */
  uint32_t generation;   /* which lending of it: a stale copy is refused */
  uint64_t reserved[2];  /* 0 */
};

struct sectorcrypt_slot_request {
  size_t size;                      /* set by sectorcrypt_slot_request_init() */
  sectorcrypt_key key;
  int direction;                    /* enum sectorcrypt_direction */
  struct sectorcrypt_format format;
  uint64_t start_sector;            /* 512-byte units, like a bio */
  size_t bytes;                     /* from data[0]: whole sectors, <= capacity */
  sectorcrypt_callback callback;    /* a callback, or SECTORCRYPT_REQ_POLL, or neither */
  void *user_data;
  unsigned flags;                   /* SECTORCRYPT_REQ_POLL only (a slot is always sent
                                       at once) */
};

/* Fills the first `size` bytes of *req with defaults and sets req->size. Call it through
 * sectorcrypt_slot_request_init(). */
void sectorcrypt_slot_request_init_sized(struct sectorcrypt_slot_request *req, size_t size);
static inline void sectorcrypt_slot_request_init(struct sectorcrypt_slot_request *req) {
  sectorcrypt_slot_request_init_sized(req, sizeof *req);
}

/*
 * Lends a free slot (acquire waits for one; try_acquire does not).
 *
 * RETURN VALUE: 0 and *slot set; SECTORCRYPT_ESHUTDOWN; SECTORCRYPT_EWOULDBLOCK
 * (try_acquire: every slot is in use); SECTORCRYPT_EINVAL (NULL engine or slot).
 * THREAD SAFETY: any thread; sectorcrypt_acquire_slot not from a completion callback.
 */
int sectorcrypt_acquire_slot(sectorcrypt_engine *engine, struct sectorcrypt_slot *slot);
int sectorcrypt_try_acquire_slot(sectorcrypt_engine *engine, struct sectorcrypt_slot *slot);

/*
 * Queues the lent slot's first req->bytes bytes for crypt in place. The slot stays lent:
 * after the completion the result is in slot->data.
 *
 * RETURN VALUE: 0 (one completion follows); SECTORCRYPT_EINVAL_KEY,
 * SECTORCRYPT_EINVAL_FORMAT, SECTORCRYPT_EINVAL_LENGTH (bytes 0, not whole sectors, over
 * capacity), SECTORCRYPT_EINVAL_BUFFER (not lent, already submitted, stale handle),
 * SECTORCRYPT_EWOULDBLOCK (the slot's previous polled completion is not polled yet),
 * SECTORCRYPT_ESHUTDOWN, SECTORCRYPT_EINVAL (as sectorcrypt_submit()). On error the slot
 * is still lent and its data untouched.
 * THREAD SAFETY: any thread.
 */
int sectorcrypt_submit_slot(sectorcrypt_engine *engine, const struct sectorcrypt_slot *slot,
                            const struct sectorcrypt_slot_request *req);

/*
 * Returns a lent slot to the engine (not while its request runs).
 *
 * RETURN VALUE: 0; SECTORCRYPT_EINVAL_BUFFER (not lent, still running, stale handle);
 * SECTORCRYPT_EINVAL.
 * THREAD SAFETY: any thread, including completion callbacks.
 */
int sectorcrypt_release_slot(sectorcrypt_engine *engine, const struct sectorcrypt_slot *slot);

/* ---- synchronous bulk calls ---- */

/*
 * Encrypts or decrypts `bytes` (whole sectors) from `in` to `out` (in == out: in place)
 * through the engine and returns when done.
 *
 * RETURN VALUE: 0; the validation codes of sectorcrypt_submit(); or the request's final
 * code (SECTORCRYPT_EBACKEND, SECTORCRYPT_ESHUTDOWN).
 * THREAD SAFETY: any thread except a completion callback.
 */
int sectorcrypt_crypt(sectorcrypt_engine *engine, sectorcrypt_key key, int direction,
                      const struct sectorcrypt_format *format, uint64_t start_sector,
                      const void *in, void *out, size_t bytes);

/*
 * The same between file descriptors with pread()/pwrite() (regular files and block
 * devices; in_fd == out_fd with equal offsets works in place).
 *
 * RETURN VALUE: 0; as sectorcrypt_crypt(); SECTORCRYPT_EINVAL_LENGTH for a short input;
 * SECTORCRYPT_EBACKEND for a failed read or write (sectorcrypt_last_error() names errno).
 * On error some output may have been written.
 * THREAD SAFETY: any thread except a completion callback.
 */
int sectorcrypt_crypt_fd(sectorcrypt_engine *engine, sectorcrypt_key key, int direction,
                         const struct sectorcrypt_format *format, uint64_t start_sector,
                         int in_fd, off_t in_offset, int out_fd, off_t out_offset,
                         uint64_t bytes);

/* ---- lifecycle and introspection ---- */

/*
 * Waits until every request accepted before the call has completed.
 * RETURN VALUE: 0; SECTORCRYPT_EUNAVAILABLE from a completion callback; SECTORCRYPT_EINVAL.
 * THREAD SAFETY: any thread except a completion callback.
 */
int sectorcrypt_drain(sectorcrypt_engine *engine);

/* ---- registered memory ---- */

/*
 * Registers [ptr, ptr + len) of host memory for DMA (like io_uring's fixed buffers). A
 * request whose every source and destination segment lies inside registered ranges is
 * copied by the GPU's copy engines straight from and to that memory, with no CPU copy.
 * On the cuda backend this pins the pages (cudaHostRegister, about 1-2 GB/s: register
 * once, not per request); on the CPU backend it is bookkeeping only. Destroying the
 * engine unregisters what is left.
 *
 * RETURN VALUE: 0; SECTORCRYPT_EINVAL_BUFFER (ptr NULL, or the range overlaps a
 * registered one); SECTORCRYPT_EINVAL_LENGTH (len 0); SECTORCRYPT_ENOMEM (all
 * registration_capacity ranges in use); SECTORCRYPT_EBACKEND (the driver refused to pin).
 * THREAD SAFETY: any thread except a completion callback.
 */
int sectorcrypt_register_memory(sectorcrypt_engine *engine, void *ptr, size_t len);

/*
 * Unregisters the range sectorcrypt_register_memory() started at ptr. A request holds the
 * ranges it lies in from acceptance until its callback has returned (or its completion
 * is posted), so after 0 no request uses the memory.
 *
 * RETURN VALUE: 0; SECTORCRYPT_EINVAL_BUFFER (no range starts at ptr);
 * SECTORCRYPT_EWOULDBLOCK (unfinished requests use it; it stays registered: retry).
 * THREAD SAFETY: any thread except a completion callback.
 */
int sectorcrypt_unregister_memory(sectorcrypt_engine *engine, void *ptr);

/*
 * Stops admitting requests (later submits, on channels too, and channel opens:
 * SECTORCRYPT_ESHUTDOWN); requests in flight complete (a channel's are still reaped by
 * its poll or wait, each exactly once). Idempotent.
 * RETURN VALUE: 0; SECTORCRYPT_EINVAL (NULL engine).
 * THREAD SAFETY: any thread.
 */
int sectorcrypt_shutdown(sectorcrypt_engine *engine);

struct sectorcrypt_stats {
  uint64_t bytes;            /* bytes completed successfully */
  uint64_t requests;         /* requests completed (any status) */
  uint64_t requests_failed;
  uint64_t batches;
  uint64_t would_block;      /* SECTORCRYPT_EWOULDBLOCK answers */
  uint64_t latency_p50_ns;   /* accept to completion, bucket upper bounds */
  uint64_t latency_p99_ns;
  /* appended after the first layout: */
  uint64_t submit_waits;     /* submit/acquire calls that had to wait */
  uint64_t submit_wait_ns;   /* the time they waited */
  uint64_t backend_failures; /* batches the backend failed (before any CPU fallback) */
  uint64_t cpu_fallbacks;    /* of those, batches re-run on the CPU */
  uint64_t callback_exceptions; /* C++ callbacks that threw (caught) */
  uint64_t memory_locked;    /* 1: slot memory is pinned or mlock'ed */
  uint64_t registered_requests; /* accepted requests wholly in registered memory */
  uint64_t device_requests;  /* accepted SECTORCRYPT_REQ_DEVICE requests */
  uint64_t gpu_bytes;        /* bytes the GPU crypted (cuda; hybrid's GPU side) */
  uint64_t channel_requests; /* requests accepted on channels */
  uint64_t inline_requests;  /* channel requests and sectorcrypt_crypt() calls crypted on
                                the calling thread */
};

/* Fills the first `size` bytes of *out. Call it through sectorcrypt_get_stats().
 * RETURN VALUE: 0; SECTORCRYPT_EINVAL (NULL, size 0). THREAD SAFETY: any thread. */
int sectorcrypt_get_stats_sized(const sectorcrypt_engine *engine, struct sectorcrypt_stats *out,
                                size_t size);
static inline int sectorcrypt_get_stats(const sectorcrypt_engine *engine,
                                        struct sectorcrypt_stats *out) {
  return sectorcrypt_get_stats_sized(engine, out, sizeof *out);
}

/* The configuration create resolved: threads and request_capacity as started (never 0),
 * backend SECTORCRYPT_BACKEND_CPU or _CUDA, everything else as given; out->size = size.
 * Call it through sectorcrypt_get_config().
 * RETURN VALUE: 0 and *out filled; SECTORCRYPT_EINVAL (NULL, size smaller than the first
 * layout's). THREAD SAFETY: any thread. */
int sectorcrypt_get_config_sized(const sectorcrypt_engine *engine, struct sectorcrypt_config *out,
                                 size_t size);
static inline int sectorcrypt_get_config(const sectorcrypt_engine *engine,
                                         struct sectorcrypt_config *out) {
  return sectorcrypt_get_config_sized(engine, out, sizeof *out);
}

/* The backend create resolved to, e.g. "cpu (AVX3_ZEN4), 4 threads"; valid while the
 * engine lives. THREAD SAFETY: any thread. */
const char *sectorcrypt_backend_detail(const sectorcrypt_engine *engine);

/* ---- errors and version ---- */

/* A static English description of a return code ("would block: ..."); never NULL.
 * THREAD SAFETY: any thread. */
const char *sectorcrypt_strerror(int code);

/* The detailed message of the calling thread's last failed call (thread-local storage,
 * valid until the thread's next call); "" when none failed. THREAD SAFETY: any thread. */
const char *sectorcrypt_last_error(void);

/* The running library's version: "0.2.0", and its parts (compare with the
 * SECTORCRYPT_VERSION_* macros of the header a program was built with).
 * sectorcrypt_check_version() is nonzero when the running library can serve a program
 * built against major.minor (same major; for 0.x the same minor, else at least it).
 * THREAD SAFETY: any thread. */
const char *sectorcrypt_version(void);
int sectorcrypt_major_version(void);
int sectorcrypt_minor_version(void);
int sectorcrypt_patch_version(void);
int sectorcrypt_check_version(int major, int minor);

#ifdef __cplusplus
}
#endif

#endif /* SECTORCRYPT_H */
