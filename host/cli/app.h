// The `sectorcrypt` command line as a CLI11 app: the description, --version, and every
// subcommand with its options. main() builds it with RunMode::run; the argv fuzzer
// (tests/fuzz/fuzz_cli_argv.cc) and the check-only test build it with RunMode::check_only,
// where the chosen command's callback only validates its options (the same checks, in the
// same order, with the same cli::Error messages as a real run) and touches no file, device,
// engine or GPU.
#pragma once

namespace CLI {
class App;
}

namespace sectorcrypt::cli {

enum class RunMode {
  run,         // the chosen command runs; *exit_code is its status
  check_only,  // the chosen command only checks its options; *exit_code = kExitOk
};

// Sets up `app` (a fresh CLI::App) as the `sectorcrypt` tool. During app.parse() the chosen
// command's callback sets *exit_code or throws cli::Error; CLI11 throws CLI::ParseError
// (CLI::Success for --help and --version). `exit_code` must outlive the parse.
void build_app(CLI::App& app, int* exit_code, RunMode mode);

}  // namespace sectorcrypt::cli
