// The `sectorcrypt` app definition, shared by main() and the check-only users (fuzzer, tests).
#include "host/cli/app.h"

#include <CLI/CLI.hpp>
#include <string>

#include "host/cli/cli_common.h"
#include "host/cli/commands.h"

namespace sectorcrypt::cli {

void set_command_callback(CLI::App* c, int* exit_code, RunMode mode,
                          std::function<void()> check, std::function<int()> run) {
  if (mode == RunMode::check_only) {
    c->callback([exit_code, check = std::move(check)] {
      check();
      *exit_code = kExitOk;
    });
  } else {
    c->callback([exit_code, run = std::move(run)] { *exit_code = run(); });
  }
}

void build_app(CLI::App& app, int* exit_code, RunMode mode) {
  app.description(
      "sectorcrypt: AES-XTS disk-sector encryption on the CPU or a GPU, "
      "byte-compatible with dm-crypt (aes-xts-plain64)");
  app.name("sectorcrypt");
  app.set_version_flag("-V,--version", std::string("sectorcrypt ") + version());
  app.require_subcommand(1);
  add_crypt_commands(app, exit_code, mode);
  add_reencrypt_command(app, exit_code, mode);
  add_bench_command(app, exit_code, mode);
  add_compare_command(app, exit_code, mode);
  add_info_command(app, exit_code, mode);
}

}  // namespace sectorcrypt::cli
