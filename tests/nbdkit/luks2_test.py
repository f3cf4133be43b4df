"""The filter in LUKS2 mode against cryptsetup itself, on regular files (no device-mapper):
cryptsetup encrypts known data, nbdcopy through the filter must return it; data written
through the filter (aligned, unaligned, zeroes, at random offsets) must come back out of
cryptsetup's own decryption exactly."""
import random

from nbdkit_support import (Model, Server, TestCase, cryptsetup, luks2_decrypt, luks2_encrypt,
                            main, random_bytes, read, run, write, FAST_KDF, FILTER, PASSPHRASE)

SIZE = 4 << 20


class DetachedHeader(TestCase):
    def roundtrip(self, key_bits, sector_size):
        plain = random_bytes(SIZE, key_bits + sector_size)
        image, header = self.dir.file("image"), self.dir.file("header")
        write(image, plain)
        luks2_encrypt(image, self.passfile, key_bits, sector_size, header=header)
        self.assertNotEqual(read(image), plain)

        params = ["passphrase=+" + self.passfile, "header=" + header, "backend=cpu"]
        with Server(self.dir.path, image, params) as srv:
            copy = self.dir.file("copy")
            run("nbdcopy", srv.uri, copy)
            self.assertSameBytes(read(copy), plain, "nbdcopy through the filter")

            h = srv.connect()
            self.assertEqual(h.get_size(), SIZE)
            model = Model(plain)
            rng = random.Random(sector_size * 7 + key_bits)
            model.random_writes(h, rng, 200, sector_size)
            model.check_reads(h, rng, 50)
            h.flush()
            h.shutdown()

        luks2_decrypt(image, header, self.passfile)
        self.assertSameBytes(read(image), bytes(model.data), "cryptsetup's decryption")

    def test_aes128_sector512(self):
        self.roundtrip(256, 512)

    def test_aes256_sector512(self):
        self.roundtrip(512, 512)

    def test_aes128_sector4096(self):
        self.roundtrip(256, 4096)

    def test_aes256_sector4096(self):
        self.roundtrip(512, 4096)


class HeaderInImage(TestCase):
    def test_read_and_write_through_the_plugin(self):
        """The header is read through the plugin. cryptsetup 2.6.1 decrypts only volumes with
        a detached header, so the check takes the segment out and decrypts it with a detached
        header made for the same volume key (luksDump --dump-volume-key needs no dm)."""
        plain = random_bytes(SIZE, 11)
        image = self.dir.file("image")
        write(image, plain + bytes(4 << 20))
        luks2_encrypt(image, self.passfile, 512, 4096, reduce="4M")
        dump = cryptsetup("luksDump", "--dump-json-metadata", image).stdout.decode()
        import json
        segment = json.loads(dump)["segments"]["0"]
        data_offset = int(segment["offset"])
        self.assertGreater(data_offset, 0)

        with Server(self.dir.path, image, ["passphrase=+" + self.passfile]) as srv:
            copy = self.dir.file("copy")
            run("nbdcopy", srv.uri, copy)
            got = read(copy)
            self.assertEqual(len(got) % 4096, 0)
            self.assertSameBytes(got[:SIZE], plain, "nbdcopy through the filter")
            h = srv.connect()
            model = Model(got)
            model.random_writes(h, random.Random(5), 120, 4096)
            h.shutdown()

        vk = self.dir.file("vk")
        cryptsetup("luksDump", "--dump-volume-key", "--volume-key-file", vk,
                   "--key-file", self.passfile, "-q", image)
        segment_file, header = self.dir.file("segment"), self.dir.file("header")
        write(segment_file, read(image, data_offset))
        cryptsetup("luksFormat", "--type", "luks2", "--header", header, "--volume-key-file", vk,
                   "--key-size", "512", "--sector-size", "4096", "--cipher", "aes-xts-plain64",
                   "--key-file", self.passfile, *FAST_KDF, segment_file)
        luks2_decrypt(segment_file, header, self.passfile)
        self.assertSameBytes(read(segment_file)[:len(model.data)], bytes(model.data),
                             "cryptsetup's decryption of the segment")

    def test_named_keyslot(self):
        image = self.dir.file("image")
        write(image, bytes(20 << 20))
        cryptsetup("luksFormat", "--type", "luks2", "--key-file", self.passfile, *FAST_KDF, image)
        second = self.dir.file("pass2")
        write(second, b"another one")
        cryptsetup("luksAddKey", "--key-file", self.passfile, "--new-keyfile", second,
                   "--new-key-slot", "2", *FAST_KDF, image)
        with Server(self.dir.path, image, ["passphrase=+" + second, "keyslot=2"]) as srv:
            h = srv.connect()
            h.pwrite(b"x" * 4096, 0)
            self.assertEqual(bytes(h.pread(4096, 0)), b"x" * 4096)
            h.shutdown()

    def test_passphrase_from_a_file_descriptor_and_as_text(self):
        """nbdkit's secret syntax: -FD reads the passphrase from an inherited descriptor."""
        import os
        image = self.dir.file("image")
        write(image, bytes(20 << 20))
        cryptsetup("luksFormat", "--type", "luks2", "--key-file", self.passfile, *FAST_KDF, image)
        fd = os.open(self.passfile, os.O_RDONLY)
        try:
            with Server(self.dir.path, image, ["passphrase=-%d" % fd], pass_fds=[fd]) as srv:
                h = srv.connect()
                h.pwrite(b"y" * 512, 512)
                h.shutdown()
        finally:
            os.close(fd)
        with Server(self.dir.path, image, ["passphrase=" + PASSPHRASE.decode()]) as srv:
            h = srv.connect()
            self.assertEqual(bytes(h.pread(512, 512)), b"y" * 512)
            h.shutdown()


class ReadmeExample(TestCase):
    def test_nbdsh_through_nbdkit_run(self):
        """The README's example, run as written but with the filter's build path."""
        image = self.dir.file("disk.img")
        write(image, bytes(20 << 20))
        cryptsetup("luksFormat", "--type", "luks2", "--key-file", self.passfile, *FAST_KDF, image)
        p = run("nbdkit", "-U", "-", "--filter=" + FILTER, "file", image,
                "passphrase=+" + self.passfile, "--run",
                'nbdsh -u "$uri" -c "h.pwrite(b\\"hello\\" * 100, 4096); print(h.pread(5, 4096))"',
                cwd=self.dir.path)
        self.assertEqual(p.stdout.decode().strip(), "bytearray(b'hello')")
        self.assertNotIn(b"hello", read(image))  # on disk it is ciphertext


if __name__ == "__main__":
    main()
