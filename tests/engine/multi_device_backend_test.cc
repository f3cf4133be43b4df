// The multi-device backend (engine/multi_device_backend.h) on any machine: recording fake
// devices show where each batch, key and registration went, and CPU backends standing in
// for GPUs show the bytes match the reference whichever device crypted a batch. The same
// path over real GPUs (GPU 0 opened twice) is tested in engine_multi_gpu_test.cc.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

#include "engine/batch.h"
#include "engine/cpu_backend.h"
#include "engine/hybrid_backend.h"
#include "engine/multi_device_backend.h"
#include "tests/engine/engine_test_support.h"

namespace sectorcrypt::testing {
namespace {

using engine::Backend;
using engine::Batch;
using engine::Part;
using engine::RequestRecord;

// What one fake device was asked to do.
struct Log {
  std::vector<uint32_t> crypt_slots, finish_slots;
  std::vector<uint32_t> published, cleared;
  std::vector<void*> registered, unregistered;
};

class FakeDevice final : public Backend {
 public:
  FakeDevice(Log* log, int id) : log_(log), id_(id) {}
  bool fail_publish = false, fail_register = false, process_wide = false, accept_device = true;
  int id() const { return id_; }

  BackendKind kind() const override { return BackendKind::cuda; }
  const char* detail() const override { return id_ == 0 ? "fake 0" : "fake n"; }
  bool registers_process_wide() const override { return process_wide; }
  Status publish_key(uint32_t index, const XtsKey&) override {
    if (fail_publish) return Status::error(Errc::backend_failure, "fake publish failure");
    log_->published.push_back(index);
    return Status();
  }
  void clear_key(uint32_t index) override { log_->cleared.push_back(index); }
  Status register_host(void* p, std::size_t) override {
    if (fail_register) return Status::error(Errc::backend_failure, "fake register failure");
    log_->registered.push_back(p);
    return Status();
  }
  void unregister_host(void* p) override { log_->unregistered.push_back(p); }
  Status check_device_buffer(const void*, std::size_t) const override {
    return accept_device ? Status()
                         : Status::error(Errc::invalid_buffer, "not memory of fake %d", id_);
  }
  void crypt(Batch& b) override {
    log_->crypt_slots.push_back(b.slot);
    b.on_gpu = true;
  }
  void finish(Batch& b) override { log_->finish_slots.push_back(b.slot); }

 private:
  Log* log_;
  int id_;
};

struct Fakes {
  std::vector<Log> logs;
  std::vector<FakeDevice*> devs;  // owned by `backend`
  std::unique_ptr<Backend> backend;
};

Fakes make_fakes(std::size_t n) {
  Fakes f;
  f.logs.resize(n);
  std::vector<std::unique_ptr<Backend>> devices;
  for (std::size_t d = 0; d < n; ++d) {
    auto dev = std::make_unique<FakeDevice>(&f.logs[d], static_cast<int>(d));
    f.devs.push_back(dev.get());
    devices.push_back(std::move(dev));
  }
  f.backend = engine::make_multi_device_backend(std::move(devices));
  return f;
}

XtsKey some_key() {
  XtsKey k;
  const auto raw = key_of(64, 1);
  EXPECT_TRUE(XtsKey::create(raw.data(), raw.size(), &k).ok());
  return k;
}

TEST(MultiDeviceBackend, SlotCountsShareOutEverySlotOnce) {
  for (std::size_t slots : {1u, 2u, 3u, 7u, 8u, 64u}) {
    for (std::size_t n : {1u, 2u, 3u, 4u}) {
      std::size_t total = 0;
      for (std::size_t d = 0; d < n; ++d) {
        const std::size_t own = engine::multi_device_slot_count(slots, n, d);
        std::size_t expect = 0;
        for (std::size_t i = d; i < slots; i += n) ++expect;
        EXPECT_EQ(own, expect) << slots << " slots, " << n << " devices, device " << d;
        total += own;
      }
      EXPECT_EQ(total, slots);
    }
  }
}

TEST(MultiDeviceBackend, EveryBatchRunsAndFinishesOnItsSlotsDevice) {
  constexpr std::size_t kDevices = 3, kSlots = 8;
  Fakes f = make_fakes(kDevices);
  Batch b;
  for (int round = 0; round < 4; ++round) {
    for (uint32_t slot = 0; slot < kSlots; ++slot) {
      b.slot = slot;
      f.backend->crypt(b);
      EXPECT_EQ(b.slot, slot) << "the engine's slot number is put back";
      EXPECT_TRUE(b.on_gpu);
      f.backend->finish(b);
      EXPECT_EQ(b.slot, slot);
    }
  }
  for (std::size_t d = 0; d < kDevices; ++d) {
    std::vector<uint32_t> expect;
    for (int round = 0; round < 4; ++round) {
      for (uint32_t slot = 0; slot < kSlots; ++slot) {
        if (slot % kDevices == d) expect.push_back(slot / kDevices);
      }
    }
    EXPECT_EQ(f.logs[d].crypt_slots, expect) << "device " << d;
    EXPECT_EQ(f.logs[d].finish_slots, expect) << "device " << d;
    for (uint32_t local : f.logs[d].crypt_slots) {
      EXPECT_LT(local, engine::multi_device_slot_count(kSlots, kDevices, d));
    }
  }
}

TEST(MultiDeviceBackend, KeysArePublishedToAndClearedFromEveryDevice) {
  Fakes f = make_fakes(3);
  const XtsKey k = some_key();
  ASSERT_TRUE(f.backend->publish_key(5, k).ok());
  f.backend->clear_key(5);
  for (const Log& l : f.logs) {
    EXPECT_EQ(l.published, std::vector<uint32_t>{5});
    EXPECT_EQ(l.cleared, std::vector<uint32_t>{5});
  }
}

TEST(MultiDeviceBackend, AFailedPublishOnDeviceKClearsTheKeyFromTheOnesBefore) {
  for (std::size_t k = 0; k < 3; ++k) {
    Fakes f = make_fakes(3);
    f.devs[k]->fail_publish = true;
    const Status s = f.backend->publish_key(2, some_key());
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), Errc::backend_failure);
    EXPECT_NE(std::strstr(s.message(), "fake publish failure"), nullptr) << s.message();
    for (std::size_t d = 0; d < 3; ++d) {
      const std::vector<uint32_t> two{2};
      EXPECT_EQ(f.logs[d].published, d < k ? two : std::vector<uint32_t>{}) << d;
      EXPECT_EQ(f.logs[d].cleared, d < k ? two : std::vector<uint32_t>{}) << d;
    }
  }
}

