// The `sectorcrypt` subcommands; each registers itself on the app and, when chosen, sets
// *exit_code (errors are thrown as cli::Error and printed by main). With RunMode::check_only
// a chosen command only runs its option checks (check_<cmd>_options in its cmd_*.cc: what
// the command refuses before it opens, reads, creates or measures anything) and sets
// *exit_code to kExitOk; build_app (app.h) wires them all up.
#pragma once

#include <functional>

#include "host/cli/app.h"

namespace CLI {
class App;
}

namespace sectorcrypt::cli {

// Sets subcommand c's callback for `mode`: RunMode::run sets *exit_code = run();
// RunMode::check_only calls check() and sets *exit_code = kExitOk.
void set_command_callback(CLI::App* c, int* exit_code, RunMode mode,
                          std::function<void()> check, std::function<int()> run);

void add_crypt_commands(CLI::App& app, int* exit_code, RunMode mode);  // encrypt, decrypt
void add_reencrypt_command(CLI::App& app, int* exit_code, RunMode mode);
void add_bench_command(CLI::App& app, int* exit_code, RunMode mode);
void add_compare_command(CLI::App& app, int* exit_code, RunMode mode);
void add_info_command(CLI::App& app, int* exit_code, RunMode mode);

}  // namespace sectorcrypt::cli
