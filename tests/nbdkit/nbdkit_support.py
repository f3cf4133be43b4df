"""Shared pieces of the nbdkit filter tests: a real nbdkit serving a file through the
filter on a Unix socket, cryptsetup-made LUKS2 images, and byte-exact models of what the
volume must hold. Paths come from ctest's environment (tests/nbdkit/CMakeLists.txt)."""
import contextlib
import os
import random
import shutil
import subprocess
import tempfile
import time
import unittest

import nbd

FILTER = os.environ["SECTORCRYPT_FILTER"]
CLI = os.environ.get("SECTORCRYPT_CLI", "")
CRYPTSETUP = os.environ.get("CRYPTSETUP", "cryptsetup")
PASSPHRASE = b"correct horse battery staple"
# Fast key derivation: these images exist only for the tests.
FAST_KDF = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "-q", "--batch-mode"]


def run(*args, **kw):
    """Runs a program; raises with its output when it fails."""
    p = subprocess.run([str(a) for a in args], capture_output=True, **kw)
    if p.returncode != 0:
        raise AssertionError("%s exited %d:\n%s%s" % (" ".join(map(str, args)), p.returncode,
                                                   p.stdout.decode(errors="replace"),
                                                   p.stderr.decode(errors="replace")))
    return p


def cryptsetup(*args):
    return run(CRYPTSETUP, *args)


class Dir:
    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="sectorcrypt-nbdkit-")

    def file(self, name):
        return os.path.join(self.path, name)

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def read(path, offset=0, length=None):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read() if length is None else f.read(length)


def random_bytes(n, seed):
    return random.Random(seed).randbytes(n)


class Server:
    """nbdkit -f on a Unix socket with the filter over the file plugin. Exiting the
    context stops it; .log() is its stderr."""

    _started = 0

    def __init__(self, workdir, image, params, plugin_params=(), extra_filters=(), tag="srv",
                 pass_fds=()):
        self.pass_fds = tuple(pass_fds)
        Server._started += 1
        tag = "%s%d" % (tag, Server._started)  # a socket and log of its own
        self.sock = os.path.join(workdir, tag + ".sock")
        self.logfile = os.path.join(workdir, tag + ".log")
        self.args = (["nbdkit", "-f", "-U", self.sock, "--exit-with-parent"]
                     + ["--filter=" + f for f in extra_filters]
                     + ["--filter=" + FILTER, "file", image] + list(plugin_params) + list(params))

    def __enter__(self):
        self.log_fd = open(self.logfile, "wb")
        self.proc = subprocess.Popen(self.args, stdout=self.log_fd, stderr=subprocess.STDOUT,
                                     pass_fds=self.pass_fds)
        deadline = time.monotonic() + 20
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None:
                raise ServerExited(self.proc.returncode, self.log())
            if time.monotonic() > deadline:
                raise AssertionError("nbdkit did not create its socket:\n" + self.log())
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_fd.close()

    @property
    def uri(self):
        return "nbd+unix:///?socket=" + self.sock

    def connect(self, meta_context=None):
        h = nbd.NBD()
        if meta_context:
            h.add_meta_context(meta_context)
        h.connect_unix(self.sock)
        return h

    def log(self):
        with open(self.logfile, "rb") as f:
            return f.read().decode(errors="replace")


class ServerExited(Exception):
    def __init__(self, rc, log):
        super().__init__("nbdkit exited %d: %s" % (rc, log))
        self.rc = rc
        self.log = log


def luks2_encrypt(image, passfile, key_bits, sector_size, header=None, reduce=None):
    """cryptsetup encrypts the data of `image` where it lies (offline, no device-mapper):
    with a detached header, or with the header in the image (reduce: the room it takes)."""
    args = ["reencrypt", "--encrypt", "--type", "luks2", "--key-file", passfile,
            "--cipher", "aes-xts-plain64", "--key-size", str(key_bits),
            "--sector-size", str(sector_size)] + FAST_KDF
    if header:
        args += ["--header", header]
    if reduce:
        args += ["--reduce-device-size", reduce]
    cryptsetup(*args, image)


def luks2_decrypt(image, header, passfile):
    """cryptsetup decrypts `image` where it lies. cryptsetup 2.6.1 decrypts only a volume
    with a detached header (data offset 0); a regular file needs the offline mode."""
    cryptsetup("reencrypt", "--decrypt", "--header", header, "--key-file", passfile,
               "--force-offline-reencrypt", "-q", image)


class Model:
    """What the volume must hold: a bytearray updated with every write, checked against
    reads. Writes at random offsets and lengths, aligned and not."""

    def __init__(self, data):
        self.data = bytearray(data)

    def write(self, h, offset, buf):
        h.pwrite(buf, offset)
        self.data[offset:offset + len(buf)] = buf

    def zero(self, h, offset, length):
        h.zero(length, offset)
        self.data[offset:offset + length] = bytes(length)

    def random_writes(self, h, rng, count, sector_size):
        size = len(self.data)
        for i in range(count):
            kind = i % 4
            if kind == 0:  # whole sectors
                n = sector_size * rng.randint(1, 64)
                off = rng.randrange(0, size - n + 1, sector_size)
            elif kind == 1:  # inside one sector
                n = rng.randint(1, sector_size - 1)
                off = rng.randrange(0, size - n)
            elif kind == 2:  # across sector boundaries, both edges unaligned
                n = rng.randint(sector_size, 5 * sector_size)
                off = rng.randrange(1, size - n)
            else:  # write zeroes, unaligned
                n = rng.randint(1, 3 * sector_size)
                off = rng.randrange(0, size - n)
                self.zero(h, off, n)
                continue
            self.write(h, off, rng.randbytes(n))

    def check_reads(self, h, rng, count):
        size = len(self.data)
        for _ in range(count):
            n = rng.randint(1, 20000)
            off = rng.randrange(0, size - n)
            got = h.pread(n, off)
            if bytes(got) != bytes(self.data[off:off + n]):
                raise AssertionError("read of %d bytes at %d differs from what was written" % (n, off))


class TestCase(unittest.TestCase):
    def setUp(self):
        self.dir = Dir()
        self.addCleanup(self.dir.cleanup)
        self.passfile = self.dir.file("pass")
        write(self.passfile, PASSPHRASE)

    def assertSameBytes(self, got, want, what):
        if got != want:
            first = next(i for i in range(min(len(got), len(want))) if got[i] != want[i]) \
                if len(got) == len(want) else -1
            self.fail("%s: %d vs %d bytes, first difference at %d" % (what, len(got), len(want), first))


def main():
    # nbdsh and nbdcopy are the system's: make sure their python3 is the one with libnbd.
    os.environ["PATH"] = "/usr/bin:/bin:/usr/sbin:/sbin:" + os.environ.get("PATH", "")
    unittest.main(verbosity=2)