TEST(MultiDeviceBackend, RegistrationReachesEveryDeviceAndIsUndoneOnFailure) {
  int range = 0;
  {
    Fakes f = make_fakes(3);
    ASSERT_TRUE(f.backend->register_host(&range, sizeof(range)).ok());
    f.backend->unregister_host(&range);
    for (const Log& l : f.logs) {
      EXPECT_EQ(l.registered, std::vector<void*>{&range});
      EXPECT_EQ(l.unregistered, std::vector<void*>{&range});
    }
  }
  for (std::size_t k = 0; k < 3; ++k) {
    Fakes f = make_fakes(3);
    f.devs[k]->fail_register = true;
    const Status s = f.backend->register_host(&range, sizeof(range));
    ASSERT_FALSE(s.ok());
    EXPECT_NE(std::strstr(s.message(), "fake register failure"), nullptr) << s.message();
    for (std::size_t d = 0; d < 3; ++d) {
      EXPECT_EQ(f.logs[d].registered.size(), d < k ? 1u : 0u) << d;
      EXPECT_EQ(f.logs[d].unregistered.size(), d < k ? 1u : 0u) << d;
    }
  }
}

// CUDA pins a range for every GPU with one cudaHostRegister (and refuses a second):
// devices that say so register once, through device 0.
TEST(MultiDeviceBackend, AProcessWideRegistrationIsMadeOnce) {
  int range = 0;
  Fakes f = make_fakes(2);
  for (FakeDevice* d : f.devs) d->process_wide = true;
  EXPECT_TRUE(f.backend->registers_process_wide());
  ASSERT_TRUE(f.backend->register_host(&range, sizeof(range)).ok());
  f.backend->unregister_host(&range);
  EXPECT_EQ(f.logs[0].registered, std::vector<void*>{&range});
  EXPECT_EQ(f.logs[0].unregistered, std::vector<void*>{&range});
  EXPECT_TRUE(f.logs[1].registered.empty());
  EXPECT_TRUE(f.logs[1].unregistered.empty());
}

// A request's batches may land on any device, so device memory must be every device's.
TEST(MultiDeviceBackend, DeviceMemoryIsAcceptedOnlyWhenEveryDeviceReachesIt) {
  int mem = 0;
  Fakes f = make_fakes(2);
  EXPECT_TRUE(f.backend->check_device_buffer(&mem, sizeof(mem)).ok());
  f.devs[1]->accept_device = false;
  const Status s = f.backend->check_device_buffer(&mem, sizeof(mem));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Errc::invalid_buffer);
  EXPECT_NE(std::strstr(s.message(), "every device"), nullptr) << s.message();
  EXPECT_NE(std::strstr(s.message(), "not memory of fake 1"), nullptr) << s.message();
}

