// bench, compare and info: they run, their JSON parses and holds the promised fields,
// compare verifies the backends agree and draws its plot; --help for every command.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "engine/gpu_devices.h"
#include "tests/cli/subprocess.h"

namespace sectorcrypt::clitest {
namespace {

nlohmann::json read_json(const std::string& path) {
  const auto bytes = read_file(path);
  return nlohmann::json::parse(bytes.begin(), bytes.end());
}

TEST(CliReports, BenchJsonAndCsv) {
  TempDir dir;
  const RunResult r = run_cli({"bench", "--time", "0.01", "--buffer-size", "64K", "--json",
                               dir.file("b.json"), "--csv", dir.file("b.csv")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("MiB/s"), std::string::npos);
  const auto j = read_json(dir.file("b.json"));
  EXPECT_EQ(j["tool"], "sectorcrypt bench");
  EXPECT_TRUE(j.contains("version"));
  EXPECT_EQ(j["buffer_bytes"], 65536);
  std::set<std::string> backends;
  std::set<std::pair<unsigned, unsigned>> cells;
  for (const auto& row : j["results"]) {
    backends.insert(row["backend"].get<std::string>());
    cells.insert({row["key_bits"].get<unsigned>(), row["sector_size"].get<unsigned>()});
    EXPECT_EQ(row["cipher"], "aes-xts-plain64");
    EXPECT_GT(row["encrypt_mib_s"].get<double>(), 0.0);
    EXPECT_GT(row["decrypt_mib_s"].get<double>(), 0.0);
    EXPECT_TRUE(row.contains("kind"));
  }
  for (const char* b : {"cpu", "openssl", "libgcrypt"}) EXPECT_TRUE(backends.count(b)) << b;
  EXPECT_EQ(backends.count("cuda"), discover_gpus().usable() ? 1u : 0u);
  EXPECT_EQ(cells, (std::set<std::pair<unsigned, unsigned>>{{256, 512}, {256, 4096}, {512, 512}, {512, 4096}}));
  const auto csv = lines(std::string(reinterpret_cast<const char*>(read_file(dir.file("b.csv")).data()),
                                     read_file(dir.file("b.csv")).size()));
  ASSERT_FALSE(csv.empty());
  EXPECT_EQ(csv[0], "backend,kind,cipher,key_bits,sector_size,encrypt_mib_s,decrypt_mib_s");
  EXPECT_EQ(csv.size(), j["results"].size() + 1);
}

TEST(CliReports, CompareVerifiesAndFindsTheCrossover) {
  TempDir dir;
  const RunResult r = run_cli({"compare", "--time", "0.01", "--batch-sizes", "4K,64K,1M",
                               "--json", dir.file("c.json"), "--plot", dir.file("c.svg")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("verified: outputs byte-identical"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("crossover"), std::string::npos) << r.out;
  const GpuInventory gpus = discover_gpus();
  if (!gpus.usable()) {
    EXPECT_NE(r.out.find("no GPU is usable: " + gpus.why_none), std::string::npos) << r.out;
  }
  const auto j = read_json(dir.file("c.json"));
  EXPECT_EQ(j["tool"], "sectorcrypt compare");
  EXPECT_EQ(j["verified_identical"], true);
  EXPECT_EQ(j["batch_sizes"], nlohmann::json({4096, 65536, 1 << 20}));
  EXPECT_EQ(j["gpu_usable"], gpus.usable());
  if (!gpus.usable()) {
    EXPECT_EQ(j["gpu_why_none"], gpus.why_none);
  }
  std::set<std::string> names;
  for (const auto& b : j["backends"]) {
    names.insert(b["name"].get<std::string>());
    ASSERT_EQ(b["results"].size(), 3u);
    for (const auto& c : b["results"]) {
      EXPECT_GT(c["throughput_mib_s"].get<double>(), 0.0);
      EXPECT_GT(c["latency_p50_us"].get<double>(), 0.0);
      EXPECT_TRUE(c.contains("latency_p99_us"));
      EXPECT_EQ(c["identical"], true);
    }
  }
  for (const char* n : {"cpu", "openssl", "libgcrypt"}) EXPECT_TRUE(names.count(n)) << n;
  ASSERT_FALSE(j["crossovers"].empty());
  for (const auto& c : j["crossovers"]) {
    EXPECT_TRUE(c.contains("a") && c.contains("b") && c.contains("summary"));
    EXPECT_TRUE(c["crossover_bytes"].is_null() || c["crossover_bytes"].is_number());
    EXPECT_EQ(c["leader_by_batch"].size(), 3u);
  }
  const auto svg = read_file(dir.file("c.svg"));
  const std::string s(svg.begin(), svg.end());
  EXPECT_EQ(s.rfind("<svg", 0), 0u);
  EXPECT_NE(s.find("<polyline"), std::string::npos);
  EXPECT_NE(s.find(">cpu<"), std::string::npos);  // legend
  EXPECT_NE(s.find(">1M<"), std::string::npos);   // log-x tick labels
}

TEST(CliReports, InfoShowsVersionCpuAndGpus) {
  TempDir dir;
  const RunResult r = run_cli({"info", "--json", dir.file("i.json")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("sectorcrypt 0."), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cpu kernel:"), std::string::npos) << r.out;
  const auto j = read_json(dir.file("i.json"));
  for (const char* f : {"aes", "pclmul", "avx2", "vaes", "vpclmulqdq", "avx512f"}) {
    EXPECT_TRUE(j["cpu"]["features"].contains(f)) << f;
  }
  EXPECT_FALSE(j["cpu"]["implementation"].get<std::string>().empty());
  if (!discover_gpus().usable()) {
    EXPECT_FALSE(j["gpu_why_none"].get<std::string>().empty());
  }
}

TEST(CliReports, HelpForEveryCommand) {
  for (const char* cmd : {"encrypt", "decrypt", "bench", "compare", "info"}) {
    const RunResult r = run_cli({cmd, "--help"});
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_NE(r.out.find("Usage: "), std::string::npos) << cmd;
  }
  const RunResult r = run_cli({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("sectorcrypt 0."), std::string::npos);
}

}  // namespace
}  // namespace sectorcrypt::clitest
