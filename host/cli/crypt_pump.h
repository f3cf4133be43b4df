// Streams an area of sectors from a file descriptor through the engine's zero-copy slots
// to another: read into a lent slot, submit it, write results back in order, several
// slots in flight. Memory stays at the engine's slots for any input size. Works on pipes
// (sequential read()/write()) as well as files and devices (pread()/pwrite()), which is
// why the CLI does not use Engine::crypt_fd (positional only, no progress, no stop).
#pragma once

#include <cstdint>
#include <optional>

#include "engine/engine.h"

namespace sectorcrypt::cli {

class Progress;

struct PumpEnd {
  int fd = -1;
  bool positional = false;  // pread/pwrite at offset + position; else read/write
  uint64_t offset = 0;      // byte offset of the area (positional only)
};

// A second crypt of each chunk after the first, with another key (a change of volume key:
// decrypt with the old, encrypt with the new, in one pass). Same sector format.
struct SecondCrypt {
  KeyHandle key;
  Direction dir = Direction::encrypt;
  uint64_t iv_sector = 0;          // 512-byte IV sector of the area's first byte
};

struct PumpJob {
  Engine* engine = nullptr;
  KeyHandle key;
  Direction dir = Direction::encrypt;
  SectorFormat format;
  uint64_t iv_sector = 0;          // 512-byte sector number of the first sector (--skip)
  std::optional<uint64_t> bytes;   // exact length; unset: until end of input
  uint64_t progress_base = 0;      // bytes done before this part (a run in several parts)
  bool last_part = true;           // finish the progress line at the end
  std::optional<SecondCrypt> then; // applied on this thread after the engine's crypt
};

struct PumpResult {
  uint64_t bytes_done = 0;   // written to the output, in order from the start
  bool interrupted = false;  // stopped by SIGINT/SIGTERM
};

// Throws Error (naming how many bytes were written) on a read/write/engine failure.
PumpResult run_pump(const PumpJob& job, const PumpEnd& in, const PumpEnd& out,
                    Progress* progress);

// Reads and discards `bytes` from a sequential input (--offset on a pipe). Returns false
// when interrupted; throws Error at end of input.
bool skip_input(int fd, uint64_t bytes, const char* name);

}  // namespace sectorcrypt::cli