TEST(MultiDeviceBackend, KindAndDetailNameEveryDevice) {
  Fakes f = make_fakes(2);
  EXPECT_EQ(f.backend->kind(), BackendKind::cuda);
  const std::string detail = f.backend->detail();
  EXPECT_NE(detail.find("2 devices"), std::string::npos) << detail;
  EXPECT_NE(detail.find("[0] fake 0"), std::string::npos) << detail;
  EXPECT_NE(detail.find("[1] fake n"), std::string::npos) << detail;
}

// CPU backends standing in for GPUs: one request per slot, each on its slot's device,
// byte for byte the reference (and the single-backend result).
TEST(MultiDeviceBackend, CpuStandInsMatchTheReference) {
  constexpr uint32_t kSlots = 5, kBytes = 8192;
  std::vector<std::unique_ptr<Backend>> devices;
  for (int d = 0; d < 2; ++d) devices.push_back(engine::make_cpu_backend(1));
  auto multi = engine::make_multi_device_backend(std::move(devices));
  auto single = engine::make_cpu_backend(1);
  XtsKey key = some_key();
  ASSERT_TRUE(multi->publish_key(0, key).ok());

  for (Direction dir : {Direction::encrypt, Direction::decrypt}) {
    for (uint32_t slot = 0; slot < kSlots; ++slot) {
      const auto in = bytes_of(kBytes, 100 + slot);
      std::vector<uint8_t> out_multi(kBytes), out_single(kBytes);
      for (Backend* be : {multi.get(), single.get()}) {
        std::vector<uint8_t>& out = be == multi.get() ? out_multi : out_single;
        RequestRecord r;
        r.key = &key;
        r.dir = dir;
        r.start_sector = 1000 * slot;
        r.bytes = kBytes;
        r.src[0] = {const_cast<uint8_t*>(in.data()), kBytes};
        r.src_count = 1;
        r.dst[0] = {out.data(), kBytes};
        r.dst_count = 1;
        std::vector<uint8_t> slot_mem(kBytes);
        std::vector<const uint8_t*> in_ptrs(kBytes / 512);
        std::vector<uint8_t*> out_ptrs(kBytes / 512);
        std::vector<uint8_t> staged(kBytes / 512);
        std::vector<uint64_t> iv(kBytes / 512);
        std::vector<uint32_t> key_index(kBytes / 512);
        Part part;
        part.req = &r;
        part.bytes = kBytes;
        part.sectors = kBytes / 512;
        Batch b;
        b.slot = slot;
        b.data = slot_mem.data();
        b.capacity = kBytes;
        b.parts = &part;
        b.part_count = 1;
        b.used = kBytes;
        b.sector_count = kBytes / 512;
        b.in_ptrs = in_ptrs.data();
        b.out_ptrs = out_ptrs.data();
        b.staged = staged.data();
        b.iv = iv.data();
        b.key_index = key_index.data();
        be->crypt(b);
        be->finish(b);
        EXPECT_EQ(b.slot, slot);
        ASSERT_TRUE(part.status.ok()) << part.status.message();
      }
      EXPECT_EQ(out_multi, reference(key, dir, SectorFormat{}, 1000 * slot, in)) << slot;
      EXPECT_EQ(out_multi, out_single) << slot;
    }
  }
  multi->clear_key(0);
}

// The hybrid backend holds the same rule for its two sides: a key the CPU side refuses
// is cleared from the GPU side again (the fakes stand in for both).
TEST(HybridBackend, AKeyTheCpuSideRefusesIsClearedFromTheGpuSide) {
  Log gpu_log, cpu_log;
  auto gpu = std::make_unique<FakeDevice>(&gpu_log, 0);
  auto cpu = std::make_unique<FakeDevice>(&cpu_log, 1);
  cpu->fail_publish = true;
  auto hybrid = engine::make_hybrid_backend(std::move(gpu), std::move(cpu), -1, 0);
  XtsKey key{};
  EXPECT_EQ(hybrid->publish_key(7, key).code(), Errc::backend_failure);
  EXPECT_EQ(gpu_log.published, std::vector<uint32_t>{7});
  EXPECT_EQ(gpu_log.cleared, std::vector<uint32_t>{7});
  EXPECT_TRUE(cpu_log.published.empty());
}

}  // namespace
}  // namespace sectorcrypt::testing
