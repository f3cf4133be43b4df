/* A C program against an installed sectorcrypt: encrypts IEEE 1619-2007 vector 10
 * (XTS-AES-256, one 512-byte sector, sector number 255) through the C API, both with the
 * synchronous call and with an asynchronous request completed through poll, checks the
 * ciphertext, decrypts it back, and prints "ok". Usage: example VECTOR_FILE */
#include <sectorcrypt.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { kMaxBytes = 512 };

struct vector {
  unsigned char key[64];
  size_t key_len;
  unsigned long long sector;
  unsigned char pt[kMaxBytes], ct[kMaxBytes];
  size_t len;
};

static size_t unhex(const char *s, unsigned char *out, size_t max) {
  size_t n = 0;
  while (n < max && s[0] && s[1] && s[0] != '\n') {
    unsigned v;
    if (sscanf(s, "%2x", &v) != 1) break;
    out[n++] = (unsigned char)v;
    s += 2;
  }
  return n;
}

/* Reads the block "vector = <number>" from the IEEE 1619 transcription. */
static int read_vector(const char *path, int number, struct vector *v) {
  static char line[8192];
  FILE *f = fopen(path, "r");
  int in_block = 0, fields = 0;
  if (!f) return -1;
  while (fgets(line, sizeof line, f)) {
    int n;
    if (sscanf(line, "vector = %d", &n) == 1) in_block = (n == number);
    if (!in_block) continue;
    if (strncmp(line, "key = ", 6) == 0) { v->key_len = unhex(line + 6, v->key, 64); ++fields; }
    if (sscanf(line, "sector = %llu", &v->sector) == 1) ++fields;
    if (strncmp(line, "pt = ", 5) == 0) { v->len = unhex(line + 5, v->pt, kMaxBytes); ++fields; }
    if (strncmp(line, "ct = ", 5) == 0) { unhex(line + 5, v->ct, kMaxBytes); ++fields; }
  }
  fclose(f);
  return fields == 4 ? 0 : -1;
}

static int check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s: %s (%s)\n", what, sectorcrypt_strerror(rc), sectorcrypt_last_error());
    exit(1);
  }
  return rc;
}

int main(int argc, char **argv) {
  struct vector v;
  struct sectorcrypt_config cfg;
  struct sectorcrypt_format fmt;
  struct sectorcrypt_request req;
  struct sectorcrypt_completion done;
  sectorcrypt_engine *engine = NULL;
  sectorcrypt_key key;
  unsigned char out[kMaxBytes], back[kMaxBytes];
  struct iovec src, dst;

  if (!sectorcrypt_check_version(SECTORCRYPT_VERSION_MAJOR, SECTORCRYPT_VERSION_MINOR)) {
    fprintf(stderr, "built against sectorcrypt %s, running %s\n", SECTORCRYPT_VERSION_STRING,
            sectorcrypt_version());
    return 1;
  }
  if (argc != 2 || read_vector(argv[1], 10, &v) != 0 || v.len != 512) {
    fprintf(stderr, "usage: %s ieee1619-2007.txt (vector 10 not found)\n", argv[0]);
    return 2;
  }
  sectorcrypt_config_init(&cfg);
  cfg.backend = SECTORCRYPT_BACKEND_CPU;
  cfg.threads = 1;
  check(sectorcrypt_create(&cfg, &engine), "create");
  check(sectorcrypt_add_key(engine, v.key, v.key_len, 0, &key), "add_key");
  sectorcrypt_format_init(&fmt); /* 512-byte sectors, plain64: the IV is the sector number */

  /* Synchronous. */
  check(sectorcrypt_crypt(engine, key, SECTORCRYPT_ENCRYPT, &fmt, v.sector, v.pt, out, v.len), "crypt");
  if (memcmp(out, v.ct, v.len) != 0) { fprintf(stderr, "sync ciphertext differs\n"); return 1; }

  /* Asynchronous, completion through poll. */
  memset(out, 0, sizeof out);
  src.iov_base = v.pt; src.iov_len = v.len;
  dst.iov_base = out; dst.iov_len = v.len;
  sectorcrypt_request_init(&req);
  req.key = key;
  req.format = fmt;
  req.start_sector = v.sector;
  req.src = &src; req.src_count = 1;
  req.dst = &dst; req.dst_count = 1;
  req.user_data = &v;
  req.flags = SECTORCRYPT_REQ_POLL | SECTORCRYPT_REQ_FLUSH;
  check(sectorcrypt_submit(engine, &req), "submit");
  if (check(sectorcrypt_wait(engine, &done, 1, 10u * 1000 * 1000), "wait") != 1 ||
      done.status != 0 || done.user_data != &v || strcmp(done.message, "ok") != 0 ||
      memcmp(out, v.ct, v.len) != 0) {
    fprintf(stderr, "async completion wrong\n");
    return 1;
  }

  check(sectorcrypt_crypt(engine, key, SECTORCRYPT_DECRYPT, &fmt, v.sector, out, back, v.len), "decrypt");
  if (memcmp(back, v.pt, v.len) != 0) { fprintf(stderr, "decryption differs\n"); return 1; }

  check(sectorcrypt_remove_key(engine, key), "remove_key");
  sectorcrypt_destroy(engine);
  printf("ok: sectorcrypt %s, IEEE 1619 vector 10 through the C API\n", sectorcrypt_version());
  return 0;
}
