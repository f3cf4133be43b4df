// `sectorcrypt compare`: the CPU/GPU comparison run. The same workload on every usable
// engine backend over a sweep of batch sizes, outputs verified byte for byte across the
// backends and against the peers, throughput (several requests in flight) and latency
// (one at a time) side by side, and the batch size where one overtakes another.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <new>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine.h"
#include "host/cli/bench_measure.h"
#include "host/cli/cli_common.h"
#include "host/cli/engine_paths.h"
#include "host/cli/commands.h"
#include "host/cli/cpu_features.h"
#include "host/cli/svg_plot.h"
#include "engine/gpu_devices.h"
#include "kernels/cpu/xts_cpu.h"

namespace sectorcrypt::cli {
namespace {

struct CompareOptions {
  std::vector<std::string> backends;  // engine backends; empty: every usable one
  std::vector<std::string> peers{"openssl", "libgcrypt"};
  std::vector<std::string> batch_sizes{"4K", "16K", "64K", "256K", "1M", "4M", "16M"};
  std::string cipher = "aes-xts-plain64";
  unsigned key_size = 512;
  uint32_t sector_size = 512;
  std::string direction = "encrypt";
  double seconds = 0.2;
  std::size_t depth = 4;
  std::string gpus;  // --gpus: "" GPU 0, "all", or "0,1"
  unsigned threads = 0;
  uint32_t idle_spin_us = EngineConfig{}.idle_spin_us;
  std::size_t slots = 8;
  std::string slot_size = "auto";  // the backend's default
  std::string json_path, plot_path;
};

struct Cell {
  double mib_s = 0;       // throughput
  double lat_p50_us = 0;  // one request at a time
  double lat_p99_us = 0;
  bool identical = true;  // output equals the reference
};

struct Subject {
  std::string name, kind, detail;
  std::unique_ptr<Engine> engine;
  DataPath path = DataPath::copy;
  std::unique_ptr<PathBuffers> buffers;  // before `engine` goes: declared after it
  KeyHandle key;
  std::unique_ptr<peers::XtsPeer> peer;
  std::vector<Cell> cells;  // per batch size
};

// The throughput column: as wide as its heading.
std::size_t column_width(const Subject& s) {
  return std::max<std::size_t>(s.engine ? 10 : 14, s.name.size() + 6);
}

// Where `a` and `b` swap places, reading the sweep from small to large batches.
nlohmann::json crossover(const Subject& a, const Subject& b, const std::vector<uint64_t>& sizes,
                         std::string* summary) {
  nlohmann::json j{{"a", a.name}, {"b", b.name}};
  std::vector<std::string> leader;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    leader.push_back(a.cells[i].mib_s >= b.cells[i].mib_s ? a.name : b.name);
  }
  j["leader_by_batch"] = leader;
  j["crossover_bytes"] = nullptr;
  std::string s;
  for (std::size_t i = 1; i < sizes.size(); ++i) {
    if (leader[i] != leader[i - 1]) {
      if (j["crossover_bytes"].is_null()) j["crossover_bytes"] = sizes[i];
      s += fmt::format("{}{} overtakes {} at {}", s.empty() ? "" : "; ", leader[i],
                       leader[i] == a.name ? b.name : a.name, format_bytes(sizes[i]));
    }
  }
  if (s.empty()) {
    s = fmt::format("{} is faster than {} at every batch size from {} to {} (no crossover)",
                    leader[0], leader[0] == a.name ? b.name : a.name, format_bytes(sizes.front()),
                    format_bytes(sizes.back()));
  }
  j["summary"] = s;
  *summary = s;
  return j;
}

SectorFormat compare_format(const CompareOptions& o) {
  SectorFormat format;
  format.sector_size = o.sector_size;
  format.iv_mode = parse_cipher(o.cipher);
  return format;
}

Direction compare_direction(const CompareOptions& o) {
  if (o.direction == "decrypt") return Direction::decrypt;
  if (o.direction != "encrypt") fail("--direction must be encrypt or decrypt");
  return Direction::encrypt;
}

// --batch-sizes in bytes, each a whole number of sectors (o.sector_size must be valid),
// sorted, without repeats.
std::vector<uint64_t> compare_batch_sizes(const CompareOptions& o) {
  std::vector<uint64_t> sizes;
  for (const auto& s : o.batch_sizes) {
    const uint64_t b = parse_size(s);
    if (b == 0 || b % o.sector_size != 0) {
      fail("batch size {} is not a whole number of {}-byte sectors", s, o.sector_size);
    }
    sizes.push_back(b);
  }
  std::sort(sizes.begin(), sizes.end());
  sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
  if (sizes.empty()) fail("--batch-sizes is empty");
  return sizes;
}

// Everything refused before a GPU is looked for, an engine started or a buffer allocated;
// the backend and peer names are checked by run_compare as it sets each one up.
void check_compare_options(const CompareOptions& o) {
  check(validate_format(compare_format(o)), "--sector-size");
  if (o.key_size != 256 && o.key_size != 512) fail("--key-size must be 256 or 512");
  (void)compare_direction(o);
  if (o.depth == 0 || o.depth > 64) fail("--depth must be 1..64");
  check_measure_seconds(o.seconds);
  (void)compare_batch_sizes(o);
  if (o.slot_size != "auto") (void)parse_size(o.slot_size);
  check_idle_spin(o.idle_spin_us);
}

int run_compare(const CompareOptions& o) {
  check_compare_options(o);
  const SectorFormat format = compare_format(o);
  const Direction dir = compare_direction(o);
  const std::vector<uint64_t> sizes = compare_batch_sizes(o);
  const uint64_t max_batch = sizes.back();
  const uint64_t slot_bytes = o.slot_size == "auto" ? 0 : parse_size(o.slot_size);

  const GpuInventory gpus = discover_gpus();
  std::vector<std::string> backends = o.backends;
  if (backends.empty()) {
    backends.push_back("cpu");
    if (gpus.usable()) {
      for (const auto& n : gpu_subject_names()) backends.push_back(n);
    }
  }
  KeyBytes key;
  make_bench_key(o.key_size / 8, &key);

  std::vector<Subject> subjects;
  for (const auto& n : backends) {
    Subject s;
    s.name = n;
    s.kind = "engine";
    EngineConfig cfg;
    parse_engine_subject(n, &cfg.backend, &s.path);
    apply_gpus(o.gpus, &cfg);
    cfg.threads = o.threads;
    cfg.idle_spin_us = o.idle_spin_us;
    cfg.slot_count = o.slots;
    cfg.slot_bytes = slot_bytes;
    if (cfg.backend == BackendKind::hybrid) {  // a slot per core beside the GPU's
      cfg.slot_count = std::max<std::size_t>(o.slots, 8 + std::thread::hardware_concurrency());
    }
    if (s.path == DataPath::slots) {  // every batch is one lent slot, depth of them at once
      const uint64_t need = (max_batch + 4095) / 4096 * 4096;
      cfg.slot_bytes = std::max<uint64_t>(slot_bytes != 0 ? slot_bytes : kCudaSlotBytes, need);
      cfg.slot_count = std::max(o.slots, o.depth + 1);
    }
    const Status st = Engine::create(cfg, &s.engine);
    if (!st.ok() && st.code() == Errc::unavailable) fail("backend {}: {}", n, st.message());
    check(st, "cannot start the " + n + " engine");
    check(s.engine->add_key(key.data(), key.size(), {}, &s.key), "key");
    s.buffers = std::make_unique<PathBuffers>(*s.engine, s.path, max_batch, o.depth);
    s.detail = s.engine->backend_detail();
    subjects.push_back(std::move(s));
  }
  for (const auto& n : o.peers) {
    if (n == "none") continue;
    Subject s;
    s.name = n;
    s.kind = "peer";
    if (n == "openssl") {
      s.peer = make_peer(PeerKind::openssl, key.data(), key.size(), dir);
      s.detail = peers::openssl_version() + ", one thread";
    } else if (n == "libgcrypt") {
      s.peer = make_peer(PeerKind::libgcrypt, key.data(), key.size(), dir);
      s.detail = "libgcrypt " + peers::libgcrypt_version() + ", one thread";
    } else {
      fail("unknown peer '{}' (openssl, libgcrypt, none)", n);
    }
    subjects.push_back(std::move(s));
  }

  std::printf("# sectorcrypt %s compare: %s, %u-bit key, %u-byte sectors, %s; throughput with %zu "
              "requests in flight, latency one at a time; %.2f s per measurement\n",
              version(), o.cipher.c_str(), o.key_size, o.sector_size, o.direction.c_str(), o.depth,
              o.seconds);
  if (!gpus.usable()) std::printf("# no GPU is usable: %s\n", gpus.why_none.c_str());
  for (const auto& s : subjects) std::printf("# %-10s %s\n", s.name.c_str(), s.detail.c_str());

  // One input for everything: the reference output for each batch size comes from the
  // first peer (OpenSSL by default) or else the first backend.
  Buffer input = make_buffer(max_batch, 42);
  Buffer expect = make_buffer(max_batch, 0);
  Buffer got = make_buffer(max_batch, 0);
  const uint64_t start_sector = 0;

  std::string header = fmt::format("{:>8}", "batch");
  for (const auto& s : subjects) {
    const std::size_t w = column_width(s);
    header += s.engine ? fmt::format(" | {:>{}} {:>9} {:>9}", s.name + " MiB/s", w, "p50 us", "p99 us")
                       : fmt::format(" | {:>{}} {:>9}", s.name + " MiB/s", w, "p50 us");
  }
  std::printf("%s\n", header.c_str());
  std::fflush(stdout);

  bool all_identical = true;
  std::vector<std::string> mismatches;
  for (uint64_t batch : sizes) {
    // Verify: every subject's output for this batch against the reference.
    Subject* ref = &subjects.front();
    for (auto& s : subjects) {
      if (s.peer) {
        ref = &s;
        break;
      }
    }
    auto run_once = [&](Subject& s, uint8_t* out) {
      if (s.engine && s.path != DataPath::copy) {
        s.buffers->crypt_once(s.key, dir, format, start_sector, input.get(), out, batch);
      } else if (s.engine) {
        check(s.engine->crypt_sync(s.key, dir, format, start_sector, input.get(), out, batch), s.name);
      } else {
        peer_crypt_sectors(*s.peer, format, start_sector, input.get(), out, batch);
      }
    };
    run_once(*ref, expect.get());
    std::string row = fmt::format("{:>8}", format_size_short(batch));
    for (auto& s : subjects) {
      Cell c;
      run_once(s, got.get());
      c.identical = std::memcmp(got.get(), expect.get(), batch) == 0;
      if (!c.identical) {
        all_identical = false;
        mismatches.push_back(fmt::format("{} differs from {} at batch {}", s.name, ref->name,
                                         format_bytes(batch)));
      }
      if (s.engine) {
        Engine* e = s.engine.get();
        uint8_t* in = input.get();
        uint8_t* out = got.get();
        const KeyHandle k = s.key;
        PathBuffers* pb = s.buffers.get();
        const bool copy = s.path == DataPath::copy;
        const Samples lat = time_calls(o.seconds, batch, [=] {
          if (copy) {
            check(e->crypt_sync(k, dir, format, start_sector, in, out, batch), "engine");
          } else {
            pb->run_one(k, dir, format, batch);
          }
        });
        c.lat_p50_us = lat.quantile_us(0.5);
        c.lat_p99_us = lat.quantile_us(0.99);
        // Throughput: depth buffers in place (contents don't matter for the timing).
        const Samples thr = time_engine_in_flight(*e, *pb, k, dir, format, batch, o.depth,
                                                  o.seconds);
        c.mib_s = thr.mib_per_s();
        row += fmt::format(" | {:>{}.1f} {:>9.1f} {:>9.1f}", c.mib_s, column_width(s), c.lat_p50_us,
                           c.lat_p99_us);
      } else {
        peers::XtsPeer* p = s.peer.get();
        uint8_t* in = input.get();
        uint8_t* out = got.get();
        const Samples t = time_calls(o.seconds, batch, [=] {
          peer_crypt_sectors(*p, format, start_sector, in, out, batch);
        });
        c.mib_s = t.mib_per_s();
        c.lat_p50_us = t.quantile_us(0.5);
        c.lat_p99_us = t.quantile_us(0.99);
        row += fmt::format(" | {:>{}.1f} {:>9.1f}", c.mib_s, column_width(s), c.lat_p50_us);
      }
      s.cells.push_back(c);
    }
    std::printf("%s\n", row.c_str());
    std::fflush(stdout);
  }

  std::string names;
  for (const auto& s : subjects) names += (names.empty() ? "" : ", ") + s.name;
  if (all_identical) {
    std::printf("verified: outputs byte-identical across %s at all %zu batch sizes\n",
                names.c_str(), sizes.size());
  } else {
    for (const auto& m : mismatches) std::printf("MISMATCH: %s\n", m.c_str());
  }

  // Crossovers: every engine backend against every other subject.
  nlohmann::json crossovers = nlohmann::json::array();
  for (std::size_t i = 0; i < subjects.size(); ++i) {
    if (!subjects[i].engine) continue;
    for (std::size_t k = i + 1; k < subjects.size(); ++k) {
      std::string summary;
      crossovers.push_back(crossover(subjects[i], subjects[k], sizes, &summary));
      std::printf("crossover %s vs %s: %s\n", subjects[i].name.c_str(), subjects[k].name.c_str(),
                  summary.c_str());
    }
  }
  if (subjects.size() == 1) std::printf("crossover: only one backend; nothing to compare\n");

  if (!o.json_path.empty()) {
    nlohmann::json j;
    j["tool"] = "sectorcrypt compare";
    j["version"] = version();
    j["cipher"] = o.cipher;
    j["key_bits"] = o.key_size;
    j["sector_size"] = o.sector_size;
    j["direction"] = o.direction;
    j["depth"] = o.depth;
    j["seconds_per_measurement"] = o.seconds;
    j["batch_sizes"] = sizes;
    j["cpu"] = {{"model", cpu_model_name()}, {"implementation", cpu::selected_implementation()}};
    j["gpu_usable"] = gpus.usable();
    if (!gpus.usable()) j["gpu_why_none"] = gpus.why_none;
    j["verified_identical"] = all_identical;
    j["mismatches"] = mismatches;
    j["backends"] = nlohmann::json::array();
    for (const auto& s : subjects) {
      nlohmann::json b{{"name", s.name}, {"kind", s.kind}, {"detail", s.detail}};
      b["results"] = nlohmann::json::array();
      for (std::size_t i = 0; i < sizes.size(); ++i) {
        const Cell& c = s.cells[i];
        b["results"].push_back({{"batch_bytes", sizes[i]},
                                {"throughput_mib_s", c.mib_s},
                                {"latency_p50_us", c.lat_p50_us},
                                {"latency_p99_us", c.lat_p99_us},
                                {"identical", c.identical}});
      }
      j["backends"].push_back(b);
    }
    j["crossovers"] = crossovers;
    std::ofstream f(o.json_path);
    f << j.dump(2) << '\n';
    if (!f) fail("cannot write '{}'", o.json_path);
  }
  if (!o.plot_path.empty()) {
    std::vector<PlotSeries> series;
    for (const auto& s : subjects) {
      PlotSeries ps{s.name + (s.engine ? "" : " (1 thread)"), {}};
      for (std::size_t i = 0; i < sizes.size(); ++i) {
        ps.points.emplace_back(static_cast<double>(sizes[i]), s.cells[i].mib_s);
      }
      series.push_back(std::move(ps));
    }
    const std::string title = fmt::format("{} {}-bit, {}-byte sectors, {}: throughput vs batch size",
                                          o.cipher, o.key_size, o.sector_size, o.direction);
    std::ofstream f(o.plot_path);
    f << render_line_chart_svg(title, "batch size (bytes, log scale)", "MiB/s", series);
    if (!f) fail("cannot write '{}'", o.plot_path);
  }
  if (!all_identical) {
    throw Error("backends disagree: " + mismatches.front(), kExitMismatch);
  }
  return kExitOk;
}

}  // namespace

