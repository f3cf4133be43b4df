#!/usr/bin/env python3
"""Generates the body of bitsliced32::sbox (kernels/cuda/aes_bitsliced32_core.h): the
Boyar-Peralta depth-16 AES S-box circuit ("A depth-16 circuit for the AES S-box", 2012;
128 gates: 34 AND, 94 XOR/XNOR) mapped onto LOP3, the GPU's any-function-of-three-words
instruction.

The mapping is a cut-based LUT mapping (3-input cuts, area flow then exact area recovery,
as FPGA mappers do): every cover node becomes one lop3<truth table>(leaves). ptxas fuses
the plain gates into 96 LOP3s; this cover needs 87. The S-box is checked on all 256 bytes
by tests/cuda_bitsliced32_test.cc.

    scripts/gen_sbox_lop3.py > body.txt             # sbox: between the U line and the brace
    scripts/gen_sbox_lop3.py --inverse > body.txt   # inv_sbox: after the Y line

With --inverse the circuit is wrapped in the inverse affine map on both sides first
(S^-1(y) = A^-1(S(A^-1(y) + 5)) + 5) and the whole is mapped at once.
"""
import re
import sys

# The circuit, one gate a line: "out a op b" (op ^ or &); outputs b7..b0 ("~" = XNOR).
# U0 is the most significant input bit; D = U7.
CIRCUIT = """
T1 U0 ^ U3
T2 U0 ^ U5
T3 U0 ^ U6
T4 U3 ^ U5
T5 U4 ^ U6
T6 T1 ^ T5
T7 U1 ^ U2
T8 U7 ^ T6
T9 U7 ^ T7
T10 T6 ^ T7
T11 U1 ^ U5
T12 U2 ^ U5
T13 T3 ^ T4
T14 T6 ^ T11
T15 T5 ^ T11
T16 T5 ^ T12
T17 T9 ^ T16
T18 U3 ^ U7
T19 T7 ^ T18
T20 T1 ^ T19
T21 U6 ^ U7
T22 T7 ^ T21
T23 T2 ^ T22
T24 T2 ^ T10
T25 T20 ^ T17
T26 T3 ^ T16
T27 T1 ^ T12
M1 T13 & T6
M2 T23 & T8
M3 T14 ^ M1
M4 T19 & D
M5 M4 ^ M1
M6 T3 & T16
M7 T22 & T9
M8 T26 ^ M6
M9 T20 & T17
M10 M9 ^ M6
M11 T1 & T15
M12 T4 & T27
M13 M12 ^ M11
M14 T2 & T10
M15 M14 ^ M11
M16 M3 ^ M2
M17 M5 ^ T24
M18 M8 ^ M7
M19 M10 ^ M15
M20 M16 ^ M13
M21 M17 ^ M15
M22 M18 ^ M13
M23 M19 ^ T25
M24 M22 ^ M23
M25 M22 & M20
M26 M21 ^ M25
M27 M20 ^ M21
M28 M23 ^ M25
M29 M28 & M27
M30 M26 & M24
M31 M20 & M23
M32 M27 & M31
M33 M27 ^ M25
M34 M21 & M22
M35 M24 & M34
M36 M24 ^ M25
M37 M21 ^ M29
M38 M32 ^ M33
M39 M23 ^ M30
M40 M35 ^ M36
M41 M38 ^ M40
M42 M37 ^ M39
M43 M37 ^ M38
M44 M39 ^ M40
M45 M42 ^ M41
M46 M44 & T6
M47 M40 & T8
M48 M39 & D
M49 M43 & T16
M50 M38 & T9
M51 M37 & T17
M52 M42 & T15
M53 M45 & T27
M54 M41 & T10
M55 M44 & T13
M56 M40 & T23
M57 M39 & T19
M58 M43 & T3
M59 M38 & T22
M60 M37 & T20
M61 M42 & T1
M62 M45 & T4
M63 M41 & T2
L0 M61 ^ M62
L1 M50 ^ M56
L2 M46 ^ M48
L3 M47 ^ M55
L4 M54 ^ M58
L5 M49 ^ M61
L6 M62 ^ L5
L7 M46 ^ L3
L8 M51 ^ M59
L9 M52 ^ M53
L10 M53 ^ L4
L11 M60 ^ L2
L12 M48 ^ M51
L13 M50 ^ L0
L14 M52 ^ M61
L15 M55 ^ L1
L16 M56 ^ L0
L17 M57 ^ L1
L18 M58 ^ L8
L19 M63 ^ L4
L20 L0 ^ L1
L21 L1 ^ L7
L22 L3 ^ L12
L23 L18 ^ L2
L24 L15 ^ L9
L25 L6 ^ L10
L26 L7 ^ L9
L27 L8 ^ L10
L28 L11 ^ L14
L29 L11 ^ L17
b7 L6 ^ L24
~b6 L16 ^ L26
~b5 L19 ^ L28
b4 L6 ^ L21
b3 L20 ^ L22
b2 L25 ^ L29
~b1 L13 ^ L27
~b0 L6 ^ L23
"""

INVERSE = '--inverse' in sys.argv[1:]
nodes = {}
order = []
outs = {}
for line in CIRCUIT.strip().splitlines():
    m = re.match(r'(~?)(\w+) (\w+) ([\^&]) (\w+)$', line)
    neg, n, a, op, b = m.groups()
    if n.startswith('b'):
        outs['O' + n] = (n, neg == '~')
        n = 'O' + n
    nodes[n] = (op, a, b)
    order.append(n)
