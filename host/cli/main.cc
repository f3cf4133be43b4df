// `sectorcrypt`: the command-line tool. Each command lives in its own cmd_*.cc and app.cc
// wires them up; this file only runs the parse and turns errors into one line on stderr and
// an exit status.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <new>

#include "host/cli/app.h"
#include "host/cli/cli_common.h"

int main(int argc, char** argv) {
  using namespace sectorcrypt::cli;
  // A closed pipe on stdout is reported as a write error, not a silent death.
  ::signal(SIGPIPE, SIG_IGN);
  CLI::App app;
  int exit_code = kExitOk;
  build_app(app, &exit_code, RunMode::run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help, --version
  } catch (const CLI::ParseError& e) {
    // Usage errors are one line too, with exit status 2.
    std::fprintf(stderr, "sectorcrypt: error: %s (see sectorcrypt --help)\n", e.what());
    return kExitUsage;
  } catch (const Error& e) {
    std::fprintf(stderr, "sectorcrypt: error: %s\n", e.what());
    return e.exit_code();
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "sectorcrypt: error: out of memory\n");
    return kExitError;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sectorcrypt: error: %s\n", e.what());
    return kExitError;
  }
  return exit_code;
}
