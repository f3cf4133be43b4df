// The CUDA kernels through launch_xts(): argument checks and key conversion (no GPU
// needed), then, where discover_gpus() finds a usable GPU, every variant against the
// reference over random batches. Without one the GPU tests skip with its reason.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "engine/gpu_devices.h"
#include "kernels/cuda/xts_cuda.h"
#include "kernels/xts_key.h"
#include "kernels/xts_reference.h"
#include "tests/test_support.h"

namespace sectorcrypt {
namespace {

using cuda::AesVariant;
using cuda::DeviceXtsKey;
using cuda::GpuBatch;

constexpr AesVariant kVariants[] = {AesVariant::table, AesVariant::constant_time,
                                    AesVariant::bitsliced32};
constexpr uint8_t kPoison = 0xa5;
constexpr std::size_t kGuard = 4096;  // poisoned bytes each side of an output

#define ASSERT_CUDA(expr)                                                         \
  do {                                                                            \
    const cudaError_t err_ = (expr);                                              \
    ASSERT_EQ(err_, cudaSuccess) << #expr << ": " << cudaGetErrorString(err_);    \
  } while (0)

#define SKIP_WITHOUT_GPU()                                                        \
  do {                                                                            \
    const GpuInventory inv_ = discover_gpus();                                    \
    if (!inv_.usable()) GTEST_SKIP() << "no usable GPU: " << inv_.why_none;       \
    ASSERT_CUDA(cudaSetDevice(inv_.gpus.front().ordinal));                        \
  } while (0)

// A batch with plausible, aligned but never dereferenced pointers: every check in
// launch_xts happens before anything touches the device.
GpuBatch fake_batch() {
  GpuBatch b{};
  b.in = reinterpret_cast<const uint8_t*>(uintptr_t{0x100000});
  b.out = reinterpret_cast<uint8_t*>(uintptr_t{0x900000});
  b.count = 8;
  b.sector_size = 512;
  b.dir = Direction::encrypt;
  b.iv_mode = IvMode::plain64;
  b.iv_numbers = reinterpret_cast<const uint64_t*>(uintptr_t{0x200000});
  b.key_index = reinterpret_cast<const uint32_t*>(uintptr_t{0x300000});
  b.keys = reinterpret_cast<const DeviceXtsKey*>(uintptr_t{0x400000});
  return b;
}

TEST(CudaLaunch, RejectsBadArgumentsBeforeEnqueueing) {
  struct Case {
    const char* what;
    void (*mutate)(GpuBatch&);
  };
  const Case cases[] = {
      {"null in", [](GpuBatch& b) { b.in = nullptr; }},
      {"null out", [](GpuBatch& b) { b.out = nullptr; }},
      {"null iv_numbers", [](GpuBatch& b) { b.iv_numbers = nullptr; }},
      {"null key_index", [](GpuBatch& b) { b.key_index = nullptr; }},
      {"null keys", [](GpuBatch& b) { b.keys = nullptr; }},
      {"sector 496", [](GpuBatch& b) { b.sector_size = 496; }},
      {"sector 4112", [](GpuBatch& b) { b.sector_size = 4112; }},
      {"sector 520", [](GpuBatch& b) { b.sector_size = 520; }},
      {"direction", [](GpuBatch& b) { b.dir = static_cast<Direction>(7); }},
      {"iv mode", [](GpuBatch& b) { b.iv_mode = static_cast<IvMode>(9); }},
      {"in misaligned", [](GpuBatch& b) { b.in += 8; }},
      {"out misaligned", [](GpuBatch& b) { b.out += 4; }},
      {"keys misaligned", [](GpuBatch& b) {
         b.keys = reinterpret_cast<const DeviceXtsKey*>(uintptr_t{0x400008});
       }},
      {"iv_numbers misaligned", [](GpuBatch& b) {
         b.iv_numbers = reinterpret_cast<const uint64_t*>(uintptr_t{0x200004});
       }},
      {"key_index misaligned", [](GpuBatch& b) {
         b.key_index = reinterpret_cast<const uint32_t*>(uintptr_t{0x300002});
       }},
      {"partial overlap", [](GpuBatch& b) { b.out = const_cast<uint8_t*>(b.in) + 512; }},
      {"size overflow", [](GpuBatch& b) { b.count = SIZE_MAX / 512 + 1; }},
  };
  for (AesVariant v : kVariants) {
    for (const Case& c : cases) {
      GpuBatch b = fake_batch();
      c.mutate(b);
      EXPECT_EQ(cuda::launch_xts(b, v, nullptr), cudaErrorInvalidValue) << c.what;
    }
    GpuBatch b = fake_batch();
    EXPECT_EQ(cuda::launch_xts(b, static_cast<AesVariant>(5), nullptr), cudaErrorInvalidValue);
    b.count = 0;
    b.in = nullptr;
    EXPECT_EQ(cuda::launch_xts(b, v, nullptr), cudaSuccess) << "an empty batch is a no-op";
  }
}

TEST(CudaLaunch, VariantNamesAndDefault) {
  EXPECT_STREQ(cuda::aes_variant_name(AesVariant::table), "table");
  EXPECT_STREQ(cuda::aes_variant_name(AesVariant::constant_time), "constant_time");
  EXPECT_STREQ(cuda::aes_variant_name(AesVariant::bitsliced32), "bitsliced32");
  EXPECT_EQ(cuda::kDefaultAesVariant, AesVariant::constant_time);
}

TEST(CudaLaunch, DeviceKeyHoldsTheThreeSchedules) {
  for (std::size_t len : {32u, 64u}) {
    const auto raw = testing::random_xts_key(len);
    XtsKey key;
    ASSERT_TRUE(XtsKey::create(raw.data(), raw.size(), &key));
    DeviceXtsKey dk;
    std::memset(&dk, 0x5a, sizeof(dk));
    cuda::to_device_key(key, &dk);
    EXPECT_EQ(dk.rounds, len == 32 ? 10 : 14);
    EXPECT_EQ(0, std::memcmp(dk.data_enc, key.data_encrypt().rk, sizeof(dk.data_enc)));
    EXPECT_EQ(0, std::memcmp(dk.data_dec, key.data_decrypt().rk, sizeof(dk.data_dec)));
    EXPECT_EQ(0, std::memcmp(dk.tweak_enc, key.tweak_encrypt().rk, sizeof(dk.tweak_enc)));
  }
  DeviceXtsKey dk;
  std::memset(&dk, 0x5a, sizeof(dk));
  cuda::to_device_key(XtsKey(), &dk);
  const DeviceXtsKey zero{};
  EXPECT_EQ(0, std::memcmp(&dk, &zero, sizeof(dk))) << "an empty key gives a zeroed entry";
}

// Device memory that frees itself.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t bytes) : bytes_(bytes) {
    err_ = cudaMalloc(&ptr_, bytes);
    if (err_ != cudaSuccess) ptr_ = nullptr;
  }
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  cudaError_t status() const { return err_; }
  uint8_t* bytes() const { return static_cast<uint8_t*>(ptr_); }
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  std::size_t size() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_;
  cudaError_t err_;
};

