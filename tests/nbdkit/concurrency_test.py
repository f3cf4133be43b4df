"""Several connections at once, with many requests in flight on each, writing byte ranges
that share sectors but never bytes: every edge sector is read-modify-written by several
writers at the same time, and each one's bytes must survive (overlapping writes are
serialised; a lost update would leave another writer's old bytes)."""
import random

from nbdkit_support import Server, TestCase, main, random_bytes, write

SECTOR = 4096
SECTORS = 256
WRITERS = 4
PIECE = SECTOR // WRITERS  # each writer owns one quarter of every sector
ROUNDS = 8


class SharedSectors(TestCase):
    def run_writers(self, params):
        image = self.dir.file("image")
        write(image, bytes(SECTOR * SECTORS))
        expected = bytearray(SECTOR * SECTORS)
        with Server(self.dir.path, image, params) as srv:
            handles = [srv.connect() for _ in range(WRITERS)]
            handles[0].zero(SECTOR * SECTORS, 0)  # encrypted zeros: the volume reads as zeros
            plans = []
            for w in range(WRITERS):
                rng = random.Random(w)
                # Pieces straddle sector boundaries: offset by half a piece, so most writes
                # touch two sectors, both unaligned.
                offs = [s * SECTOR + w * PIECE + PIECE // 2 for s in range(SECTORS - 1)]
                rng.shuffle(offs)
                plans.append(offs)
            for round_ in range(ROUNDS):
                cookies = []
                for i in range(SECTORS - 1):
                    for w, h in enumerate(handles):
                        off = plans[w][i]
                        buf = random_bytes(PIECE, off * 7 + round_)
                        expected[off:off + PIECE] = buf
                        cookies.append((h, h.aio_pwrite(buf, off)))
                    if i % 128 == 127:
                        for h in handles:
                            while h.aio_in_flight() > 0:
                                h.poll(-1)
                for h in handles:
                    while h.aio_in_flight() > 0:
                        h.poll(-1)
                for h, c in cookies:
                    h.aio_command_completed(c)  # raises if the write failed
                # Checked after every round: a lost update must not hide under the next.
                got = bytes(handles[0].pread(SECTOR * SECTORS, 0))
                for s in range(SECTORS):
                    a, b = s * SECTOR, (s + 1) * SECTOR
                    if got[a:b] != bytes(expected[a:b]):
                        self.fail("round %d: sector %d lost a writer's bytes" % (round_, s))
            for h in handles:
                h.shutdown()

    def test_four_connections_on_shared_sectors(self):
        self.run_writers(["key-file=" + self.key(), "sector-size=4096", "backend=cpu"])

    def key(self):
        path = self.dir.file("key")
        write(path, random_bytes(64, 99))
        return path


if __name__ == "__main__":
    main()
