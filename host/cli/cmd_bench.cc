// `sectorcrypt bench`: like `cryptsetup benchmark`, one row per backend x cipher x key
// size x sector size with encryption and decryption MiB/s, memory only; the peers
// (OpenSSL EVP, libgcrypt, IV per sector as dm-crypt) are measured in the same run.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "host/cli/bench_measure.h"
#include "host/cli/cli_common.h"
#include "host/cli/engine_paths.h"
#include "host/cli/commands.h"
#include "host/cli/cpu_features.h"
#include "engine/gpu_devices.h"
#include "kernels/cpu/xts_cpu.h"

namespace sectorcrypt::cli {
namespace {

struct BenchOptions {
  std::vector<std::string> backends;  // empty: every usable one plus the peers
  std::vector<unsigned> key_sizes{256, 512};
  std::vector<uint32_t> sector_sizes{512, 4096};
  double seconds = 0.3;
  std::string buffer_size = "4M";
  std::string gpus;  // --gpus: "" GPU 0, "all", or "0,1"
  unsigned threads = 0;
  uint32_t idle_spin_us = EngineConfig{}.idle_spin_us;
  std::string json_path, csv_path;
};

struct Row {
  std::string backend, kind, detail;
  unsigned key_bits;
  uint32_t sector_size;
  double enc = 0, dec = 0;
};

// One measured column: how to run one buffer through it.
struct Subject {
  std::string name, kind, detail;
  std::unique_ptr<Engine> engine;  // engine backends
  DataPath path = DataPath::copy;
  std::unique_ptr<PathBuffers> buffers;  // GPU paths other than copy; before `engine` goes
  PeerKind peer = PeerKind::openssl;
};

std::vector<std::string> default_backends(const GpuInventory& gpus) {
  std::vector<std::string> b{"cpu", "cpu-1t"};
  if (gpus.usable()) {
    for (const auto& n : gpu_subject_names()) b.push_back(n);
  }
  b.push_back("openssl");
  b.push_back("libgcrypt");
  return b;
}

// Everything refused before a GPU is looked for, an engine started or a buffer allocated;
// the backend names are checked by run_bench as it sets each one up.
void check_bench_options(const BenchOptions& o) {
  const uint64_t buffer_bytes = parse_size(o.buffer_size);
  for (uint32_t ss : o.sector_sizes) {
    SectorFormat f;
    f.sector_size = ss;
    check(validate_format(f), "--sector-sizes");
    if (buffer_bytes < ss || buffer_bytes % ss != 0) {
      fail("--buffer-size {} is not a whole number of {}-byte sectors", buffer_bytes, ss);
    }
  }
  for (unsigned k : o.key_sizes) {
    if (k != 256 && k != 512) fail("--key-sizes: {} is not 256 or 512", k);
  }
  check_measure_seconds(o.seconds);
  check_idle_spin(o.idle_spin_us);
}

int run_bench(const BenchOptions& o) {
  check_bench_options(o);
  const uint64_t buffer_bytes = parse_size(o.buffer_size);
  const GpuInventory gpus = discover_gpus();
  const std::vector<std::string> names = o.backends.empty() ? default_backends(gpus) : o.backends;

  std::vector<Subject> subjects;
  for (const auto& n : names) {
    Subject s;
    s.name = n;
    if (n == "cpu" || n.starts_with("cuda") || n == "gpu" || n.starts_with("hybrid")) {
      EngineConfig cfg;
      parse_engine_subject(n, &cfg.backend, &s.path);
    apply_gpus(o.gpus, &cfg);
      cfg.threads = o.threads;
      cfg.idle_spin_us = o.idle_spin_us;
      if (s.path == DataPath::slots) {
        cfg.slot_bytes = std::max<uint64_t>(kCudaSlotBytes, (buffer_bytes + 4095) / 4096 * 4096);
      }
      Status st = Engine::create(cfg, &s.engine);
      if (!st.ok() && st.code() == Errc::unavailable) fail("backend {}: {}", n, st.message());
      check(st, "cannot start the " + n + " engine");
      if (s.path != DataPath::copy) {
        s.buffers = std::make_unique<PathBuffers>(*s.engine, s.path, buffer_bytes, 1);
      }
      s.kind = "engine";
      s.detail = s.engine->backend_detail();
    } else if (n == "cpu-1t") {
      s.kind = "kernel";
      s.detail = fmt::format("cpu kernel {}, one thread, no engine", cpu::selected_implementation());
    } else if (n == "openssl" || n == "libgcrypt") {
      s.kind = "peer";
      s.peer = n == "openssl" ? PeerKind::openssl : PeerKind::libgcrypt;
      s.detail = n == "openssl" ? peers::openssl_version() : "libgcrypt " + peers::libgcrypt_version();
    } else {
      fail("unknown backend '{}' (cpu, cpu-1t, cuda, cuda-registered, cuda-slots, cuda-device, "
           "hybrid, hybrid-registered, openssl, libgcrypt)", n);
    }
    subjects.push_back(std::move(s));
  }

  Buffer buf = make_buffer(buffer_bytes, 1);
  std::printf("# sectorcrypt %s bench: memory only (no storage I/O), %s buffer, %.2f s per cell\n",
              version(), format_bytes(buffer_bytes).c_str(), o.seconds);
  std::printf("# cpu: %s; kernel %s\n", cpu_model_name().c_str(), cpu::selected_implementation());
  if (!gpus.usable()) std::printf("# gpu: none usable (%s)\n", gpus.why_none.c_str());
  for (const auto& s : subjects) std::printf("# %-10s %s\n", s.name.c_str(), s.detail.c_str());
  std::printf("#%-16s %-16s %5s %7s %15s %15s\n", " backend", "cipher", "key", "sector",
              "encryption", "decryption");
  std::fflush(stdout);

  std::vector<Row> rows;
  for (auto& s : subjects) {
    for (unsigned bits : o.key_sizes) {
      KeyBytes key;
      make_bench_key(bits / 8, &key);
      KeyHandle handle;
      XtsKey kernel_key;
      if (s.engine) check(s.engine->add_key(key.data(), key.size(), {}, &handle), "bench key");
      if (s.kind == "kernel") check(XtsKey::create(key.data(), key.size(), &kernel_key), "bench key");
      for (uint32_t ss : o.sector_sizes) {
        SectorFormat fmt;
        fmt.sector_size = ss;
        Row row{s.name, s.kind, s.detail, bits, ss};
        for (Direction dir : {Direction::encrypt, Direction::decrypt}) {
          std::function<void()> fn;
          std::unique_ptr<peers::XtsPeer> peer;
          uint8_t* p = buf.get();
          if (s.buffers) {
            PathBuffers* pb = s.buffers.get();
            fn = [pb, handle, dir, fmt, buffer_bytes] { pb->run_one(handle, dir, fmt, buffer_bytes); };
          } else if (s.engine) {
            Engine* e = s.engine.get();
            fn = [e, handle, dir, fmt, p, buffer_bytes, name = s.name] {
              check(e->crypt_sync(handle, dir, fmt, 0, p, p, buffer_bytes), name);
            };
          } else if (s.kind == "kernel") {
            const XtsKey* k = &kernel_key;
            fn = [k, dir, fmt, p, buffer_bytes] {
              check(cpu::xts_crypt_sectors(*k, dir, fmt, 0, p, p, buffer_bytes), "cpu-1t");
            };
          } else {
            peer = make_peer(s.peer, key.data(), key.size(), dir);
            peers::XtsPeer* pp = peer.get();
            fn = [pp, fmt, p, buffer_bytes] { peer_crypt_sectors(*pp, fmt, 0, p, p, buffer_bytes); };
          }
          const double mib = time_calls(o.seconds, buffer_bytes, fn).mib_per_s();
          (dir == Direction::encrypt ? row.enc : row.dec) = mib;
        }
        std::printf(" %-16s %-16s %4ub %7u %10.1f MiB/s %10.1f MiB/s\n", row.backend.c_str(),
                    "aes-xts-plain64", bits, ss, row.enc, row.dec);
        std::fflush(stdout);
        rows.push_back(row);
      }
      if (s.engine) (void)s.engine->remove_key(handle);
    }
  }

  if (!o.json_path.empty()) {
    nlohmann::json j;
    j["tool"] = "sectorcrypt bench";
    j["version"] = version();
    j["buffer_bytes"] = buffer_bytes;
    j["seconds_per_cell"] = o.seconds;
    j["cpu"] = {{"model", cpu_model_name()}, {"implementation", cpu::selected_implementation()}};
    j["gpu_usable"] = gpus.usable();
    if (!gpus.usable()) j["gpu_why_none"] = gpus.why_none;
    j["results"] = nlohmann::json::array();
    for (const auto& r : rows) {
      j["results"].push_back({{"backend", r.backend},
                              {"kind", r.kind},
                              {"detail", r.detail},
                              {"cipher", "aes-xts-plain64"},
                              {"key_bits", r.key_bits},
                              {"sector_size", r.sector_size},
                              {"encrypt_mib_s", r.enc},
                              {"decrypt_mib_s", r.dec}});
    }
    std::ofstream f(o.json_path);
    f << j.dump(2) << '\n';
    if (!f) fail("cannot write '{}'", o.json_path);
  }
  if (!o.csv_path.empty()) {
    std::ofstream f(o.csv_path);
    f << "backend,kind,cipher,key_bits,sector_size,encrypt_mib_s,decrypt_mib_s\n";
    for (const auto& r : rows) {
      f << fmt::format("{},{},aes-xts-plain64,{},{},{:.1f},{:.1f}\n", r.backend, r.kind,
                       r.key_bits, r.sector_size, r.enc, r.dec);
    }
    if (!f) fail("cannot write '{}'", o.csv_path);
  }
  return kExitOk;
}

}  // namespace

void add_bench_command(CLI::App& app, int* exit_code, RunMode mode) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* c = app.add_subcommand(
      "bench", "Measure AES-XTS throughput per backend, key size and sector size, with the peers");
  c->add_option("--backends", o->backends,
                "Comma-separated: cpu, cpu-1t (kernel, one thread), cuda (copy path), "
                "cuda-registered, cuda-slots, cuda-device, hybrid, hybrid-registered, openssl, "
                "libgcrypt (default: all usable)")
      ->delimiter(',');
  c->add_option("--gpus", o->gpus, kGpusHelp);
  c->add_option("--key-sizes", o->key_sizes, "Key sizes in bits (256, 512)")
      ->delimiter(',')
      ->capture_default_str();
  c->add_option("--sector-sizes", o->sector_sizes, "Sector sizes in bytes")
      ->delimiter(',')
      ->capture_default_str();
  c->add_option("--time", o->seconds, "Seconds per direction per cell")->capture_default_str();
  c->add_option("--buffer-size", o->buffer_size, "Bytes per call (e.g. 1M, 4M)")
      ->capture_default_str();
  c->add_option("--threads", o->threads, "Engine threads (default: all cores)");
  c->add_option("--idle-spin-us", o->idle_spin_us, kIdleSpinHelp)->capture_default_str();
  c->add_option("--json", o->json_path, "Write the results as JSON to FILE");
  c->add_option("--csv", o->csv_path, "Write the results as CSV to FILE");
  set_command_callback(c, exit_code, mode, [o] { check_bench_options(*o); },
                       [o] { return run_bench(*o); });
}

}  // namespace sectorcrypt::cli
