"""The filter in plain mode against `sectorcrypt encrypt|decrypt` (whose output is checked
against OpenSSL per sector in the CLI tests): data the CLI encrypted reads back through the
filter with nbdcopy, and data written through the filter decrypts with the CLI, for each
IV generator, sector size, key size, iv-large-sectors, offset= and skip=."""
import random

import nbd

from nbdkit_support import CLI, Model, Server, TestCase, main, random_bytes, read, run, write

SIZE = 2 << 20
CASES = [
    # cipher, sector size, key bytes, iv-large-sectors, offset (sectors), skip (sectors)
    ("aes-xts-plain64", 512, 64, False, 0, 0),
    ("aes-xts-plain64", 4096, 32, False, 8, 0),
    ("aes-xts-plain", 4096, 64, True, 0, 16),
    ("aes-xts-plain64be", 1024, 32, False, 3, 5),
]


class PlainMode(TestCase):
    def check(self, cipher, sector_size, key_bytes, large, offset, skip):
        key = self.dir.file("key")
        write(key, random_bytes(key_bytes, sector_size + offset))
        fmt = ["--cipher", cipher, "--sector-size", str(sector_size), "--skip", str(skip)]
        if large:
            fmt.append("--iv-large-sectors")
        plain = random_bytes(SIZE, skip + sector_size)
        src, enc = self.dir.file("plain"), self.dir.file("enc")
        write(src, plain)
        run(CLI, "encrypt", "--key-file", key, *fmt, src, enc)
        image = self.dir.file("image")
        junk = random_bytes(offset * 512, 3)  # what lies before the data: never touched
        write(image, junk + read(enc))

        params = ["key-file=" + key, "cipher=" + cipher, "sector-size=%d" % sector_size,
                  "offset=%d" % offset, "skip=%d" % skip, "backend=cpu"]
        if large:
            params.append("iv-large-sectors=true")
        with Server(self.dir.path, image, params) as srv:
            copy = self.dir.file("copy")
            run("nbdcopy", srv.uri, copy)
            self.assertSameBytes(read(copy), plain, "nbdcopy of what the CLI encrypted")
            h = srv.connect()
            self.assertEqual(h.get_size(), SIZE)
            model = Model(plain)
            rng = random.Random(offset * 31 + skip)
            model.random_writes(h, rng, 150, sector_size)
            model.check_reads(h, rng, 30)
            h.shutdown()

        self.assertEqual(read(image, 0, len(junk)), junk)
        write(enc, read(image, len(junk)))
        dec = self.dir.file("dec")
        run(CLI, "decrypt", "--key-file", key, *fmt, enc, dec)
        self.assertSameBytes(read(dec), bytes(model.data), "the CLI's decryption")

    def test_cases(self):
        for case in CASES:
            with self.subTest(case=case):
                self.check(*case)


class Discards(TestCase):
    """dm-crypt's rule: trim and extents leak which blocks are used, so they are off unless
    allow-discards=true; then only whole sectors are discarded, and extents report holes but
    never "reads as zero" (zero ciphertext is not zero data)."""

    def serve(self, extra):
        image, key = self.dir.file("image"), self.dir.file("key")
        write(image, bytes(1 << 20))
        write(key, random_bytes(64, 8))
        return image, Server(self.dir.path, image, ["key-file=" + key, "backend=cpu"] + extra)

    def test_off_by_default(self):
        _, srv = self.serve([])
        with srv:
            h = srv.connect()
            self.assertFalse(h.can_trim())
            self.assertFalse(h.can_cache())
            self.assertTrue(h.can_zero())
            self.assertFalse(h.can_fast_zero())
            h.shutdown()

    def test_allowed(self):
        image, srv = self.serve(["allow-discards=true"])
        with srv:
            h = srv.connect(nbd.CONTEXT_BASE_ALLOCATION)
            self.assertTrue(h.can_trim())
            data = random_bytes(64 * 1024, 9)
            h.pwrite(data, 0)
            h.trim(300, 100)    # inside sector 0: no whole sector, nothing discarded
            self.assertEqual(bytes(h.pread(len(data), 0)), data)
            h.trim(8192, 8192)  # whole sectors 16..31: discarded below
            self.assertEqual(read(image, 8192, 8192), bytes(8192))
            self.assertEqual(bytes(h.pread(8192, 0)), data[:8192])
            self.assertEqual(bytes(h.pread(16384, 16384)), data[16384:32768])
            flags = []
            h.block_status(1 << 20, 0,
                           lambda ctx, off, entries, err: flags.extend(entries[1::2]) or 0)
            for f in flags:
                self.assertEqual(f & nbd.STATE_ZERO, 0)  # never "reads as zero"
            h.shutdown()


class ZeroesAndSizes(TestCase):
    def test_zero_writes_encrypted_zeros_and_block_sizes_are_advertised(self):
        image, key = self.dir.file("image"), self.dir.file("key")
        write(image, random_bytes(1 << 20, 10))
        write(key, random_bytes(32, 11))
        with Server(self.dir.path, image, ["key-file=" + key, "sector-size=4096"]) as srv:
            h = srv.connect()
            self.assertEqual(h.get_block_size(nbd.SIZE_MINIMUM), 1)
            self.assertEqual(h.get_block_size(nbd.SIZE_PREFERRED), 4096)
            h.zero(3 * 4096 + 10, 4096 - 5, nbd.CMD_FLAG_FUA)
            self.assertEqual(bytes(h.pread(3 * 4096 + 10, 4096 - 5)), bytes(3 * 4096 + 10))
            h.flush()
            h.shutdown()
        self.assertNotEqual(read(image, 4096, 4096), bytes(4096))  # ciphertext, not zeros


if __name__ == "__main__":
    main()
