// Timing helpers shared by `sectorcrypt bench` and `sectorcrypt compare`: page-aligned
// random buffers, timed loops with per-call latencies, the engine with several requests
// in flight, and the peers run sector by sector with dm-crypt's IVs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "host/cli/engine_paths.h"
#include "host/peer_ciphers.h"

namespace sectorcrypt::cli {

struct FreeDeleter {
  void operator()(uint8_t* p) const;
};
using Buffer = std::unique_ptr<uint8_t[], FreeDeleter>;
// Page-aligned, filled with a deterministic pseudo-random pattern (every page touched).
Buffer make_buffer(std::size_t bytes, uint64_t seed);

struct Samples {
  uint64_t calls = 0;
  uint64_t bytes = 0;
  double seconds = 0;
  std::vector<double> latency_us;  // one per call/request (capped)
  double mib_per_s() const;
  double quantile_us(double q) const;
};

// Calls fn (one call processes bytes_per_call) until `seconds` have passed (at least
// twice; one untimed warm-up call first).
Samples time_calls(double seconds, std::size_t bytes_per_call, const std::function<void()>& fn);

// Keeps `depth` requests of `batch` bytes in flight over the path's buffers, for
// `seconds`. Latency: submit to completion.
Samples time_engine_in_flight(Engine& engine, PathBuffers& buffers, KeyHandle key, Direction dir,
                              const SectorFormat& format, std::size_t batch, std::size_t depth,
                              double seconds);

// A peer over a run of sectors, IV per sector as dm-crypt sets it. Throws on refusal.
void peer_crypt_sectors(peers::XtsPeer& peer, const SectorFormat& format, uint64_t start_sector,
                        const uint8_t* in, uint8_t* out, std::size_t bytes);

enum class PeerKind { openssl, libgcrypt };
const char* peer_name(PeerKind kind);  // "openssl", "libgcrypt"
std::unique_ptr<peers::XtsPeer> make_peer(PeerKind kind, const uint8_t* key, std::size_t len,
                                          Direction dir);

}  // namespace sectorcrypt::cli
