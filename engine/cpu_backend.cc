#include "engine/cpu_backend.h"

#include <cstdio>

#include "engine/batch_io.h"
#include "engine/fault_injection.h"
#include "kernels/cpu/xts_cpu.h"

namespace sectorcrypt::engine {
namespace {

class CpuBackend final : public Backend {
 public:
  CpuBackend(unsigned threads, bool fallback)
      : fault_(fallback ? fault::Point::fallback_error : fault::Point::kernel_error) {
    std::snprintf(detail_, sizeof(detail_), "cpu (%s), %u threads",
                  cpu::selected_implementation(), threads);
  }
  BackendKind kind() const override { return BackendKind::cpu; }
  const char* detail() const override { return detail_; }
  Status publish_key(uint32_t, const XtsKey&) override { return Status(); }
  void clear_key(uint32_t) override {}

  void crypt(Batch& b) override {
    b.on_gpu = false;
    if (SECTORCRYPT_FAULT(fault_)) {
      // As a kernel that refuses the batch: nothing written, every part failed.
      for (uint32_t k = 0; k < b.part_count; ++k) {
        b.parts[k].status = Status::error(Errc::backend_failure,
                                          "CPU kernel failed: injected fault at %s",
                                          fault::point_name(fault_));
      }
      return;
    }
    b.rerunnable = false;  // direct parts write the caller's memory (in place: over the input)
    prepare_in_place_of_caller(b);
    for (uint32_t k = 0; k < b.part_count; ++k) {
      Part& p = b.parts[k];
      const RequestRecord& r = *p.req;
      const uint64_t start = r.start_sector + p.req_offset / 512;
      switch (p.mode) {
        case Part::Mode::direct:
          p.status = cpu::xts_crypt_sectors(*r.key, r.dir, r.format, start, p.in, p.out, p.bytes);
          break;
        case Part::Mode::staged: {
          uint8_t* d = b.data + p.slot_offset;
          p.status = cpu::xts_crypt_sectors(*r.key, r.dir, r.format, start, d, d, p.bytes);
          break;
        }
        case Part::Mode::gathered:
          p.status = cpu::xts_crypt_gathered(*r.key, r.dir, r.format.iv_mode,
                                             r.format.sector_size, p.sectors,
                                             b.in_ptrs + p.first_sector,
                                             b.out_ptrs + p.first_sector, b.iv + p.first_sector);
          break;
        case Part::Mode::dma:     // GPU modes: prepare_in_place_of_caller never sets them
        case Part::Mode::device:
          p.status = Status::error(Errc::backend_failure, "CPU backend given a GPU-only part");
          break;
      }
    }
    scatter_results(b);
  }

  void finish(Batch&) override {}

 private:
  [[maybe_unused]] fault::Point fault_;
  char detail_[96] = {};
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(unsigned threads, bool fallback) {
  return std::make_unique<CpuBackend>(threads, fallback);
}

}  // namespace sectorcrypt::engine
