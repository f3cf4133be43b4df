// LD_PRELOAD shim for the crash tests: lets a real `sectorcrypt` process write a given
// number of bytes to one file, then fails the next write (EIO or ENOSPC) or tears it and
// kills the process, as a failing disk, a full disk or a power cut would. pwrite() is what
// sectorcrypt uses; write() is libcryptsetup's (a header it rewrites).
//   SECTORCRYPT_TEST_FAULT_PATH    the file (its path ends with this)
//   SECTORCRYPT_TEST_FAULT_AFTER   bytes written to it before the fault
//   SECTORCRYPT_TEST_FAULT_ACTION  eio | enospc | kill (default eio)
//   SECTORCRYPT_TEST_FAULT_GRAIN   a torn write stops at a multiple of this (default 4096,
//                                  a page: the unit a killed write is cut at)
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

typedef ssize_t (*pwrite_fn)(int, const void*, size_t, off_t);

static atomic_llong written;

static int is_target(int fd) {
  const char* want = getenv("SECTORCRYPT_TEST_FAULT_PATH");
  if (want == NULL || *want == '\0') return 0;
  char link[64], path[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const ssize_t n = readlink(link, path, sizeof path - 1);
  if (n <= 0) return 0;
  path[n] = '\0';
  const size_t lw = strlen(want), lp = (size_t)n;
  return lp >= lw && strcmp(path + lp - lw, want) == 0;
}

static ssize_t faulty_pwrite(pwrite_fn real, int fd, const void* buf, size_t count, off_t off) {
  if (!is_target(fd)) return real(fd, buf, count, off);
  const char* after_text = getenv("SECTORCRYPT_TEST_FAULT_AFTER");
  const long long after = after_text ? atoll(after_text) : 0;
  const long long before = atomic_fetch_add(&written, (long long)count);
  if (before + (long long)count <= after) return real(fd, buf, count, off);
  const char* action = getenv("SECTORCRYPT_TEST_FAULT_ACTION");
  const char* grain_text = getenv("SECTORCRYPT_TEST_FAULT_GRAIN");
  long long grain = grain_text ? atoll(grain_text) : 4096;
  if (grain < 1) grain = 1;
  long long part = after > before ? after - before : 0;
  part -= (off + part) % grain;  // end the torn part on a grain boundary of the file
  if (part < 0) part = 0;
  if (part > 0) (void)real(fd, buf, (size_t)part, off);
  if (action != NULL && strcmp(action, "kill") == 0) raise(SIGKILL);
  if (part > 0) return part;  // a short write; the next call fails
  errno = action != NULL && strcmp(action, "enospc") == 0 ? ENOSPC : EIO;
  return -1;
}

ssize_t pwrite(int fd, const void* buf, size_t count, off_t off) {
  static pwrite_fn real;
  if (real == NULL) real = (pwrite_fn)dlsym(RTLD_NEXT, "pwrite");
  return faulty_pwrite(real, fd, buf, count, off);
}

ssize_t pwrite64(int fd, const void* buf, size_t count, off_t off) {
  static pwrite_fn real;
  if (real == NULL) real = (pwrite_fn)dlsym(RTLD_NEXT, "pwrite64");
  return faulty_pwrite(real, fd, buf, count, off);
}

// write() at the file position: the torn part goes through the real write(), which moves
// the position as the call would have.
static ssize_t (*real_write)(int, const void*, size_t);

static ssize_t write_at_position(int fd, const void* buf, size_t count, off_t off) {
  (void)off;
  return real_write(fd, buf, count);
}

ssize_t write(int fd, const void* buf, size_t count) {
  if (real_write == NULL) real_write = (ssize_t(*)(int, const void*, size_t))dlsym(RTLD_NEXT, "write");
  if (!is_target(fd)) return real_write(fd, buf, count);
  return faulty_pwrite(write_at_position, fd, buf, count, lseek(fd, 0, SEEK_CUR));
}
