/* A C caller built against an older layout of the growable structs, run against the
 * shared library as it is now. struct old_config and struct old_stats are the first
 * layouts of struct sectorcrypt_config and struct sectorcrypt_stats, written out here as
 * an older sectorcrypt.h declared them, and passed with their own sizes exactly as that
 * header's inline wrappers (sectorcrypt_config_init(), sectorcrypt_get_stats(), ...)
 * pass sizeof. The library must fill and read only those bytes, give the members appended
 * since their defaults, and serve requests as usual. Prints "ok" and exits 0, or names
 * what went wrong and exits 1. */
#include <sectorcrypt.h>

#include <stdio.h>
#include <string.h>

struct old_config {
  size_t size;
  int backend;
  unsigned threads;
  size_t slot_count;
  size_t slot_bytes;
  size_t request_capacity;
  size_t key_capacity;
  uint32_t flush_deadline_us;
  int require_locked_memory;
  int gpu_ordinal;
  uint32_t idle_spin_us;
  int cpu_fallback;
  int idle_flush;
};

struct old_stats {
  uint64_t bytes;
  uint64_t requests;
  uint64_t requests_failed;
  uint64_t batches;
  uint64_t would_block;
  uint64_t latency_p50_ns;
  uint64_t latency_p99_ns;
};

/* An old struct followed by bytes the library must never touch. */
#define GUARD_BYTES 64
#define GUARD 0xa5
struct guarded_config {
  struct old_config c;
  unsigned char guard[GUARD_BYTES];
};
struct guarded_stats {
  struct old_stats s;
  unsigned char guard[GUARD_BYTES];
};

static int failures;

static void expect(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "FAIL: %s (last error: %s)\n", what, sectorcrypt_last_error());
    ++failures;
  }
}

static int guard_intact(const unsigned char *g) {
  int i;
  for (i = 0; i < GUARD_BYTES; ++i) {
    if (g[i] != GUARD) return 0;
  }
  return 1;
}

static void on_done(int status, const char *message, void *user_data) {
  int *done = (int *)user_data;
  *done = (status == SECTORCRYPT_OK && strcmp(message, "ok") == 0) ? 1 : -1;
}

int main(void) {
  struct guarded_config cfg, got;
  struct guarded_stats st;
  struct sectorcrypt_config now;
  struct sectorcrypt_request req;
  struct sectorcrypt_format fmt;
  struct iovec seg;
  sectorcrypt_engine *engine = NULL;
  sectorcrypt_key key = 0;
  unsigned char raw_key[64], data[4096], copy[4096];
  int done = 0;
  int i;

  for (i = 0; i < 64; ++i) raw_key[i] = (unsigned char)(i * 7 + 1);
  for (i = 0; i < 4096; ++i) data[i] = (unsigned char)i;
  memcpy(copy, data, sizeof data);

  memset(&cfg, GUARD, sizeof cfg);
  sectorcrypt_config_init_sized((struct sectorcrypt_config *)&cfg.c, sizeof cfg.c);
  expect(guard_intact(cfg.guard), "config_init wrote past the old config");
  expect(cfg.c.size == sizeof cfg.c, "config_init set size");
  expect(cfg.c.slot_count == 8 && cfg.c.idle_flush == 1, "config_init gave the defaults");
  cfg.c.backend = SECTORCRYPT_BACKEND_CPU;
  cfg.c.threads = 1;
  cfg.c.idle_spin_us = 0;
  expect(sectorcrypt_create((const struct sectorcrypt_config *)&cfg.c, &engine) == SECTORCRYPT_OK,
         "create from the old config");
  if (engine == NULL) return 1;

  memset(&got, GUARD, sizeof got);
  expect(sectorcrypt_get_config_sized(engine, (struct sectorcrypt_config *)&got.c, sizeof got.c) ==
             SECTORCRYPT_OK, "get_config into the old config");
  expect(guard_intact(got.guard), "get_config wrote past the old config");
  expect(got.c.threads == 1 && got.c.size == sizeof got.c, "get_config filled the old config");
  /* Seen through the current layout, the appended members hold their defaults. */
  expect(sectorcrypt_get_config(engine, &now) == SECTORCRYPT_OK, "get_config");
  expect(now.gpu_aes == SECTORCRYPT_GPU_AES_CONSTANT_TIME && now.max_parts_per_batch == 256,
         "appended members took their defaults");

  expect(sectorcrypt_add_key(engine, raw_key, sizeof raw_key, 0, &key) == SECTORCRYPT_OK, "add_key");
  seg.iov_base = data;
  seg.iov_len = sizeof data;
  sectorcrypt_request_init(&req);
  req.key = key;
  req.src = &seg;
  req.src_count = 1;
  req.callback = on_done;
  req.user_data = &done;
  req.flags = SECTORCRYPT_REQ_FLUSH;
  expect(sectorcrypt_submit(engine, &req) == SECTORCRYPT_OK, "submit");
  expect(sectorcrypt_drain(engine) == SECTORCRYPT_OK, "drain");
  expect(done == 1, "the callback ran once with status 0 and message \"ok\"");
  memset(&st, GUARD, sizeof st);
  expect(sectorcrypt_get_stats_sized(engine, (struct sectorcrypt_stats *)&st.s, sizeof st.s) ==
             SECTORCRYPT_OK, "get_stats into the old stats");
  expect(guard_intact(st.guard), "get_stats wrote past the old stats");
  expect(st.s.requests == 1 && st.s.bytes == sizeof data, "old stats filled");

  sectorcrypt_format_init(&fmt);
  expect(sectorcrypt_crypt(engine, key, SECTORCRYPT_DECRYPT, &fmt, 0, data, data, sizeof data) ==
             SECTORCRYPT_OK, "decrypt");
  expect(memcmp(data, copy, sizeof data) == 0, "round trip");

  sectorcrypt_destroy(engine);
  if (failures != 0) return 1;
  printf("ok: old layouts (config %u bytes, stats %u bytes) against library %s\n",
         (unsigned)sizeof(struct old_config), (unsigned)sizeof(struct old_stats), sectorcrypt_version());
  return 0;
}