// A random batch: a key table of AES-128 and AES-256 keys used in mixed order, random IV
// numbers (edge values first).
struct Batch {
  std::vector<XtsKey> keys;
  std::vector<DeviceXtsKey> device_keys;
  std::vector<uint64_t> iv_numbers;
  std::vector<uint32_t> key_index;
  std::vector<uint8_t> in;
  uint32_t sector_size;
  IvMode mode;

  Batch(std::size_t count, uint32_t size, IvMode iv_mode, std::size_t key_count = 6)
      : sector_size(size), mode(iv_mode) {
    auto& gen = testing::rng();
    keys.resize(key_count);
    device_keys.resize(key_count);
    for (std::size_t k = 0; k < key_count; ++k) {
      const auto raw = testing::random_xts_key(k % 2 ? 64 : 32, gen);
      (void)XtsKey::create(raw.data(), raw.size(), &keys[k]);
      cuda::to_device_key(keys[k], &device_keys[k]);
    }
    const uint64_t edges[] = {0, 1, 0xffffffffull, ~uint64_t{0}};
    for (std::size_t i = 0; i < count; ++i) {
      iv_numbers.push_back(i < 4 ? edges[i] : gen());
      key_index.push_back(static_cast<uint32_t>(gen() % key_count));
    }
    in = testing::random_bytes(count * size, gen);
  }

  std::size_t count() const { return iv_numbers.size(); }

  // Sector i through the reference.
  void expect_sector(std::size_t i, Direction dir, const uint8_t* got, const uint8_t* input,
                     const std::string& what) const {
    uint8_t iv[16];
    make_iv(mode, iv_numbers[i], iv);
    std::vector<uint8_t> want(sector_size);
    ASSERT_TRUE(ref::xts_crypt_unit(keys[key_index[i]], dir, iv, input + i * sector_size,
                                    want.data(), sector_size));
    ASSERT_EQ(0, std::memcmp(want.data(), got + i * sector_size, sector_size))
        << what << ": sector " << i << " of " << count();
  }
};

