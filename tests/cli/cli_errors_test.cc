// Every error the CLI promises to report: one line "sectorcrypt: error: ..." on stderr,
// a non-zero exit, no output that looks complete, no key bytes in the message.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "engine/gpu_devices.h"
#include "tests/cli/subprocess.h"
#include "tests/test_support.h"

namespace sectorcrypt::clitest {
namespace {

using sectorcrypt::testing::random_bytes;
using sectorcrypt::testing::random_xts_key;
using sectorcrypt::testing::to_hex;


class CliErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    key = random_xts_key(64);
    write_file(dir.file("key"), key);
    write_file(dir.file("pt"), random_bytes(64 << 10));
  }

  // Runs the CLI, expects one error line containing `needle`, exit 1, and no OUTPUT.
  void expect_error(std::vector<std::string> args, const std::string& needle,
                    const std::string& output_name = "out") {
    SCOPED_TRACE(needle);
    const auto before = dir.entries().size();
    const RunResult r = run_cli(args);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    const auto ls = lines(r.err);
    ASSERT_EQ(ls.size(), 1u) << r.err;
    EXPECT_EQ(ls[0].rfind("sectorcrypt: error: ", 0), 0u) << ls[0];
    EXPECT_NE(ls[0].find(needle), std::string::npos) << ls[0];
    EXPECT_EQ(r.err.find(to_hex(key).substr(0, 16)), std::string::npos) << "key bytes printed";
    EXPECT_EQ(r.out, "");
    if (!output_name.empty()) {
      EXPECT_FALSE(file_exists(dir.file(output_name)));
    }
    EXPECT_EQ(dir.entries().size(), before) << "a file was left behind";
  }

  TempDir dir;
  std::vector<uint8_t> key;
};

TEST_F(CliErrors, MissingInput) {
  expect_error({"encrypt", "-d", dir.file("key"), dir.file("nope"), dir.file("out")},
               "cannot open '" + dir.file("nope") + "': No such file or directory");
}

TEST_F(CliErrors, MissingKeyFile) {
  expect_error({"encrypt", "-d", dir.file("nokey"), dir.file("pt"), dir.file("out")},
               "cannot open key file");
}

TEST_F(CliErrors, ShortKeyFile) {
  write_file(dir.file("short"), random_bytes(16));
  expect_error({"encrypt", "-d", dir.file("short"), dir.file("pt"), dir.file("out")},
               "holds 16 bytes; a raw aes-xts volume key is 32 bytes");
}

TEST_F(CliErrors, KeySizeMismatch) {
  expect_error({"encrypt", "-d", dir.file("key"), "--key-size", "256", dir.file("pt"), dir.file("out")},
               "holds 64 bytes but --key-size 256 needs 32 bytes");
  expect_error({"encrypt", "-d", dir.file("key"), "--key-size", "384", dir.file("pt"), dir.file("out")},
               "--key-size 384 is not supported");
}

TEST_F(CliErrors, EqualKeyHalves) {
  write_file(dir.file("weak"), std::vector<uint8_t>(64, 0x42));
  expect_error({"encrypt", "-d", dir.file("weak"), dir.file("pt"), dir.file("out")}, "key file");
}

TEST_F(CliErrors, SizeNotWholeSectors) {
  write_file(dir.file("odd"), random_bytes(1000));
  expect_error({"encrypt", "-d", dir.file("key"), dir.file("odd"), dir.file("out")},
               "not a whole number of 512-byte sectors");
  expect_error({"encrypt", "-d", dir.file("key"), "--sector-size", "4096", "--size", "9",
                dir.file("pt"), dir.file("out")},
               "not a whole number of 4096-byte sectors");
  expect_error({"encrypt", "-d", dir.file("key"), "--offset", "100", "--size", "60",
                dir.file("pt"), dir.file("out")},
               "go past the end");
  expect_error({"encrypt", "-d", dir.file("key"), "--sector-size", "4096", "--iv-large-sectors",
                "--skip", "3", dir.file("pt"), dir.file("out")},
               "--skip 3 is not a whole number of 4096-byte sectors");
}

