// `sectorcrypt info`: version, CPU and the kernel dispatch chose, GPUs or why none; or,
// given an IMAGE, a summary of its LUKS2 header (no passphrase asked, no key shown).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "host/cli/cli_common.h"
#include "host/cli/commands.h"
#include "host/cli/cpu_features.h"
#include "engine/gpu_devices.h"
#include "host/luks2/luks2_volume.h"
#include "host/peer_ciphers.h"
#include "kernels/cpu/xts_cpu.h"

namespace sectorcrypt::cli {
namespace {

struct InfoOptions {
  std::string json_path;
  std::string image;   // a LUKS2 image to summarise instead of the machine
  std::string header;  // its detached header
};

void check_info_options(const InfoOptions& o) {
  if (!o.header.empty() && o.image.empty()) fail("--header needs the IMAGE it belongs to");
}

void write_json(const std::string& path, const nlohmann::json& j) {
  if (path.empty()) return;
  std::ofstream f(path);
  f << j.dump(2) << '\n';
  if (!f) fail("cannot write '{}'", path);
}

int run_luks2_info(const InfoOptions& o) {
  luks2::HeaderLocation where;
  where.image = o.image;
  where.header = o.header;
  luks2::HeaderSummary h;
  if (Status s = luks2::read_header(where, &h); !s) {
    fail("{}: {}", o.header.empty() ? o.image : o.header, s.message());
  }
  const auto& l = h.layout;
  nlohmann::json j;
  j["type"] = "LUKS2";
  j["uuid"] = h.uuid;
  j["label"] = h.label;
  j["header"] = h.detached ? o.header : o.image;
  j["cipher"] = l.cipher;
  j["volume_key_bits"] = l.volume_key_bytes * 8;
  j["sector_size"] = l.format.sector_size;
  j["data_offset_bytes"] = l.data_offset_bytes;
  j["data_bytes"] = l.data_bytes;
  j["iv_offset_sectors"] = l.iv_offset;
  j["keyslots"] = nlohmann::json::array();
  std::printf("type:           LUKS2%s\n", h.detached ? " (detached header)" : "");
  std::printf("uuid:           %s\n", h.uuid.c_str());
  if (!h.label.empty()) std::printf("label:          %s\n", h.label.c_str());
  std::printf("cipher:         %s, %u-bit volume key (XTS-AES-%u)\n", l.cipher.c_str(),
              l.volume_key_bytes * 8, l.volume_key_bytes * 4);
  std::printf("sector size:    %u bytes\n", l.format.sector_size);
  std::printf("data segment:   %s at byte %llu (%llu bytes)\n", format_bytes(l.data_bytes).c_str(),
              static_cast<unsigned long long>(l.data_offset_bytes),
              static_cast<unsigned long long>(l.data_bytes));
  std::printf("iv offset:      %llu (512-byte sectors)\n",
              static_cast<unsigned long long>(l.iv_offset));
  for (const auto& k : h.keyslots) {
    std::printf("keyslot %d:      %u-bit key, %s\n", k.index, k.key_bytes * 8, k.kdf.c_str());
    j["keyslots"].push_back({{"index", k.index}, {"key_bits", k.key_bytes * 8}, {"kdf", k.kdf}});
  }
  write_json(o.json_path, j);
  return kExitOk;
}

int run_info(const InfoOptions& o) {
  check_info_options(o);
  if (!o.image.empty()) return run_luks2_info(o);
  const auto features = cpu_aes_features();
  const GpuInventory gpus = discover_gpus();
  nlohmann::json j;
  j["version"] = version();
  j["cpu"]["model"] = cpu_model_name();
  for (const auto& [name, present] : features) j["cpu"]["features"][name] = present;
  j["cpu"]["implementation"] = cpu::selected_implementation();
  j["gpus"] = nlohmann::json::array();
  for (const auto& g : gpus.gpus) {
    j["gpus"].push_back({{"ordinal", g.ordinal},
                         {"name", g.name},
                         {"memory_bytes", g.memory_bytes},
                         {"compute_capability", fmt::format("{}.{}", g.compute_major, g.compute_minor)},
                         {"pci_bus_id", g.pci_bus_id},
                         {"numa_node", g.numa_node}});
  }
  if (!gpus.usable()) j["gpu_why_none"] = gpus.why_none;
  j["peers"]["openssl"] = peers::openssl_version();
  j["peers"]["libgcrypt"] = peers::libgcrypt_version();

  std::printf("sectorcrypt %s\n", version());
  std::printf("cpu:            %s\n", cpu_model_name().c_str());
  std::string feat;
  for (const auto& [name, present] : features) feat += (present ? " +" : " -") + name;
  std::printf("cpu features:  %s\n", feat.c_str());
  std::printf("cpu kernel:     %s (chosen by runtime dispatch)\n", cpu::selected_implementation());
  if (gpus.usable()) {
    for (const auto& g : gpus.gpus) {
      std::printf("gpu %d:          %s, %s, compute capability %d.%d, PCI %s, NUMA node %s\n",
                  g.ordinal, g.name.c_str(), format_bytes(g.memory_bytes).c_str(), g.compute_major,
                  g.compute_minor, g.pci_bus_id.c_str(),
                  g.numa_node < 0 ? "unknown" : std::to_string(g.numa_node).c_str());
    }
  } else {
    std::printf("gpu:            none usable: %s\n", gpus.why_none.c_str());
  }
  std::printf("peers:          %s, libgcrypt %s\n", peers::openssl_version().c_str(),
              peers::libgcrypt_version().c_str());
  write_json(o.json_path, j);
  return kExitOk;
}

}  // namespace

void add_info_command(CLI::App& app, int* exit_code, RunMode mode) {
  auto o = std::make_shared<InfoOptions>();
  CLI::App* c = app.add_subcommand(
      "info", "Show the version, the CPU's AES features, the CPU kernel chosen, and the GPUs; "
              "or, with IMAGE, summarise its LUKS2 header (no passphrase, no key)");
  c->add_option("IMAGE", o->image, "A LUKS2 image (or its data device, with --header)");
  c->add_option("--header", o->header, "The LUKS2 detached header of IMAGE");
  c->add_option("--json", o->json_path, "Also write the report as JSON to FILE");
  // The callbacks hold `o`: the options write into it while the command line is parsed.
  set_command_callback(c, exit_code, mode, [o] { check_info_options(*o); },
                       [o] { return run_info(*o); });
}

}  // namespace sectorcrypt::cli