void add_compare_command(CLI::App& app, int* exit_code, RunMode mode) {
  auto o = std::make_shared<CompareOptions>();
  CLI::App* c = app.add_subcommand(
      "compare",
      "Run the same workload on every usable backend over a sweep of batch sizes: verify "
      "identical output, show throughput and latency, find the crossover");
  c->add_option("--backends", o->backends,
                "Engine backends and GPU data paths: cpu, cuda (copy), cuda-registered, "
                "cuda-slots, cuda-device, hybrid, hybrid-registered (default: every usable one)")
      ->delimiter(',');
  c->add_option("--gpus", o->gpus, kGpusHelp);
  c->add_option("--peers", o->peers, "Peers to verify against and time: openssl, libgcrypt, none")
      ->delimiter(',')
      ->capture_default_str();
  c->add_option("--batch-sizes", o->batch_sizes, "Batch sizes (e.g. 4K,64K,1M)")
      ->delimiter(',')
      ->capture_default_str();
  c->add_option("-c,--cipher", o->cipher, "aes-xts-plain64, aes-xts-plain, aes-xts-plain64be")
      ->capture_default_str();
  c->add_option("-s,--key-size", o->key_size, "Key size in bits: 256 or 512")->capture_default_str();
  c->add_option("--sector-size", o->sector_size, "Sector size in bytes")->capture_default_str();
  c->add_option("--direction", o->direction, "encrypt or decrypt")->capture_default_str();
  c->add_option("--time", o->seconds, "Seconds per measurement")->capture_default_str();
  c->add_option("--depth", o->depth, "Requests in flight for the throughput measurement")
      ->capture_default_str();
  c->add_option("--threads", o->threads, "CPU engine threads (default: all cores)");
  c->add_option("--idle-spin-us", o->idle_spin_us, kIdleSpinHelp)->capture_default_str();
  c->add_option("--slots", o->slots, "Engine batch slots")->capture_default_str();
  c->add_option("--slot-size", o->slot_size,
                "Bytes per engine slot (auto: 1 MiB on the CPU, 64 MiB on the GPU)")
      ->capture_default_str();
  c->add_option("--json", o->json_path, "Write the results as JSON to FILE");
  c->add_option("--plot", o->plot_path, "Draw throughput vs batch size as SVG to FILE");
  set_command_callback(c, exit_code, mode, [o] { check_compare_options(*o); },
                       [o] { return run_compare(*o); });
}

}  // namespace sectorcrypt::cli