TEST_F(CliErrors, EmptyInput) {
  write_file(dir.file("empty"), std::string());
  expect_error({"encrypt", "-d", dir.file("key"), dir.file("empty"), dir.file("out")}, "is empty");
  const RunResult r = run_cli({"encrypt", "-d", dir.file("key"), "-", dir.file("out")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("stdin was empty"), std::string::npos) << r.err;
  EXPECT_FALSE(file_exists(dir.file("out")));
}

TEST_F(CliErrors, ReadOnlyOutput) {
  const std::string ro = dir.file("ro");
  write_file(ro, std::string("precious"));
  ASSERT_EQ(::chmod(ro.c_str(), 0444), 0);
  expect_error({"encrypt", "-d", dir.file("key"), dir.file("pt"), ro}, "is read-only", "");
  EXPECT_EQ(read_file(ro), std::vector<uint8_t>({'p', 'r', 'e', 'c', 'i', 'o', 'u', 's'}));
  // A file that cannot be written in place: /proc's files refuse.
  expect_error({"encrypt", "-d", dir.file("key"), dir.file("pt"), "/proc/version"}, "/proc/version", "");
}

TEST_F(CliErrors, CudaWithoutGpu) {
  const GpuInventory gpus = discover_gpus();
  if (gpus.usable()) GTEST_SKIP() << "a GPU is usable here";
  expect_error({"encrypt", "-d", dir.file("key"), "--backend", "cuda", dir.file("pt"), dir.file("out")},
               "--backend cuda: ");
  expect_error({"compare", "--backends", "cuda", "--time", "0.01"}, "backend cuda: ", "");
  // reencrypt starts its engine before it stages a header: nothing is left behind.
  expect_error({"reencrypt", "--encrypt", "--header", dir.file("h"), "-d", dir.file("key"),
                "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--backend", "cuda",
                "--no-progress", dir.file("pt")},
               "--backend cuda: ", "h");
}

// --gpus: a bad list fails before anything is written; a list for a GPU that is not
// here is named with --backend.
TEST_F(CliErrors, GpusOption) {
  expect_error({"encrypt", "-d", dir.file("key"), "--gpus", "0,x", dir.file("pt"), dir.file("out")},
               "--gpus 0,x: 'x' is not a GPU ordinal");
  expect_error({"encrypt", "-d", dir.file("key"), "--gpus", "0,,1", dir.file("pt"), dir.file("out")},
               "is not a GPU ordinal");
  if (discover_gpus().usable()) GTEST_SKIP() << "a GPU is usable here";
  expect_error({"encrypt", "-d", dir.file("key"), "--backend", "cuda", "--gpus", "0,1",
                dir.file("pt"), dir.file("out")},
               "--backend cuda --gpus 0,1: ");
}

TEST_F(CliErrors, BadCipherAndBackendNames) {
  expect_error({"encrypt", "-d", dir.file("key"), "--cipher", "aes-cbc-essiv:sha256", dir.file("pt"), dir.file("out")},
               "unsupported cipher 'aes-cbc-essiv:sha256'");
  expect_error({"encrypt", "-d", dir.file("key"), "--backend", "fpga", dir.file("pt"), dir.file("out")},
               "unknown backend 'fpga'");
  expect_error({"encrypt", "-d", dir.file("key"), "--sector-size", "8192", dir.file("pt"), dir.file("out")},
               "--sector-size");
}

// `reencrypt --reduce-device-size`: each bad SIZE or misuse is one error, and the image,
// its directory (no resume file, no staged header) stay as they were.
TEST_F(CliErrors, ReduceDeviceSizeMisuse) {
  const auto image = read_file(dir.file("pt"));
  auto reencrypt = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"reencrypt", "-d", dir.file("key"), "--no-progress"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(dir.file("pt"));
    return args;
  };
  expect_error(reencrypt({"--encrypt", "--reduce-device-size", "1052672"}), "must be a multiple of 8 KiB", "");
  expect_error(reencrypt({"--encrypt", "--reduce-device-size", "100S"}), "must be a multiple of 8 KiB", "");
  expect_error(reencrypt({"--encrypt", "--header", dir.file("h"), "--reduce-device-size", "6K"}),
               "must be a multiple of 4 KiB", "h");
  expect_error(reencrypt({"--encrypt", "--reduce-device-size", "568K"}),
               "too small for a LUKS2 header with one 512-bit keyslot, which takes half of it: at "
               "least 589824 bytes", "");
  expect_error(reencrypt({"--encrypt", "--key-size", "256", "--reduce-device-size", "320K"}),
               "at least 335872 bytes", "");
  expect_error(reencrypt({"--encrypt", "--reduce-device-size", "2GiB"}), "at most 1 GiB", "");
  expect_error(reencrypt({"--encrypt", "--reduce-device-size", "32Q"}), "is not a size", "");
  expect_error(reencrypt({"--encrypt", "--reduce-device-size", "32M"}),
               "is not larger than --reduce-device-size 32M", "");
  expect_error(reencrypt({"--encrypt", "--reduce-device-size", "64K", "--key-size", "256"}),
               "too small", "");
  expect_error(reencrypt({"--decrypt", "--reduce-device-size", "32M"}), "--reduce-device-size is for --encrypt", "");
  expect_error(reencrypt({"--header", dir.file("h"), "--reduce-device-size", "32M"}),
               "--reduce-device-size is for --encrypt", "h");
  expect_error(reencrypt({"--encrypt", "--reduce-device-size", "32M", "--resilience", "journal"}),
               "moves the data with its own resilience (datashift)", "");
  expect_error(reencrypt({"--encrypt", "--resilience", "datashift", "--header", dir.file("h")}),
               "--resilience 'datashift'", "h");
  EXPECT_EQ(read_file(dir.file("pt")), image);
}

