"""Every way to configure or open the filter wrongly gets one clear error that names what was
wrong, and nothing is served: bad parameters stop nbdkit at start-up; a header that cannot
be used (wrong passphrase, LUKS1, another cipher, no header) refuses the connection. Key
material never reaches nbdkit's log, even with -v."""
import os
import subprocess

import nbd

from nbdkit_support import (FILTER, FAST_KDF, PASSPHRASE, Server, ServerExited, TestCase,
                            cryptsetup, luks2_encrypt, main, random_bytes, read, write)


class BadParameters(TestCase):
    def start_fails(self, params, expect):
        image = self.dir.file("image")
        if not os.path.exists(image):
            write(image, bytes(1 << 20))
        p = subprocess.run(["nbdkit", "-f", "-U", self.dir.file("s.sock"), "--filter=" + FILTER,
                            "file", image] + params, capture_output=True, timeout=30)
        err = p.stderr.decode(errors="replace")
        self.assertNotEqual(p.returncode, 0, "nbdkit started with %s" % params)
        self.assertIn(expect, err, "for %s" % params)
        self.assertFalse(os.path.exists(self.dir.file("s.sock")))
        return err

    def key(self, data):
        path = self.dir.file("key")
        write(path, data)
        return "key-file=" + path

    def test_each_bad_parameter_is_named(self):
        good = self.key(random_bytes(64, 1))
        self.start_fails([], "name the key: key-file=FILE (plain mode) or passphrase=SECRET")
        self.start_fails([good, "passphrase=+" + self.passfile], "exclude each other")
        self.start_fails([good, "sector-size=1000"], "sector-size=1000 is not 512, 1024, 2048 or 4096")
        self.start_fails([good, "cipher=aes-cbc-essiv:sha256"], "cipher=aes-cbc-essiv:sha256 is not supported")
        self.start_fails([good, "offset=-1"], "offset=-1 is not a count of 512-byte sectors")
        self.start_fails([good, "skip=x"], "skip=x is not a count of 512-byte sectors")
        self.start_fails([good, "backend=tpu"], "backend=tpu is not auto, cpu or cuda")
        self.start_fails([good, "slot-bytes=1000"], "slot-bytes=1000 is not a multiple of 4096")
        self.start_fails([good, "allow-discards=maybe"], "allow-discards=maybe is not a boolean")
        self.start_fails([good, "sector-size=4096", "iv-large-sectors=true", "skip=3"],
                         "skip=3 is not a whole number of 4096-byte sectors")
        self.start_fails([good, "header=/etc/hostname"], "header= is a LUKS2 option")
        self.start_fails(["passphrase=+" + self.passfile, "sector-size=4096"],
                         "sector-size= is a plain-mode option; in LUKS2 mode it comes from the header")
        self.start_fails(["passphrase=+" + self.passfile, "keyslot=40"], "keyslot=40 is not 0..31")
        self.start_fails(["passphrase=+" + self.passfile, "header=" + self.dir.file("nope")],
                         "cannot open header '%s'" % self.dir.file("nope"))
        self.start_fails(["key-file=" + self.dir.file("nokey")],
                         "cannot open key-file '%s'" % self.dir.file("nokey"))

    def test_bad_keys_are_refused_at_start(self):
        self.start_fails([self.key(random_bytes(48, 2))], "holds 48 bytes; XTS-AES needs a raw key of 32")
        self.start_fails([self.key(random_bytes(100, 2))], "holds more than 64 bytes")
        self.start_fails([self.key(b"\x11" * 32)], "equal")


