// NUMA placement: the sysfs readers against a made-up sysfs tree, and slot memory bound
// to a node (the CPU path: mmap, mbind, mlock; the CUDA path adds cudaHostRegister).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "engine/numa_node.h"
#include "engine/pinned_memory.h"
#ifdef SECTORCRYPT_HAVE_CUDA
#include <cuda_runtime.h>
#endif

namespace sectorcrypt {
namespace {

namespace fs = std::filesystem;

struct FakeSysfs {
  fs::path root;
  FakeSysfs() {
    char tmpl[] = "/tmp/sectorcrypt-sysfs-XXXXXX";
    root = mkdtemp(tmpl);
  }
  ~FakeSysfs() { fs::remove_all(root); }
  void write(const std::string& rel, const std::string& text) {
    fs::create_directories((root / rel).parent_path());
    std::ofstream(root / rel) << text;
  }
};

TEST(NumaNode, PciDeviceNodeFromSysfs) {
  FakeSysfs s;
  s.write("bus/pci/devices/0000:3b:00.0/numa_node", "1\n");
  s.write("bus/pci/devices/0000:17:00.0/numa_node", "-1\n");
  s.write("bus/pci/devices/0000:18:00.0/numa_node", "garbage\n");
  EXPECT_EQ(numa_node_of_pci_device(s.root, "0000:3B:00.0"), 1);  // CUDA writes upper case
  EXPECT_EQ(numa_node_of_pci_device(s.root, "0000:3b:00.0"), 1);
  EXPECT_EQ(numa_node_of_pci_device(s.root, "0000:17:00.0"), -1);
  EXPECT_EQ(numa_node_of_pci_device(s.root, "0000:18:00.0"), -1);
  EXPECT_EQ(numa_node_of_pci_device(s.root, "0000:99:00.0"), -1);
}

TEST(NumaNode, NodeCountFromSysfs) {
  FakeSysfs s;
  EXPECT_EQ(numa_node_count(s.root), 1);  // no node directory at all
  s.write("devices/system/node/node0/cpulist", "0-7");
  s.write("devices/system/node/has_cpu", "0-1");
  EXPECT_EQ(numa_node_count(s.root), 1);
  s.write("devices/system/node/node1/cpulist", "8-15");
  EXPECT_EQ(numa_node_count(s.root), 2);
  EXPECT_GE(numa_node_count("/sys"), 1);
}

TEST(NumaNode, SlotMemoryBoundToANode) {
  PinnedMemory::Options o;
  o.numa_node = 0;
  PinnedMemory m;
  ASSERT_TRUE(PinnedMemory::allocate(3 * 4096 + 10, o, &m).ok());
  EXPECT_EQ(m.size(), 4 * 4096u);
  EXPECT_NE(std::strstr(m.detail(), "NUMA node 0"), nullptr) << m.detail();
  for (std::size_t i = 0; i < m.size(); ++i) ASSERT_EQ(m.data()[i], 0) << i;
  std::memset(m.data(), 0xab, m.size());
  // A node that does not exist is reported, not fatal: the memory still works.
  o.numa_node = 1023;
  PinnedMemory n;
  ASSERT_TRUE(PinnedMemory::allocate(4096, o, &n).ok());
  EXPECT_NE(std::strstr(n.detail(), "NUMA node 1023 refused"), nullptr) << n.detail();
  n.data()[0] = 1;
}

#ifdef SECTORCRYPT_HAVE_CUDA
// The CUDA slots of a machine of several nodes: mmap'ed, bound, then host-registered.
TEST(NumaNode, CudaSlotMemoryBoundToANode) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    (void)cudaGetLastError();
    GTEST_SKIP() << "no usable GPU";
  }
  PinnedMemory::Options o;
  o.cuda = true;
  o.numa_node = 0;
  PinnedMemory m;
  ASSERT_TRUE(PinnedMemory::allocate(1 << 20, o, &m).ok());
  EXPECT_EQ(m.kind(), PinnedKind::cuda_registered);
  EXPECT_NE(std::strstr(m.detail(), "CUDA pinned, NUMA node 0"), nullptr) << m.detail();
  unsigned flags = 0;
  EXPECT_EQ(cudaHostGetFlags(&flags, m.data()), cudaSuccess);  // the driver knows it pinned
  void* dev = nullptr;
  ASSERT_EQ(cudaMalloc(&dev, m.size()), cudaSuccess);
  std::memset(m.data(), 0x5c, m.size());
  EXPECT_EQ(cudaMemcpy(dev, m.data(), m.size(), cudaMemcpyHostToDevice), cudaSuccess);
  cudaFree(dev);
  void* p = m.data();
  m.reset();  // unregistered and unmapped: the driver no longer knows the address
  EXPECT_NE(cudaHostGetFlags(&flags, p), cudaSuccess);
  (void)cudaGetLastError();
}
#endif

}  // namespace
}  // namespace sectorcrypt