// Uploads the batch's tables; the data goes where the caller says.
struct DeviceTables {
  DeviceBuffer keys, ivs, index;
  explicit DeviceTables(const Batch& b)
      : keys(b.device_keys.size() * sizeof(DeviceXtsKey)),
        ivs(b.count() * sizeof(uint64_t)),
        index(b.count() * sizeof(uint32_t)) {}
  cudaError_t upload(const Batch& b) {
    for (cudaError_t e : {keys.status(), ivs.status(), index.status()}) {
      if (e != cudaSuccess) return e;
    }
    cudaError_t e = cudaMemcpy(keys.bytes(), b.device_keys.data(), keys.size(),
                               cudaMemcpyHostToDevice);
    if (e == cudaSuccess) {
      e = cudaMemcpy(ivs.bytes(), b.iv_numbers.data(), ivs.size(), cudaMemcpyHostToDevice);
    }
    if (e == cudaSuccess) {
      e = cudaMemcpy(index.bytes(), b.key_index.data(), index.size(), cudaMemcpyHostToDevice);
    }
    return e;
  }
  GpuBatch batch(const Batch& b, const uint8_t* in, uint8_t* out, Direction dir) const {
    return GpuBatch{in,
                    out,
                    b.count(),
                    b.sector_size,
                    dir,
                    b.mode,
                    ivs.as<const uint64_t>(),
                    index.as<const uint32_t>(),
                    keys.as<const DeviceXtsKey>()};
  }
};

// Out of place into a poisoned buffer with poisoned guards, then in place; every sector
// checked against the reference (or every `stride`-th for large batches), guards intact.
void run_batch(const Batch& b, AesVariant v, Direction dir, std::size_t stride,
               const std::string& what) {
  const std::size_t bytes = b.count() * b.sector_size;
  DeviceTables tables(b);
  ASSERT_CUDA(tables.upload(b));
  DeviceBuffer in(bytes), out(bytes + 2 * kGuard);
  ASSERT_CUDA(in.status());
  ASSERT_CUDA(out.status());
  ASSERT_CUDA(cudaMemcpy(in.bytes(), b.in.data(), bytes, cudaMemcpyHostToDevice));
  ASSERT_CUDA(cudaMemset(out.bytes(), kPoison, out.size()));

  ASSERT_CUDA(cuda::launch_xts(tables.batch(b, in.bytes(), out.bytes() + kGuard, dir), v,
                               nullptr));
  ASSERT_CUDA(cudaDeviceSynchronize());
  std::vector<uint8_t> got(out.size());
  ASSERT_CUDA(cudaMemcpy(got.data(), out.bytes(), out.size(), cudaMemcpyDeviceToHost));
  for (std::size_t g = 0; g < kGuard; ++g) {
    ASSERT_EQ(got[g], kPoison) << what << ": wrote before the output";
    ASSERT_EQ(got[kGuard + bytes + g], kPoison) << what << ": wrote past the output";
  }
  for (std::size_t i = 0; i < b.count(); i += stride) {
    b.expect_sector(i, dir, got.data() + kGuard, b.in.data(), what);
    if (::testing::Test::HasFatalFailure()) return;
  }
  if (stride > 1) b.expect_sector(b.count() - 1, dir, got.data() + kGuard, b.in.data(), what);

  // In place: the same result.
  ASSERT_CUDA(cuda::launch_xts(tables.batch(b, in.bytes(), in.bytes(), dir), v, nullptr));
  ASSERT_CUDA(cudaDeviceSynchronize());
  std::vector<uint8_t> inplace(bytes);
  ASSERT_CUDA(cudaMemcpy(inplace.data(), in.bytes(), bytes, cudaMemcpyDeviceToHost));
  ASSERT_EQ(0, std::memcmp(inplace.data(), got.data() + kGuard, bytes)) << what << " in place";
}

TEST(CudaXts, RandomBatchesMatchTheReference) {
  SKIP_WITHOUT_GPU();
  auto& gen = testing::rng();
  for (AesVariant v : kVariants) {
    for (uint32_t size : {512u, 1024u, 2048u, 4096u, 528u, 4080u}) {
      for (Direction dir : {Direction::encrypt, Direction::decrypt}) {
        const IvMode mode = static_cast<IvMode>(gen() % 3);
        // Counts around the group sizes: one sector, partial warps and blocks.
        for (std::size_t count : {std::size_t{1}, std::size_t{33}, std::size_t{300}}) {
          const Batch b(count, size, mode);
          run_batch(b, v, dir, 1,
                    std::string(cuda::aes_variant_name(v)) + " size " + std::to_string(size) +
                        " count " + std::to_string(count) + " " + iv_mode_name(mode) +
                        (dir == Direction::encrypt ? " enc" : " dec"));
          if (HasFatalFailure()) return;
        }
      }
    }
  }
}

