"""fio, the storage world's load generator, through the filter with its nbd engine: four
jobs (four connections) writing with --verify=crc32c must read every block back intact,
after a restart too; and the same verify pass with a different key must fail, so the
verification is shown to look at the data."""
import json
import os
import subprocess

from nbdkit_support import Server, TestCase, luks2_encrypt, main, random_bytes, write

FIO = os.environ.get("FIO", "fio")
JOBS = 4


def fio(uri, out, *args):
    """Runs in the folder of `out`: fio leaves its verify state files where it runs."""
    cmd = [FIO, "--name=verify", "--ioengine=nbd", "--uri=" + uri, "--numjobs=%d" % JOBS,
           "--group_reporting=0", "--verify=crc32c", "--verify_fatal=1", "--randrepeat=1",
           "--output-format=json", "--output=" + out] + list(args)
    p = subprocess.run(cmd, capture_output=True, cwd=os.path.dirname(out))
    return p.returncode, p.stderr.decode(errors="replace"), out


class FioVerify(TestCase):
    def check_jobs(self, out, verified_bytes):
        with open(out) as f:
            report = json.load(f)
        jobs = report["jobs"]
        self.assertEqual(len(jobs), JOBS)
        for job in jobs:
            self.assertEqual(job["error"], 0)
            self.assertEqual(job["read"]["io_bytes"], verified_bytes)  # everything read back

    def test_plain_random_4k_four_connections(self):
        image, key = self.dir.file("image"), self.dir.file("key")
        write(image, bytes(JOBS * (8 << 20)))
        write(key, random_bytes(64, 1))
        layout = ["--size=8M", "--offset_increment=8M", "--bs=4k"]
        params = ["key-file=" + key, "backend=cpu"]
        with Server(self.dir.path, image, params) as srv:
            rc, err, out = fio(srv.uri, self.dir.file("w.json"), "--rw=randwrite", "--iodepth=16",
                               *layout)
            self.assertEqual(rc, 0, err)
            self.check_jobs(out, 8 << 20)
        # A new server, the same key: the blocks verify again.
        with Server(self.dir.path, image, params) as srv:
            rc, err, out = fio(srv.uri, self.dir.file("v.json"), "--rw=randwrite",
                               "--verify_only=1", "--iodepth=16", *layout)
            self.assertEqual(rc, 0, err)
            self.check_jobs(out, 8 << 20)
        # Another key decrypts to other bytes: fio's verification must catch it.
        other = self.dir.file("other")
        write(other, random_bytes(64, 2))
        with Server(self.dir.path, image, ["key-file=" + other, "backend=cpu"]) as srv:
            rc, err, _ = fio(srv.uri, self.dir.file("x.json"), "--rw=randwrite",
                             "--verify_only=1", "--iodepth=16", *layout)
            self.assertNotEqual(rc, 0, "fio verified data read with the wrong key")

    def test_luks2_unaligned_512_on_4096_sectors(self):
        """512-byte blocks on a volume of 4096-byte sectors: every write read-modify-writes,
        several connections at once."""
        image = self.dir.file("image")
        write(image, bytes(JOBS * (2 << 20) + (4 << 20)))
        luks2_encrypt(image, self.passfile, 512, 4096, reduce="4M")
        with Server(self.dir.path, image, ["passphrase=+" + self.passfile]) as srv:
            rc, err, out = fio(srv.uri, self.dir.file("l.json"), "--rw=randwrite", "--bs=512",
                               "--iodepth=8", "--size=2M", "--offset_increment=2M")
            self.assertEqual(rc, 0, err)
            self.check_jobs(out, 2 << 20)
            rc, err, out = fio(srv.uri, self.dir.file("s.json"), "--rw=write", "--bs=1M",
                               "--iodepth=4", "--size=2M", "--offset_increment=2M")
            self.assertEqual(rc, 0, err)
            self.check_jobs(out, 2 << 20)


if __name__ == "__main__":
    main()
