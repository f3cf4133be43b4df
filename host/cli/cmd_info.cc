// `sectorcrypt info`: version, CPU and the kernel dispatch chose, GPUs or why none.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "host/cli/cli_common.h"
#include "host/cli/commands.h"
#include "host/cli/cpu_features.h"
#include "host/gpu_devices.h"
#include "host/peer_ciphers.h"
#include "kernels/cpu/xts_cpu.h"

namespace sectorcrypt::cli {
namespace {

struct InfoOptions {
  std::string json_path;
};

// info has no option to refuse: it only reports, and writes --json FILE when run.
void check_info_options(const InfoOptions&) {}

int run_info(const InfoOptions& o) {
  check_info_options(o);
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
  if (!o.json_path.empty()) {
    std::ofstream f(o.json_path);
    f << j.dump(2) << '\n';
    if (!f) fail("cannot write '{}'", o.json_path);
  }
  return kExitOk;
}

}  // namespace

void add_info_command(CLI::App& app, int* exit_code, RunMode mode) {
  auto o = std::make_shared<InfoOptions>();
  CLI::App* c = app.add_subcommand(
      "info", "Show the version, the CPU's AES features, the CPU kernel chosen, and the GPUs");
  c->add_option("--json", o->json_path, "Also write the report as JSON to FILE");
  // The callbacks hold `o`: the options write into it while the command line is parsed.
  set_command_callback(c, exit_code, mode, [o] { check_info_options(*o); },
                       [o] { return run_info(*o); });
}

}  // namespace sectorcrypt::cli