// Large enough that warps take 32 sectors each (and the grid has many thread blocks);
// every 97th sector and the last checked against the reference.
TEST(CudaXts, LargeBatchesWithFullWarpGroups) {
  SKIP_WITHOUT_GPU();
  for (AesVariant v : kVariants) {
    for (Direction dir : {Direction::encrypt, Direction::decrypt}) {
      const Batch b(8192 * 32 + 77, 512, IvMode::plain64, 16);
      run_batch(b, v, dir, 97,
                std::string(cuda::aes_variant_name(v)) +
                    (dir == Direction::encrypt ? " enc" : " dec") + " large");
      if (HasFatalFailure()) return;
    }
  }
}

// Keys in runs rather than at random: steps whose columns all use one key (the bitsliced
// kernel's uniform key slices, kept from step to step while the key stays) and steps where
// the key or the key size changes part way.
TEST(CudaXts, RunsOfOneKey) {
  SKIP_WITHOUT_GPU();
  for (AesVariant v : kVariants) {
    for (uint32_t size : {512u, 4096u, 528u}) {
      for (Direction dir : {Direction::encrypt, Direction::decrypt}) {
        for (std::size_t run : {std::size_t{0}, std::size_t{37}}) {
          Batch b(run ? 700 : 300, size, IvMode::plain64, run ? 2 : 1);
          if (run) {
            for (std::size_t i = 0; i < b.count(); ++i) {
              b.key_index[i] = static_cast<uint32_t>((i / run) % 2);
            }
          }
          run_batch(b, v, dir, 1,
                    std::string(cuda::aes_variant_name(v)) + " size " + std::to_string(size) +
                        (run ? " runs of 37 over two key sizes" : " one key") +
                        (dir == Direction::encrypt ? " enc" : " dec"));
          if (HasFatalFailure()) return;
        }
      }
    }
  }
}

// The variants agree with each other and decryption inverts encryption on the device.
TEST(CudaXts, VariantsAgreeAndRoundTrip) {
  SKIP_WITHOUT_GPU();
  const Batch b(1000, 4096, IvMode::plain64be);
  const std::size_t bytes = b.count() * b.sector_size;
  DeviceTables tables(b);
  ASSERT_CUDA(tables.upload(b));
  DeviceBuffer in(bytes), table_out(bytes), ct_out(bytes), back(bytes);
  for (const DeviceBuffer* d : {&in, &table_out, &ct_out, &back}) ASSERT_CUDA(d->status());
  ASSERT_CUDA(cudaMemcpy(in.bytes(), b.in.data(), bytes, cudaMemcpyHostToDevice));
  ASSERT_CUDA(cuda::launch_xts(tables.batch(b, in.bytes(), table_out.bytes(), Direction::encrypt),
                               AesVariant::table, nullptr));
  std::vector<uint8_t> t(bytes), c(bytes), p(bytes);
  ASSERT_CUDA(cudaDeviceSynchronize());
  ASSERT_CUDA(cudaMemcpy(t.data(), table_out.bytes(), bytes, cudaMemcpyDeviceToHost));
  for (AesVariant v : {AesVariant::constant_time, AesVariant::bitsliced32}) {
    ASSERT_CUDA(cudaMemset(ct_out.bytes(), 0, bytes));
    ASSERT_CUDA(cudaMemset(back.bytes(), 0, bytes));
    ASSERT_CUDA(cuda::launch_xts(tables.batch(b, in.bytes(), ct_out.bytes(), Direction::encrypt),
                                 v, nullptr));
    ASSERT_CUDA(cuda::launch_xts(tables.batch(b, ct_out.bytes(), back.bytes(), Direction::decrypt),
                                 v, nullptr));
    ASSERT_CUDA(cudaDeviceSynchronize());
    ASSERT_CUDA(cudaMemcpy(c.data(), ct_out.bytes(), bytes, cudaMemcpyDeviceToHost));
    ASSERT_CUDA(cudaMemcpy(p.data(), back.bytes(), bytes, cudaMemcpyDeviceToHost));
    EXPECT_EQ(t, c) << "table and " << cuda::aes_variant_name(v) << " differ";
    EXPECT_EQ(p, b.in) << cuda::aes_variant_name(v) << ": decrypt(encrypt(x)) != x";
  }
}

}  // namespace
}  // namespace sectorcrypt
