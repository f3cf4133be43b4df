// The app's check-only mode (host/cli/app.h, what tests/fuzz/fuzz_cli_argv.cc drives) agrees
// with the tool: a command line the tool would start on passes without touching anything,
// and one it refuses is refused in check-only mode with the same message and exit status
// the `sectorcrypt` program prints, for every subcommand.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "host/cli/app.h"
#include "host/cli/cli_common.h"
#include "tests/cli/subprocess.h"

namespace sectorcrypt::clitest {
namespace {

using cli::RunMode;

// Parses `args` (without argv[0]) with a fresh app in check-only mode; returns the exit
// code the callback set. CLI11 and cli::Error exceptions go to the caller.
int check_only(const std::vector<std::string>& args, int initial = -1) {
  std::vector<std::string> argv_s{"sectorcrypt"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<const char*> argv;
  for (const auto& a : argv_s) argv.push_back(a.c_str());
  argv.push_back(nullptr);
  CLI::App app;
  int exit_code = initial;
  cli::build_app(app, &exit_code, RunMode::check_only);
  app.parse(static_cast<int>(argv_s.size()), argv.data());
  return exit_code;
}

TEST(CliCheckOnly, AcceptsValidCommandsWithoutTouchingFiles) {
  TempDir dir;
  // None of these paths exists: a run would fail to open them, the checks do not look.
  const std::string key = dir.file("key"), in = dir.file("in"), out = dir.file("out");
  EXPECT_EQ(check_only({"encrypt", "-d", key, "--sector-size", "4096", in, out}), cli::kExitOk);
  EXPECT_EQ(check_only({"encrypt", "-d", key, "--idle-spin-us", "0", in, out}), cli::kExitOk);
  EXPECT_EQ(check_only({"decrypt", "-d", key, "-s", "512", "--iv-large-sectors", "--sector-size",
                        "4096", "-p", "8", "-o", "16", "-b", "8", "--backend", "cpu", in, out}),
            cli::kExitOk);
  EXPECT_EQ(check_only({"bench", "--key-sizes", "256", "--sector-sizes", "512,4096", "--json",
                        dir.file("bench.json"), "--csv", dir.file("bench.csv")}),
            cli::kExitOk);
  EXPECT_EQ(check_only({"compare", "--idle-spin-us", "1000000", "--threads", "1"}), cli::kExitOk);
  EXPECT_EQ(check_only({"bench", "--idle-spin-us", "0"}), cli::kExitOk);
  EXPECT_EQ(check_only({"compare", "--batch-sizes", "4K,64K", "--depth", "2", "--json",
                        dir.file("compare.json"), "--plot", dir.file("compare.svg")}),
            cli::kExitOk);
  EXPECT_EQ(check_only({"info", "--json", dir.file("info.json")}), cli::kExitOk);
  EXPECT_FALSE(file_exists(out));
  EXPECT_TRUE(dir.entries().empty()) << "check-only mode created a file";
}

// Each of these is refused by the option checks before anything is opened, so the program
// itself can be run on it safely (the key file, INPUT and OUTPUT do not exist).
TEST(CliCheckOnly, RefusesWithTheToolsMessage) {
  TempDir dir;
  const std::string key = dir.file("key"), in = dir.file("in"), out = dir.file("out");
  const std::vector<std::vector<std::string>> cases = {
      {"encrypt", "-d", key, "--sector-size", "520", in, out},
      {"decrypt", "-d", key, "--cipher", "aes-cbc-essiv:sha256", in, out},
      {"encrypt", "-d", key, "--backend", "fpga", in, out},
      {"encrypt", "-d", key, "--slots", "0", in, out},
      {"encrypt", "-d", key, "--sector-size", "4096", "--iv-large-sectors", "--skip", "3", in, out},
      {"encrypt", "-d", key, "--offset", "36028797018963968", in, out},
      {"encrypt", "-d", key, "--key-size", "384", in, out},
      {"bench", "--key-sizes", "384"},
      {"bench", "--buffer-size", "1000"},
      {"bench", "--time", "0"},
      {"bench", "--time", "inf"},  // would never end
      {"compare", "--time", "nan"},
      {"compare", "--depth", "0"},
      {"compare", "--direction", "sideways"},
      {"compare", "--batch-sizes", "4K,1000"},
      {"compare", "--slot-size", "1Q"},
      {"compare", "--idle-spin-us", "1000001"},
      {"bench", "--idle-spin-us", "4000000000"},
      {"encrypt", "-d", key, "--idle-spin-us", "2000000", in, out},
  };
  for (const auto& args : cases) {
    std::string joined;
    for (const auto& a : args) joined += " " + a;
    SCOPED_TRACE("sectorcrypt" + joined);
    std::string message;
    int code = -1;
    try {
      check_only(args);
      ADD_FAILURE() << "accepted in check-only mode";
      continue;
    } catch (const cli::Error& e) {
      message = e.what();
      code = e.exit_code();
    }
    const RunResult r = run_cli(args);
    EXPECT_EQ(r.exit_code, code);
    EXPECT_EQ(r.err, "sectorcrypt: error: " + message + "\n");
    EXPECT_EQ(r.out, "");
  }
  EXPECT_TRUE(dir.entries().empty());
}

TEST(CliCheckOnly, UsageErrorsAreCliElevenErrors) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"decrypt", "--bogus"}, {"encrypt", "in"}, {"frobnicate"}, {}}) {
    std::string message;
    try {
      check_only(args);
      ADD_FAILURE() << "accepted in check-only mode";
      continue;
    } catch (const CLI::ParseError& e) {
      message = e.what();
    }
    const RunResult r = run_cli(args);
    EXPECT_EQ(r.exit_code, cli::kExitUsage);
    EXPECT_EQ(r.err, "sectorcrypt: error: " + message + " (see sectorcrypt --help)\n");
  }
  EXPECT_THROW(check_only({"--version"}), CLI::Success);
  EXPECT_THROW(check_only({"compare", "--help"}), CLI::Success);
}

}  // namespace
}  // namespace sectorcrypt::clitest
