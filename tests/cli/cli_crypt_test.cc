// encrypt/decrypt through the CLI against OpenSSL with dm-crypt's IV per sector: every
// cipher name and sector size, --offset/--skip/--size, --iv-large-sectors, in place,
// pipes, streaming 1 GiB in bounded memory, progress, SIGINT.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "host/peer_ciphers.h"
#include "kernels/sector_format.h"
#include "tests/cli/subprocess.h"
#include "tests/test_support.h"

namespace sectorcrypt::clitest {
namespace {

using sectorcrypt::testing::random_bytes;
using sectorcrypt::testing::random_xts_key;

// The oracle: OpenSSL, one call per sector, IV numbered as dm-crypt numbers it (computed
// here independently of the library's own sector_format code).
std::vector<uint8_t> dmcrypt(const std::vector<uint8_t>& key, Direction dir, IvMode mode,
                             uint32_t ss, bool large, uint64_t skip, const uint8_t* data,
                             std::size_t n) {
  auto peer = peers::make_openssl_xts(key.data(), key.size(), dir);
  std::vector<uint8_t> out(n);
  std::string err;
  for (std::size_t off = 0; off < n; off += ss) {
    const uint64_t ivnum = large ? (skip * 512 + off) / ss : skip + off / 512;
    uint8_t iv[16];
    make_iv(mode, ivnum, iv);
    EXPECT_TRUE(peer->crypt_unit(iv, data + off, out.data() + off, ss, &err)) << err;
  }
  return out;
}

struct Fixture {
  TempDir dir;
  std::vector<uint8_t> key;
  std::string key_file;
  explicit Fixture(std::size_t key_len = 64) : key(random_xts_key(key_len)) {
    key_file = dir.file("key");
    write_file(key_file, key);
  }
};

const char* kCiphers[] = {"aes-xts-plain64", "aes-xts-plain", "aes-xts-plain64be"};
const IvMode kModes[] = {IvMode::plain64, IvMode::plain, IvMode::plain64be};

TEST(CliCrypt, EveryCipherSectorSizeAndIvUnitAgainstOpenssl) {
  for (std::size_t key_len : {32u, 64u}) {
    Fixture fx(key_len);
    const auto data = random_bytes(32 << 10);
    write_file(fx.dir.file("pt"), data);
    for (int c = 0; c < 3; ++c) {
      for (uint32_t ss : {512u, 1024u, 2048u, 4096u}) {
        for (bool large : {false, true}) {
          SCOPED_TRACE(std::string(kCiphers[c]) + " sector " + std::to_string(ss) +
                       (large ? " large" : "") + " key " + std::to_string(key_len));
          // A high --skip exercises the IV generators' upper bytes (plain truncates).
          const uint64_t skip = (uint64_t{1} << 33) + 8 * 4096;
          std::vector<std::string> args{"--cipher", kCiphers[c], "--key-file", fx.key_file,
                                        "--sector-size", std::to_string(ss), "--skip",
                                        std::to_string(skip), "--no-progress"};
          if (large) args.push_back("--iv-large-sectors");
          auto enc_args = args;
          enc_args.insert(enc_args.begin(), "encrypt");
          enc_args.push_back(fx.dir.file("pt"));
          enc_args.push_back(fx.dir.file("ct"));
          RunResult r = run_cli(enc_args);
          ASSERT_EQ(r.exit_code, 0) << r.err;
          EXPECT_EQ(r.err, "");
          const auto ct = read_file(fx.dir.file("ct"));
          ASSERT_EQ(ct, dmcrypt(fx.key, Direction::encrypt, kModes[c], ss, large, skip,
                                data.data(), data.size()));
          auto dec_args = args;
          dec_args.insert(dec_args.begin(), "decrypt");
          dec_args.push_back(fx.dir.file("ct"));
          dec_args.push_back(fx.dir.file("back"));
          r = run_cli(dec_args);
          ASSERT_EQ(r.exit_code, 0) << r.err;
          EXPECT_EQ(read_file(fx.dir.file("back")), data);
        }
      }
    }
  }
}

TEST(CliCrypt, OffsetSkipAndSize) {
  Fixture fx;
  const auto data = random_bytes(256 * 512);
  write_file(fx.dir.file("disk"), data);
  // Area: sectors [16, 16 + 64) of the input, IVs from 1000; OUTPUT holds just the area.
  // Engine threads that never poll (--idle-spin-us 0) give the same bytes.
  RunResult r = run_cli({"encrypt", "-d", fx.key_file, "--offset", "16", "--skip", "1000",
                         "--size", "64", "--idle-spin-us", "0", fx.dir.file("disk"),
                         fx.dir.file("area")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(fx.dir.file("area")),
            dmcrypt(fx.key, Direction::encrypt, IvMode::plain64, 512, false, 1000,
                    data.data() + 16 * 512, 64 * 512));
  // --size defaults to the end of INPUT; 4096-byte sectors with large IVs.
  r = run_cli({"encrypt", "-d", fx.key_file, "-o", "32", "-p", "64", "--sector-size", "4096",
               "--iv-large-sectors", fx.dir.file("disk"), fx.dir.file("tail")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(fx.dir.file("tail")),
            dmcrypt(fx.key, Direction::encrypt, IvMode::plain64, 4096, true, 64,
                    data.data() + 32 * 512, data.size() - 32 * 512));
}

TEST(CliCrypt, InPlaceLeavesTheRestUntouched) {
  Fixture fx;
  const auto data = random_bytes(64 * 512);
  const std::string disk = fx.dir.file("disk");
  write_file(disk, data);
  // The same file under another name: compared by st_dev/st_ino, not by spelling.
  const std::string alias = fx.dir.path() + "/./disk";
  RunResult r = run_cli({"encrypt", "-d", fx.key_file, "--offset", "8", "--size", "16",
                         "--skip", "8", disk, alias});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto expect = data;
  const auto area = dmcrypt(fx.key, Direction::encrypt, IvMode::plain64, 512, false, 8,
                            data.data() + 8 * 512, 16 * 512);
  std::copy(area.begin(), area.end(), expect.begin() + 8 * 512);
  EXPECT_EQ(read_file(disk), expect);
  r = run_cli({"decrypt", "-d", fx.key_file, "--offset", "8", "--size", "16", "--skip", "8",
               disk, disk});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(disk), data);
  EXPECT_EQ(fx.dir.entries().size(), 2u);  // key and disk: no temporaries
}

TEST(CliCrypt, PipesStdinToStdout) {
  Fixture fx;
  const auto data = random_bytes(3 << 20);  // several slots
  RunOptions opt;
  opt.stdin_data.assign(data.begin(), data.end());
  RunResult r = run_cli({"encrypt", "-d", fx.key_file, "--sector-size", "4096", "-", "-"}, opt);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto expect = dmcrypt(fx.key, Direction::encrypt, IvMode::plain64, 4096, false, 0,
                              data.data(), data.size());
  ASSERT_EQ(r.out.size(), expect.size());
  EXPECT_TRUE(std::equal(expect.begin(), expect.end(), reinterpret_cast<const uint8_t*>(r.out.data())));
  // Back through a pipe, with --offset skipping a header on stdin.
  opt.stdin_data = std::string(1024, 'h') + r.out;
  r = run_cli({"decrypt", "-d", fx.key_file, "--sector-size", "4096", "--offset", "2", "-", "-"}, opt);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, std::string(data.begin(), data.end()));
}

TEST(CliCrypt, EncryptThenDecryptIsIdentityThroughAShellPipe) {
  Fixture fx;
  const auto data = random_bytes(8 << 20);
  write_file(fx.dir.file("pt"), data);
  const std::string cli = cli_path();
  const std::string cmd = cli + " encrypt -d " + fx.key_file + " " + fx.dir.file("pt") + " - | " +
                          cli + " decrypt -d " + fx.key_file + " - - | cmp - " + fx.dir.file("pt");
  EXPECT_EQ(std::system(cmd.c_str()), 0);
}

TEST(CliCrypt, StreamsOneGibInBoundedMemory) {
  Fixture fx;
  const std::string big = fx.dir.file("big");
  {
    const int fd = ::open(big.c_str(), O_CREAT | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, off_t{1} << 30), 0);  // sparse: no disk cost
    ::close(fd);
  }
  RunResult r = run_cli({"encrypt", "-d", fx.key_file, "--sector-size", "4096", big, "/dev/null"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LT(r.max_rss_kib, 200 * 1024) << "peak RSS " << r.max_rss_kib << " KiB";
  EXPECT_GT(r.max_rss_kib, 0);
}

TEST(CliCrypt, ProgressOnlyWhenAsked) {
  Fixture fx;
  write_file(fx.dir.file("pt"), random_bytes(1 << 20));
  RunResult r = run_cli({"encrypt", "-d", fx.key_file, "--progress", fx.dir.file("pt"), fx.dir.file("ct")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("100%"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("/s"), std::string::npos) << r.err;
  r = run_cli({"encrypt", "-d", fx.key_file, fx.dir.file("pt"), fx.dir.file("ct")});  // not a tty
  EXPECT_EQ(r.err, "");
}

TEST(CliCrypt, SigintLeavesNoCompleteLookingOutput) {
  Fixture fx;
  const std::string out = fx.dir.file("out");
  RunOptions opt;
  opt.stdin_data = std::string(4 << 20, 'x');
  opt.stdin_chunk_before_signal = 1 << 20;  // then the CLI waits on stdin
  opt.signal = SIGINT;
  opt.signal_after_ms = 300;
  RunResult r = run_cli({"encrypt", "-d", fx.key_file, "-", out}, opt);
  EXPECT_EQ(r.exit_code, 130) << r.err;
  const auto err = lines(r.err);
  ASSERT_EQ(err.size(), 1u) << r.err;
  EXPECT_NE(err[0].find("interrupted after 1048576 bytes"), std::string::npos) << r.err;
  EXPECT_NE(err[0].find("not written"), std::string::npos) << r.err;
  EXPECT_FALSE(file_exists(out));
  EXPECT_EQ(fx.dir.entries().size(), 1u);  // just the key: the temporary is gone

  // To a pipe: says the output is incomplete.
  opt.signal = SIGTERM;
  r = run_cli({"encrypt", "-d", fx.key_file, "-", "-"}, opt);
  EXPECT_EQ(r.exit_code, 130) << r.err;
  EXPECT_NE(r.err.find("interrupted after 1048576 bytes; the output on stdout is incomplete"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.out.size(), 1u << 20);
}


TEST(CliCrypt, SigintInPlaceSaysWhichPartIsProcessed) {
  // tmpfs keeps this cheap; the area must be big enough to still be running at the signal.
  struct stat st {};
  if (::stat("/dev/shm", &st) != 0) GTEST_SKIP() << "no /dev/shm";
  char tmpl[] = "/dev/shm/sectorcrypt-cli-test.XXXXXX";
  const int fd = ::mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  const std::string disk = tmpl;
  ASSERT_EQ(::ftruncate(fd, off_t{2} << 30), 0);
  ::close(fd);
  Fixture fx;
  RunOptions opt;
  opt.signal = SIGINT;
  opt.signal_after_stderr = true;  // the first progress line: it is running
  const RunResult r = run_cli({"encrypt", "-d", fx.key_file, "--threads", "1", "--slots", "2",
                               "--progress", "--offset", "8", disk, disk}, opt);
  if (r.exit_code == 0) {
    ::unlink(disk.c_str());
    GTEST_SKIP() << "finished before the signal";
  }
  EXPECT_EQ(r.exit_code, 130) << r.err;
  ASSERT_EQ(lines(r.err).size(), 2u) << r.err;  // the progress line, then the message
  EXPECT_EQ(lines(r.err)[1].rfind("sectorcrypt: interrupted after ", 0), 0u) << r.err;
  unsigned long long done = 0, from = 0, to = 0;
  const auto at = r.err.find("interrupted after ");
  ASSERT_NE(at, std::string::npos) << r.err;
  ASSERT_EQ(std::sscanf(r.err.c_str() + at, "interrupted after %llu of", &done), 1) << r.err;
  const auto range = r.err.find("PARTLY encrypted: bytes [");
  ASSERT_NE(range, std::string::npos) << r.err;
  ASSERT_EQ(std::sscanf(r.err.c_str() + range, "PARTLY encrypted: bytes [%llu, %llu)", &from, &to), 2);
  EXPECT_EQ(from, 8u * 512);
  EXPECT_EQ(to, from + done);
  EXPECT_GT(done, 0u);
  EXPECT_LT(done, (2ull << 30) - 4096);
  EXPECT_EQ(done % 512, 0u);
  // Processed up to `to`, untouched (zero) after it, and the header before `from` untouched.
  const int rfd = ::open(disk.c_str(), O_RDONLY);
  ASSERT_GE(rfd, 0);
  std::vector<uint8_t> head(512), last(512), next(512), zero(512);
  ASSERT_EQ(::pread(rfd, head.data(), 512, 0), 512);
  ASSERT_EQ(::pread(rfd, last.data(), 512, static_cast<off_t>(to - 512)), 512);
  ASSERT_EQ(::pread(rfd, next.data(), 512, static_cast<off_t>(to)), 512);
  ::close(rfd);
  // In place is resumable: the interrupted run leaves its resume file next to the disk.
  const std::string resume = "/dev/shm/." + disk.substr(disk.rfind('/') + 1) + ".sectorcrypt-resume";
  EXPECT_EQ(::access(resume.c_str(), F_OK), 0) << r.err;
  EXPECT_NE(r.err.find(resume + "' records where: run the same command again to resume"),
            std::string::npos) << r.err;
  ::unlink(resume.c_str());
  ::unlink(disk.c_str());
  EXPECT_EQ(head, zero);
  EXPECT_EQ(last, dmcrypt(fx.key, Direction::encrypt, IvMode::plain64, 512, false,
                          done / 512 - 1, zero.data(), 512));
  EXPECT_EQ(next, zero);
}

}  // namespace
}  // namespace sectorcrypt::clitest