class UnusableHeaders(TestCase):
    def connection_refused(self, image, params, expect):
        with Server(self.dir.path, image, params) as srv:
            h = nbd.NBD()
            with self.assertRaises(nbd.Error):
                h.connect_unix(srv.sock)
            # nbdcopy gets nothing either.
            p = subprocess.run(["nbdcopy", srv.uri, self.dir.file("out")], capture_output=True)
            self.assertNotEqual(p.returncode, 0)
            self.assertFalse(os.path.exists(self.dir.file("out")) and
                             os.path.getsize(self.dir.file("out")) > 0)
            log = srv.log()
        self.assertIn(expect, log)
        return log

    def luks2_image(self):
        image = self.dir.file("image")
        write(image, random_bytes(2 << 20, 3))
        header = self.dir.file("header")
        luks2_encrypt(image, self.passfile, 512, 512, header=header)
        return image, header

    def test_wrong_passphrase(self):
        image, header = self.luks2_image()
        wrong = self.dir.file("wrong")
        write(wrong, PASSPHRASE + b"!")
        self.connection_refused(image, ["passphrase=+" + wrong, "header=" + header],
                                "wrong passphrase: no LUKS2 keyslot opens with it")
        self.connection_refused(image, ["passphrase=+" + self.passfile, "header=" + header,
                                        "keyslot=4"], "keyslot 4 is not in use")

    def test_luks1(self):
        image = self.dir.file("image")
        write(image, bytes(4 << 20))
        cryptsetup("luksFormat", "--type", "luks1", "--key-file", self.passfile, *FAST_KDF, image)
        self.connection_refused(image, ["passphrase=+" + self.passfile], "LUKS1 header")
        header = self.dir.file("h1")
        write(header, read(image))
        self.connection_refused(image, ["passphrase=+" + self.passfile, "header=" + header],
                                "LUKS1 header; sectorcrypt reads LUKS2 only")

    def test_other_cipher(self):
        image = self.dir.file("image")
        write(image, bytes(20 << 20))
        cryptsetup("luksFormat", "--type", "luks2", "--cipher", "aes-cbc-essiv:sha256",
                   "--key-size", "256", "--key-file", self.passfile, *FAST_KDF, image)
        self.connection_refused(image, ["passphrase=+" + self.passfile], "cipher aes-cbc-essiv:sha256")

    def test_no_header(self):
        image = self.dir.file("image")
        write(image, random_bytes(2 << 20, 4))
        self.connection_refused(image, ["passphrase=+" + self.passfile],
                                "the image has no LUKS header")
        # A detached header's volume opened without it: the image holds only ciphertext.
        image, header = self.luks2_image()
        self.connection_refused(image, ["passphrase=+" + self.passfile],
                                "the image has no LUKS header (a detached one is named with header=FILE)")


class NoKeyInLogs(TestCase):
    def test_verbose_log_holds_no_key_or_passphrase(self):
        image = self.dir.file("image")
        write(image, random_bytes(2 << 20, 5))
        header = self.dir.file("header")
        luks2_encrypt(image, self.passfile, 512, 512, header=header)
        vk = self.dir.file("vk")
        cryptsetup("luksDump", "--dump-volume-key", "--volume-key-file", vk, "--header", header,
                   "--key-file", self.passfile, "-q", image)
        volume_key = read(vk)
        plain_key = random_bytes(64, 6)
        write(self.dir.file("key"), plain_key)
        logs = []
        for params in (["passphrase=+" + self.passfile, "header=" + header],
                       ["key-file=" + self.dir.file("key")]):
            srv = Server(self.dir.path, image, params, tag="v%d" % len(logs))
            srv.args.insert(1, "-v")
            with srv:
                h = srv.connect()
                h.pwrite(b"a" * 1000, 100)
                h.pread(4096, 0)
                h.shutdown()
                logs.append(read(srv.logfile))
        for log in logs:
            self.assertIn(b"sectorcrypt", log)  # the log is there to be searched
            for secret in (volume_key, plain_key, PASSPHRASE):
                self.assertNotIn(secret, log)
                self.assertNotIn(secret.hex().encode(), log)
                self.assertNotIn(secret[:16].hex(" ").encode(), log)


if __name__ == "__main__":
    main()
