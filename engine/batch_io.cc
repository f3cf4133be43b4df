#include "engine/batch_io.h"

#include <cstring>

#include "kernels/sector_format.h"

namespace sectorcrypt::engine {
namespace {

// Position in a segment list: segment index and offset within it.
struct SgPos {
  uint32_t seg = 0;
  uint64_t off = 0;
};

SgPos locate(const iovec* segs, uint32_t count, uint64_t offset) {
  SgPos p;
  while (p.seg < count && offset >= segs[p.seg].iov_len) {
    offset -= segs[p.seg].iov_len;
    ++p.seg;
  }
  p.off = offset;
  return p;
}

// The address at p if `len` bytes from there lie in one segment, else null.
uint8_t* contiguous_at(const iovec* segs, uint32_t count, SgPos p, std::size_t len) {
  if (p.seg >= count || segs[p.seg].iov_len - p.off < len) return nullptr;
  return static_cast<uint8_t*>(segs[p.seg].iov_base) + p.off;
}

void advance(const iovec* segs, uint32_t count, SgPos* p, std::size_t len) {
  p->off += len;
  while (p->seg < count && p->off >= segs[p->seg].iov_len) {
    p->off -= segs[p->seg].iov_len;
    ++p->seg;
  }
}

}  // namespace

void gather_from(const iovec* segs, uint32_t count, uint64_t offset, uint8_t* dst,
                 std::size_t len) {
  SgPos p = locate(segs, count, offset);
  while (len > 0 && p.seg < count) {
    const std::size_t n = std::min<std::size_t>(len, segs[p.seg].iov_len - p.off);
    std::memcpy(dst, static_cast<const uint8_t*>(segs[p.seg].iov_base) + p.off, n);
    dst += n;
    len -= n;
    ++p.seg;
    p.off = 0;
  }
}

void scatter_to(const iovec* segs, uint32_t count, uint64_t offset, const uint8_t* src,
                std::size_t len) {
  SgPos p = locate(segs, count, offset);
  while (len > 0 && p.seg < count) {
    const std::size_t n = std::min<std::size_t>(len, segs[p.seg].iov_len - p.off);
    std::memcpy(static_cast<uint8_t*>(segs[p.seg].iov_base) + p.off, src, n);
    src += n;
    len -= n;
    ++p.seg;
    p.off = 0;
  }
}

void fill_sector_numbers(Batch& b, const Part& p) {
  const RequestRecord& r = *p.req;
  IvSequence seq{};
  // Validated at submit (alignment of the start; parts start on sector boundaries).
  (void)iv_sequence_for(r.format, r.start_sector + p.req_offset / 512, &seq);
  for (uint32_t i = 0; i < p.sectors; ++i) {
    b.iv[p.first_sector + i] = seq.first + i * seq.step;
    b.key_index[p.first_sector + i] = r.key_index;
  }
}

void prepare_in_place_of_caller(Batch& b) {
  for (uint32_t k = 0; k < b.part_count; ++k) {
    Part& p = b.parts[k];
    if (b.zero_copy) {
      p.mode = Part::Mode::staged;
      continue;
    }
    const RequestRecord& r = *p.req;
    const SgPos sp = locate(r.src, r.src_count, p.req_offset);
    const SgPos dp = locate(r.dst, r.dst_count, p.req_offset);
    const uint8_t* in = contiguous_at(r.src, r.src_count, sp, p.bytes);
    uint8_t* out = contiguous_at(r.dst, r.dst_count, dp, p.bytes);
    if (in != nullptr && out != nullptr) {
      p.mode = Part::Mode::direct;
      p.in = in;
      p.out = out;
      continue;
    }
    // Sector by sector: point into the caller's memory, stage only what straddles.
    p.mode = Part::Mode::gathered;
    fill_sector_numbers(b, p);
    const uint32_t ss = r.format.sector_size;
    SgPos s = sp, d = dp;
    for (uint32_t i = 0; i < p.sectors; ++i) {
      const uint32_t idx = p.first_sector + i;
      const uint8_t* si = contiguous_at(r.src, r.src_count, s, ss);
      uint8_t* di = contiguous_at(r.dst, r.dst_count, d, ss);
      if (si != nullptr && di != nullptr) {
        b.in_ptrs[idx] = si;
        b.out_ptrs[idx] = di;
        b.staged[idx] = 0;
      } else {
        uint8_t* slot = b.data + p.slot_offset + static_cast<std::size_t>(i) * ss;
        gather_from(r.src, r.src_count, p.req_offset + static_cast<uint64_t>(i) * ss, slot, ss);
        b.in_ptrs[idx] = slot;
        b.out_ptrs[idx] = slot;
        b.staged[idx] = 1;
      }
      advance(r.src, r.src_count, &s, ss);
      advance(r.dst, r.dst_count, &d, ss);
    }
  }
}

void stage_in(Batch& b, const Part& p) {
  if (b.zero_copy) return;  // the caller filled the slot
  gather_from(p.req->src, p.req->src_count, p.req_offset, b.data + p.slot_offset, p.bytes);
}

void scatter_results(Batch& b) {
  if (b.zero_copy) return;  // the result stays in the lent slot
  for (uint32_t k = 0; k < b.part_count; ++k) {
    const Part& p = b.parts[k];
    if (!p.status.ok()) continue;
    const RequestRecord& r = *p.req;
    if (p.mode == Part::Mode::staged) {
      scatter_to(r.dst, r.dst_count, p.req_offset, b.data + p.slot_offset, p.bytes);
    } else if (p.mode == Part::Mode::gathered) {
      const uint32_t ss = r.format.sector_size;
      for (uint32_t i = 0; i < p.sectors; ++i) {
        if (b.staged[p.first_sector + i] == 0) continue;
        scatter_to(r.dst, r.dst_count, p.req_offset + static_cast<uint64_t>(i) * ss,
                   b.data + p.slot_offset + static_cast<std::size_t>(i) * ss, ss);
      }
    }
  }
}

}  // namespace sectorcrypt::engine
