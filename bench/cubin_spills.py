#!/usr/bin/env python3
"""Where a cubin's local-memory spills sit relative to its round-key reads, without a
disassembler: per kernel, the instruction count, the span of its shared-memory loads (LDS:
in xts_bs32.cu those are the round keys, i.e. the cipher rounds), and how many spill
instructions (STL/LDL) fall inside that span. sm_90 instructions are 16 bytes; the low 12
bits of the first 8 bytes hold the opcode (0x387 STL, 0x983 LDL, 0x984 LDS).

    bench/cubin_spills.py kernel.cubin
"""
import subprocess
import sys

STL, LDL, LDS = 0x387, 0x983, 0x984


def text_sections(path):
    out = subprocess.run(['readelf', '-SW', path], capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():
        fields = line.replace(']', '] ').split()
        names = [i for i, x in enumerate(fields) if x.startswith('.text.')]
        if names:
            i = names[0]
            yield fields[i][len('.text.'):], int(fields[i + 3], 16), int(fields[i + 4], 16)


def main(path):
    data = open(path, 'rb').read()
    for name, off, size in text_sections(path):
        ops = [int.from_bytes(data[k:k + 8], 'little') & 0xfff for k in range(off, off + size, 16)]
        lds = [j for j, o in enumerate(ops) if o == LDS]
        spills = [j for j, o in enumerate(ops) if o in (STL, LDL)]
        inside = [j for j in spills if lds and lds[0] <= j <= lds[-1]]
        span = f'{lds[0]}..{lds[-1]}' if lds else 'none'
        print(f'{name}: {len(ops)} instructions, LDS span {span}, '
              f'{len(spills)} spill instructions, {len(inside)} inside the LDS span')


if __name__ == '__main__':
    main(sys.argv[1])
