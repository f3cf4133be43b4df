// The `sectorcrypt` subcommands; each registers itself on the app and, when chosen, sets
// *exit_code (errors are thrown as cli::Error and printed by main).
#pragma once

namespace CLI {
class App;
}

namespace sectorcrypt::cli {

void add_crypt_commands(CLI::App& app, int* exit_code);  // encrypt, decrypt
void add_bench_command(CLI::App& app, int* exit_code);
void add_compare_command(CLI::App& app, int* exit_code);
void add_info_command(CLI::App& app, int* exit_code);

}  // namespace sectorcrypt::cli
