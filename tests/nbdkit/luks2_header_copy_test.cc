// HeaderCopy without nbdkit: a LUKS2 header at the start of an image that cryptsetup made,
// seen only through a LowerDevice, copied into a memfd that libcryptsetup opens; and the
// images it must refuse (LUKS1, no header, a header that puts the data at offset 0).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "host/luks2/luks2_volume.h"
#include "host/nbdkit/luks2_header_copy.h"

namespace sectorcrypt::nbd {
namespace {

const std::string kPass = "header copy";
const std::string kFastKdf = " --pbkdf pbkdf2 --pbkdf-force-iterations 1000 -q --batch-mode";

class FileDevice : public LowerDevice {
 public:
  explicit FileDevice(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    data.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  int pread(void* buf, uint32_t count, uint64_t offset, int* err) override {
    if (offset + count > data.size()) return *err = EIO, -1;
    std::memcpy(buf, data.data() + offset, count);
    return 0;
  }
  int pwrite(const void*, uint32_t, uint64_t, bool, int* err) override { return *err = EROFS, -1; }
  std::vector<char> data;
};

class HeaderCopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sectorcrypt-hdrcopy-XXXXXX";
    dir_ = mkdtemp(tmpl);
    std::ofstream(file("pass")) << kPass;
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }
  std::string file(const std::string& name) const { return dir_ + "/" + name; }
  void make_image(const std::string& name, std::size_t bytes, const std::string& format_args) {
    std::ofstream(file(name), std::ios::binary) << std::string(bytes, '\0');
    const std::string cmd = std::string(CRYPTSETUP_PROGRAM) + " luksFormat " + format_args +
                            " --key-file " + file("pass") + kFastKdf + " " + file(name) + " 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  std::string dir_;
};

TEST_F(HeaderCopyTest, InImageHeaderOpensFromTheCopy) {
  make_image("l2", 20 << 20, "--type luks2 --key-size 256 --sector-size 4096");
  FileDevice dev(file("l2"));
  HeaderCopy copy;
  Status s = copy.copy_from(dev, dev.data.size());
  ASSERT_TRUE(s.ok()) << s.message();
  luks2::HeaderLocation where;
  where.header = copy.path();
  where.image_bytes = dev.data.size();
  luks2::Volume v;
  s = luks2::open_volume(where, kPass.data(), kPass.size(), -1, &v);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(v.layout.format.sector_size, 4096u);
  EXPECT_EQ(v.layout.data_offset_bytes, 16u << 20);
  EXPECT_EQ(v.layout.data_bytes, 4u << 20);
  EXPECT_EQ(v.key.size(), 32u);
}

TEST_F(HeaderCopyTest, RefusesWhatItCannotServe) {
  make_image("l1", 4 << 20, "--type luks1");
  FileDevice l1(file("l1"));
  HeaderCopy copy;
  Status s = copy.copy_from(l1, l1.data.size());
  EXPECT_EQ(s.code(), Errc::invalid_format);
  EXPECT_NE(std::string(s.message()).find("LUKS1 header"), std::string::npos) << s.message();

  std::ofstream(file("zeros"), std::ios::binary) << std::string(1 << 20, '\0');
  FileDevice zeros(file("zeros"));
  HeaderCopy copy2;
  s = copy2.copy_from(zeros, zeros.data.size());
  EXPECT_EQ(s.code(), Errc::invalid_format);
  EXPECT_NE(std::string(s.message()).find("no LUKS header"), std::string::npos) << s.message();

  // A detached header's first bytes put the data at offset 0.
  std::ofstream(file("data"), std::ios::binary) << std::string(1 << 20, '\0');
  const std::string cmd = std::string(CRYPTSETUP_PROGRAM) +
                          " reencrypt --encrypt --type luks2 --header " + file("hdr") +
                          " --key-file " + file("pass") + kFastKdf + " " + file("data") + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  FileDevice hdr(file("hdr"));
  HeaderCopy copy3;
  s = copy3.copy_from(hdr, hdr.data.size());
  EXPECT_EQ(s.code(), Errc::invalid_format);
  EXPECT_NE(std::string(s.message()).find("header=FILE"), std::string::npos) << s.message();

  // Too short to hold what the header says comes before the data.
  make_image("l2", 20 << 20, "--type luks2");
  FileDevice l2(file("l2"));
  HeaderCopy copy4;
  s = copy4.copy_from(l2, 8 << 20);
  EXPECT_EQ(s.code(), Errc::invalid_format);
  EXPECT_NE(std::string(s.message()).find("beyond"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace sectorcrypt::nbd