alias = {'D': 'U7'}
inputs = ['U0','U1','U2','U3','U4','U5','U6','U7']
if INVERSE:
    # S^-1(y) = A^-1(S(A^-1(y) + 5)) + 5: A^-1's output bit i is y_{i-1} + y_{i-3} + y_{i-6}
    # (indices mod 8), complemented where 5 has a bit; the circuit's input U_k is bit 7 - k.
    inputs = [f'Y{i}' for i in range(8)]
    pre, pre_order = {}, []
    for i in range(8):
        pre[f'P{i}'] = ('^', f'Y{(i + 7) % 8}', f'Y{(i + 5) % 8}')
        pre[f'A{i}'] = ('~^' if (5 >> i) & 1 else '^', f'P{i}', f'Y{(i + 2) % 8}')
        pre_order += [f'P{i}', f'A{i}']
    for k in range(8):
        alias[f'U{k}'] = f'A{7 - k}'
    alias['D'] = 'A0'
    # The circuit's outputs become inner nodes B_i, then A^-1 and + 5 again.
    post, post_order, new_outs = {}, [], {}
    for o, (name, neg) in outs.items():
        op, a, b = nodes.pop(o)
        order.remove(o)
        post['B' + name[1:]] = ('~^' if neg else '^', a, b)
        post_order.append('B' + name[1:])
    for i in range(8):
        post[f'Q{i}'] = ('^', f'B{(i + 7) % 8}', f'B{(i + 5) % 8}')
        post[f'Ob{i}'] = ('~^' if (5 >> i) & 1 else '^', f'Q{i}', f'B{(i + 2) % 8}')
        post_order += [f'Q{i}', f'Ob{i}']
        new_outs[f'Ob{i}'] = (f'b{i}', False)
    nodes.update(pre)
    nodes.update(post)
    order = pre_order + order + post_order
    outs = new_outs
def res(x): return alias.get(x, x)
nodes = {n: (op, res(a), res(b)) for n, (op, a, b) in nodes.items() if n != 'D'}
order = [n for n in order if n != 'D']
# fanout
fan = {n: 0 for n in list(nodes) + inputs}
for n, (op, a, b) in nodes.items():
    fan[a] += 1; fan[b] += 1
for o in outs: fan[o] += 1
K = 3
cuts = {i: [frozenset([i])] for i in inputs}
for n in order:
    op, a, b = nodes[n]
    cs = set([frozenset([n])])
    for ca in cuts[a]:
        for cb in cuts[b]:
            u = ca | cb
            if len(u) <= K: cs.add(u)
    cuts[n] = sorted(cs, key=sorted)  # deterministic ties
# area flow
af = {i: 0.0 for i in inputs}
best = {}
for n in order:
    bestv = None
    for c in cuts[n]:
        if c == frozenset([n]): continue
        v = 1 + sum(af[l] / max(fan[l], 1) for l in c)
        if bestv is None or v < bestv[0]: bestv = (v, c)
    af[n] = bestv[0]; best[n] = bestv[1]
def cover(best):
    need = set(); stack = list(outs)
    while stack:
        n = stack.pop()
        if n in inputs or n in need: continue
        need.add(n); stack.extend(best[n])
    return need
cov = cover(best)
# exact area recovery iterations
def mffc_area(n, c, refs):
    # number of LUTs newly needed if n implemented with cut c, given reference counts
    added = 1; touched = []
    stack = list(c)
    count = 0
    def ref(x):
        nonlocal count
        if x in inputs: return
        refs[x] = refs.get(x, 0) + 1; touched.append(x)
        if refs[x] == 1:
            count += 1
            for l in best[x]: ref(l)
    for l in c: ref(l)
    for x in touched: refs[x] -= 1
    return 1 + count
for it in range(6):
    refs = {}
    cov = cover(best)
    for n in cov:
        for l in best[n]:
            if l not in inputs: refs[l] = refs.get(l, 0) + 1
    for o in outs: refs[o] = refs.get(o, 0) + 1
    for n in order:
        if n not in cov: continue
        # deref current
        def deref(x):
            if x in inputs: return
            refs[x] -= 1
            if refs[x] == 0:
                for l in best[x]: deref(l)
        for l in best[n]: deref(l)
        bestc = None
        for c in cuts[n]:
            if c == frozenset([n]): continue
            a = mffc_area(n, c, refs)
            if bestc is None or a < bestc[0]: bestc = (a, c)
        best[n] = bestc[1]
        def reref(x):
            if x in inputs: return
            refs[x] = refs.get(x, 0) + 1
            if refs[x] == 1:
                for l in best[x]: reref(l)
        for l in best[n]: reref(l)
    cov = cover(best)
# ---- LOP3 emission: each cover node as lop3<imm>(x, y, z) of its cut leaves ----
def ev(n, env):
    if n in env: return env[n]
    op, a, b = nodes[n]
    x, y = ev(a, env), ev(b, env)
    return {'^': x ^ y, '~^': ~(x ^ y) & 0xFF, '&': x & y}[op]
TA, TB, TC = 0xF0, 0xCC, 0xAA
out_lines = []
for n in order:
    if n not in cov: continue
    leaves = sorted(best[n], key=lambda x: (x[0], int(re.sub(r'\D', '', x) or 0)))
    pats = [TA, TB, TC]
    env = {l: pats[i] for i, l in enumerate(leaves)}
    imm = ev(n, env) & 0xFF
    args = leaves + ['0u'] * (3 - len(leaves))
    if n in outs:
        o, neg = outs[n]
        if neg: imm ^= 0xFF
        out_lines.append(f'  {o} = lop3<0x{imm:02x}>({", ".join(args)});')
    else:
        out_lines.append(f'  const uint32_t {n} = lop3<0x{imm:02x}>({", ".join(args)});')
sys.stdout.write('\n'.join(out_lines) + '\n')