// A volume whose header is inside the image: a key change without --header and --decrypt
// --header NEWFILE. Each refusal is one error, and the image and its directory (no resume
// file, no staged or exported header) stay as they were.
TEST_F(CliErrors, HeaderInsideTheImageMisuse) {
  const std::string image = dir.file("vol");
  write_file(image, random_bytes(2 << 20));
  write_file(dir.file("pass"), std::string("a passphrase"));
  write_file(dir.file("wrong"), std::string("not it"));
  const std::vector<std::string> fast = {"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"};
  std::vector<std::string> make = {"reencrypt", "--encrypt", "--reduce-device-size", "1M", "-d",
                                   dir.file("pass"), "--no-progress", image};
  make.insert(make.end() - 1, fast.begin(), fast.end());
  const RunResult made = run_cli(make);
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const auto volume = read_file(image);
  auto reencrypt = [&](std::vector<std::string> extra, const std::string& target) {
    std::vector<std::string> args = {"reencrypt", "--no-progress"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(target);
    return args;
  };
  const std::string pass = dir.file("pass");
  expect_error(reencrypt({"--decrypt", "-d", pass}, image),
               "--header FILE is needed: --decrypt reads a detached LUKS2 header there, or "
               "exports a header inside the image to it", "");
  expect_error(reencrypt({"--encrypt", "-d", pass}, image),
               "--header FILE is needed: --encrypt writes a detached LUKS2 header there", "");
  expect_error(reencrypt({"-d", pass, "--resilience", "none"}, image),
               "--resilience none: a change of key with the header inside the image", "");
  // No LUKS2 header at the start of the file: nothing to change the key of.
  expect_error(reencrypt({"-d", pass, "--pbkdf", "pbkdf2"}, dir.file("pt")),
               "LUKS2 header in '" + dir.file("pt") + "'", "");
  std::vector<std::string> change = {"-d", dir.file("wrong")};
  change.insert(change.end(), fast.begin(), fast.end());
  expect_error(reencrypt(change, image), "wrong passphrase", "");
  expect_error(reencrypt({"--decrypt", "--header", dir.file("new.hdr"), "-d", dir.file("wrong")}, image),
               "wrong passphrase", "new.hdr");
  expect_error(reencrypt({"--decrypt", "--header", dir.file("new.hdr"), "-d", pass, "--resilience",
                          "journal"}, image),
               "--resilience journal: --decrypt of '" + image + "', whose header is inside it, "
               "moves the data with its own resilience (datashift)", "new.hdr");
  EXPECT_FALSE(file_exists(dir.file("new.hdr.sectorcrypt-export")));
  EXPECT_EQ(read_file(image), volume);

  // The header a finished --decrypt exported has no keyslot: a rerun is refused by name,
  // not taken for a detached header (it would decrypt the plain data again).
  RunResult r = run_cli(reencrypt({"--decrypt", "--header", dir.file("new.hdr"), "-d", pass}, image));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto plain = read_file(image);
  expect_error(reencrypt({"--decrypt", "--header", dir.file("new.hdr"), "-d", pass}, image),
               "the header '" + dir.file("new.hdr") + "' has no keyslot: nothing opens it", "");
  EXPECT_EQ(read_file(image), plain);
}

TEST_F(CliErrors, UsageErrorsExitTwo) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"encrypt", dir.file("pt")}, {"frobnicate"}, {"bench", "--time"}}) {
    const RunResult r = run_cli(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    ASSERT_EQ(lines(r.err).size(), 1u) << r.err;
    EXPECT_EQ(r.err.rfind("sectorcrypt: error: ", 0), 0u) << r.err;
  }
}

}  // namespace
}  // namespace sectorcrypt::clitest
