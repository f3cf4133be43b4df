// libFuzzer: the whole `sectorcrypt` command line, argv as the tool gets it. The input is
// cut at '\0' bytes into at most kMaxArgs arguments after "sectorcrypt" and parsed by the
// real CLI11 app (host/cli/app.h, the same build_app() main() uses: every subcommand,
// option, flag, delimiter and default) in RunMode::check_only, where the chosen command
// runs its check_<cmd>_options and nothing else: no file, device, key file, engine or GPU
// is touched, so every input is cheap and the fuzzer has no side effects. fuzz_cli_parsing
// covers the option-value parsers one by one; this covers how CLI11 and the commands
// combine them. A bad command line must end in CLI::ParseError (CLI::Success for --help and
// --version) or cli::Error with the run-time exit status; anything else escaping, a crash
// or a sanitizer report is a bug, as is a parse that succeeds without a command setting
// its exit status.
#include <CLI/CLI.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "host/cli/app.h"
#include "host/cli/cli_common.h"

namespace {

constexpr std::size_t kMaxArgs = 32;  // after argv[0]; the rest of the input is ignored

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace sectorcrypt::cli;
  std::vector<std::string> args{"sectorcrypt"};
  const char* p = reinterpret_cast<const char*>(data);
  const char* end = p + size;
  while (p < end && args.size() <= kMaxArgs) {
    const char* q = p;
    while (q < end && *q != '\0') ++q;
    args.emplace_back(p, q);
    p = q + 1;  // past the '\0' (or past the end, which ends the loop)
  }
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  argv.push_back(nullptr);

  CLI::App app;
  int exit_code = -1;
  build_app(app, &exit_code, RunMode::check_only);
  try {
    app.parse(static_cast<int>(args.size()), argv.data());
  } catch (const CLI::ParseError&) {
    return 0;  // usage error, --help or --version: main() prints it
  } catch (const Error& e) {
    // Option checks are run-time errors (exit 1) with a message, as main() prints them.
    if (e.exit_code() != kExitError || std::string(e.what()).empty()) std::abort();
    return 0;
  }
  // require_subcommand(1): a parse that returns ran exactly one command's checks.
  if (exit_code != kExitOk) std::abort();
  return 0;
}
