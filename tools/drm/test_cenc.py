"""Tests for tools/drm/cenc.py against files made by ffmpeg on this machine.

Run with:
  /work/main/tools/aws/venv/bin/python -m unittest discover -s /work/main/tools/drm

Two sources of protected files:
  * ffmpeg's own 'cenc' encryptor (-encryption_scheme cenc-aes-ctr).  ffmpeg 5.1
    writes the sample encryption boxes only for progressive (non-fragmented)
    output: with +frag_keyframe its fragments carry no senc/saiz/saio at all.
    So ffmpeg encrypts a progressive file, and the helpers here move its
    ciphertext, IVs, subsample maps and sinf unchanged into the fragments of
    a clear fragmented copy of the same clip (no cryptography involved).
  * a small test-only encryptor below (cbcs, cenc with 16-byte IVs, key
    rotation via 'seig'), since this ffmpeg has no cbcs encryptor.

Every decrypted file is compared with the clear original through ffmpeg's
framemd5 (packet payloads, and decoded frames), and ffmpeg's own
-decryption_key is run on the protected files as a second decryptor.
"""

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.path.join(HERE, "cenc.py")

KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
KID = bytes.fromhex("0123456789abcdef0123456789abcdef")
KEY2 = bytes.fromhex("ffeeddccbbaa99887766554433221100")
KID2 = bytes.fromhex("fedcba9876543210fedcba9876543210")
WRONG_KEY = bytes.fromhex("00112233445566778899aabbccddeefe")
CONST_IV = bytes.fromhex("9a8b7c6d5e4f30211203f4e5d6c7b8a9")
COMMON_PSSH_ID = bytes.fromhex("1077efecc0b24d02ace33c1e52e2fb4b")   # W3C common PSSH
OTHER_PSSH_ID = bytes.fromhex("edef8ba979d64acea3c827dcd51d21ed")

HAVE_FFMPEG = shutil.which("ffmpeg") is not None


# ---------------------------------------------------------------------------
# A small box tree of the test's own (deliberately not cenc.py's)
# ---------------------------------------------------------------------------

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"mvex", b"moof", b"traf",
              b"sinf", b"schi", b"dinf", b"edts"}


class B:
    def __init__(self, t, data=b"", kids=None, prefix=b""):
        self.t, self.data, self.kids, self.prefix = t, data, kids, prefix

    def ser(self):
        body = self.data if self.kids is None else self.prefix + b"".join(k.ser() for k in self.kids)
        return struct.pack(">I4s", 8 + len(body), self.t) + body

    def get(self, t):
        return next(k for k in self.kids if k.t == t)

    def path(self, *ts):
        b = self
        for t in ts:
            b = b.get(t)
        return b


def parse(buf, a=0, b=None):
    b = len(buf) if b is None else b
    out = []
    while a < b:
        size, t = struct.unpack_from(">I4s", buf, a)
        assert size >= 8, "box size"
        body = buf[a + 8:a + size]
        out.append(B(t, kids=parse(body)) if t in CONTAINERS else B(t, data=bytes(body)))
        a += size
    return out


def expand_stsd(stsd, fixed):
    entries = parse(stsd.data, 8)
    for e in entries:
        e.prefix, e.kids, e.data = e.data[:fixed], parse(e.data, fixed), b""
    stsd.prefix, stsd.kids, stsd.data = stsd.data[:8], entries, b""
    return entries


def box(t, body):
    return struct.pack(">I4s", 8 + len(body), t) + body


def full(t, version, flags, body):
    return box(t, struct.pack(">I", (version << 24) | flags) + body)


def find_all_types(buf, a=0, b=None, out=None):
    """Every box type in a file, descending containers and sample entries."""
    out = [] if out is None else out
    b = len(buf) if b is None else b
    while a + 8 <= b:
        size, t = struct.unpack_from(">I4s", buf, a)
        if size < 8:
            break
        out.append(t)
        if t in CONTAINERS:
            find_all_types(buf, a + 8, a + size, out)
        elif t == b"stsd":
            find_all_types(buf, a + 16, a + size, out)
        elif t in (b"encv", b"avc1", b"hvc1", b"hev1", b"av01"):
            find_all_types(buf, a + 86, a + size, out)
        elif t in (b"enca", b"mp4a"):
            find_all_types(buf, a + 36, a + size, out)
        a += size
    return out


# ---------------------------------------------------------------------------
# Reading ffmpeg's files
# ---------------------------------------------------------------------------

def progressive_encrypted(path, fixed):
    """Samples, senc entries and the sinf box of ffmpeg's progressive cenc output."""
    with open(path, "rb") as f:
        buf = f.read()
    top = parse(buf)
    stbl = next(b for b in top if b.t == b"moov").path(b"trak", b"mdia", b"minf", b"stbl")
    entry = expand_stsd(stbl.get(b"stsd"), fixed)[0]
    sinf = entry.get(b"sinf")
    tenc = sinf.path(b"schi", b"tenc").data
    iv_size = tenc[7]
    stsz = stbl.get(b"stsz").data
    fixed_size, count = struct.unpack_from(">II", stsz, 4)
    sizes = [fixed_size] * count if fixed_size else list(struct.unpack_from(">%dI" % count, stsz, 12))
    stco = stbl.get(b"stco").data
    chunks = list(struct.unpack_from(">%dI" % struct.unpack_from(">I", stco, 4)[0], stco, 8))
    stsc = stbl.get(b"stsc").data
    n = struct.unpack_from(">I", stsc, 4)[0]
    runs = [struct.unpack_from(">III", stsc, 8 + 12 * i) for i in range(n)]
    samples, s = [], 0
    for ci, off in enumerate(chunks, start=1):
        per = [r[1] for r in runs if r[0] <= ci][-1]
        for _ in range(per):
            samples.append(buf[off:off + sizes[s]])
            off += sizes[s]
            s += 1
    senc = stbl.get(b"senc").data
    flags = struct.unpack_from(">I", senc, 0)[0] & 0xFFFFFF
    pos, entries = 8, []
    for _ in range(struct.unpack_from(">I", senc, 4)[0]):
        iv = senc[pos:pos + iv_size]
        pos += iv_size
        subs = None
        if flags & 2:
            k = struct.unpack_from(">H", senc, pos)[0]
            subs = [struct.unpack_from(">HI", senc, pos + 2 + 6 * j) for j in range(k)]
            pos += 2 + 6 * k
        entries.append((iv, subs))
    assert len(entries) == len(samples) == count
    return samples, entries, sinf.ser(), iv_size


def split_fragmented(path):
    """(ftyp+moov boxes, [(moof B, [sample bytes])]) of a clear ffmpeg fragmented MP4."""
    with open(path, "rb") as f:
        buf = f.read()
    top = parse(buf)
    init, frags, pos = [], [], 0
    for i, b in enumerate(top):
        if b.t in (b"ftyp", b"moov"):
            init.append(b)
        elif b.t == b"moof":
            mdat = top[i + 1]
            assert mdat.t == b"mdat"
            moof_size = len(b.ser())
            traf = b.get(b"traf")
            tfhd = traf.get(b"tfhd").data
            tflags = struct.unpack_from(">I", tfhd, 0)[0] & 0xFFFFFF
            assert tflags & 0x020000 and not tflags & 1, "expects default-base-is-moof"
            default_size = None
            if tflags & 0x10:
                off = 8 + (4 if tflags & 2 else 0) + (4 if tflags & 8 else 0)
                default_size = struct.unpack_from(">I", tfhd, off)[0]
            samples = []
            for trun in [k for k in traf.kids if k.t == b"trun"]:
                d = trun.data
                fl = struct.unpack_from(">I", d, 0)[0] & 0xFFFFFF
                cnt, doff = struct.unpack_from(">Ii", d, 4)
                p = 12 + (4 if fl & 4 else 0)
                at = doff - moof_size - 8
                for _ in range(cnt):
                    if fl & 0x100:
                        p += 4
                    size = default_size
                    if fl & 0x200:
                        size = struct.unpack_from(">I", d, p)[0]
                        p += 4
                    p += (4 if fl & 0x400 else 0) + (4 if fl & 0x800 else 0)
                    samples.append(mdat.data[at:at + size])
                    at += size
            frags.append((b, samples))
    return init, frags


# ---------------------------------------------------------------------------
# Test-only encryptor (written from ISO/IEC 23001-7, separately from cenc.py)
# ---------------------------------------------------------------------------

def encrypt_ctr(key, iv, sample, subs):
    ctx = Cipher(algorithms.AES(key), modes.CTR(iv + bytes(16 - len(iv)))).encryptor()
    out = bytearray(sample)
    if not subs:
        return bytes(ctx.update(sample))
    pos = 0
    for clear, prot in subs:
        pos += clear
        out[pos:pos + prot] = ctx.update(sample[pos:pos + prot])
        pos += prot
    return bytes(out)


def encrypt_cbcs(key, iv, sample, subs, crypt, skip):
    out = bytearray(sample)
    ranges, pos = [], 0
    for clear, prot in (subs or [(0, len(sample))]):
        ranges.append((pos + clear, prot))
        pos += clear + prot
    for start, length in ranges:
        ctx = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        nblocks = length // 16
        # 0:0 = every whole block; otherwise runs of `crypt` blocks every
        # crypt+skip blocks, a final incomplete run left clear (23001-7 9.6.1).
        run, step = (nblocks, nblocks) if crypt == 0 and skip == 0 else (crypt, crypt + skip)
        b = 0
        while run and b + run <= nblocks:
            s = start + 16 * b
            out[s:s + 16 * run] = ctx.update(bytes(out[s:s + 16 * run]))
            b += step
    return bytes(out)


def split_clear(clear, prot):
    out = []
    while clear > 0xFFFF:
        out.append((0xFFFF, 0))
        clear -= 0xFFFF
    out.append((clear, prot))
    return out


def nal_subsamples(sample, length_size, header, is_vcl, align16):
    """One subsample per NAL: VCL NALs keep length+header clear, others all clear."""
    subs, pos = [], 0
    while pos < len(sample):
        n = int.from_bytes(sample[pos:pos + length_size], "big")
        total = length_size + n
        if is_vcl(sample[pos + length_size]):
            clear = length_size + header
            prot = total - clear
            if align16:
                clear += prot % 16
                prot -= prot % 16
        else:
            clear, prot = total, 0
        subs += split_clear(clear, prot)
        pos += total
    assert pos == len(sample)
    return subs


def avc_vcl(b):
    return 1 <= (b & 0x1F) <= 5


def hevc_vcl(b):
    return ((b >> 1) & 0x3F) < 32


def obu_subsamples(sample, align16=True):
    subs, pos = [], 0
    while pos < len(sample):
        h = sample[pos]
        typ, ext, has_size = (h >> 3) & 15, (h >> 2) & 1, (h >> 1) & 1
        hl = 1 + ext
        assert has_size
        size, shift = 0, 0
        while True:
            c = sample[pos + hl]
            hl += 1
            size |= (c & 0x7F) << shift
            shift += 7
            if not c & 0x80:
                break
        total = hl + size
        if typ in (4, 6):
            clear, prot = hl, size
            if align16:
                clear += prot % 16
                prot -= prot % 16
        else:
            clear, prot = total, 0
        subs += split_clear(clear, prot)
        pos += total
    return subs


def tenc_box(version, crypt, skip, iv_size, kid, const_iv=None):
    body = bytes([0, (crypt << 4 | skip) if version else 0, 1, iv_size]) + kid
    if iv_size == 0:
        body += bytes([len(const_iv)]) + const_iv
    return full(b"tenc", version, 0, body)


def sinf_box(orig, scheme, tenc):
    return box(b"sinf", box(b"frma", orig) + full(b"schm", 0, 0, scheme + struct.pack(">I", 0x10000))
               + box(b"schi", tenc))


def seig_entry(crypt, skip, iv_size, kid, const_iv=None):
    body = bytes([0, crypt << 4 | skip, 1, iv_size]) + kid
    if iv_size == 0:
        body += bytes([len(const_iv)]) + const_iv
    return body


def pssh_box(system_id, kids, data):
    if kids:
        return full(b"pssh", 1, 0, system_id + struct.pack(">I", len(kids)) + b"".join(kids)
                    + struct.pack(">I", len(data)) + data)
    return full(b"pssh", 0, 0, system_id + struct.pack(">I", len(data)) + data)


def protect_init(init_boxes, fixed, sinf_bytes, clear_lead=None, pssh=(), scheme_fourcc=b"encv"):
    """Return the bytes of a protected init: the sample entry becomes encv/enca
    with a sinf.  clear_lead "clear-first" keeps the clear entry as index 1
    and adds the protected one as index 2; "encrypted-first" the other way."""
    out = b""
    for b in init_boxes:
        if b.t != b"moov":
            out += b.ser()
            continue
        moov = parse(b.ser())[0]
        stsd = moov.path(b"trak", b"mdia", b"minf", b"stbl", b"stsd")
        clear = expand_stsd(stsd, fixed)[0]
        enc = B(scheme_fourcc, kids=list(clear.kids) + [parse(sinf_bytes)[0]], prefix=clear.prefix)
        stsd.kids = {None: [enc], "clear-first": [clear, enc], "encrypted-first": [enc, clear]}[clear_lead]
        stsd.prefix = stsd.prefix[:4] + struct.pack(">I", len(stsd.kids))
        moov.kids += [parse(p)[0] for p in pssh]
        out += moov.ser()
    return out


def tfhd_with_sdi(data, sdi):
    flags = struct.unpack_from(">I", data, 0)[0] & 0xFFFFFF
    rest = data[8:]
    if flags & 2:
        rest = rest[4:]
    return struct.pack(">II", (data[0] << 24) | flags | 2, struct.unpack_from(">I", data, 4)[0]) \
        + struct.pack(">I", sdi) + rest


def build_segment(moof, samples, senc_entries=None, senc_flags=0, sdi=None, extra=()):
    """A moof+mdat with the given (possibly encrypted) samples.  senc_entries
    is a list of (iv, subsamples or None); None writes no senc/saiz/saio."""
    moof = parse(moof.ser())[0]
    traf = moof.get(b"traf")
    kids = []
    for k in traf.kids:
        if k.t == b"tfhd" and sdi is not None:
            k = B(b"tfhd", data=tfhd_with_sdi(k.data, sdi))
        kids.append(k)
    kids += [parse(e)[0] for e in extra]
    if senc_entries is not None:
        raw = []
        for iv, subs in senc_entries:
            e = iv
            if senc_flags & 2:
                e += struct.pack(">H", len(subs)) + b"".join(struct.pack(">HI", c, p) for c, p in subs)
            raw.append(e)
        sizes = [len(e) for e in raw]
        if len(set(sizes)) == 1 and sizes[0]:
            saiz = full(b"saiz", 0, 0, struct.pack(">BI", sizes[0], len(sizes)))
        else:
            saiz = full(b"saiz", 0, 0, struct.pack(">BI", 0, len(sizes)) + bytes(sizes))
        kids.append(parse(saiz)[0])
        kids.append(B(b"saio", data=struct.pack(">III", 0, 1, 0)))
        kids.append(B(b"senc", data=struct.pack(">II", senc_flags, len(raw)) + b"".join(raw)))
    traf.kids = kids
    # Lay out once to learn where senc lands, then patch saio and trun in place.
    blob = bytearray(moof.ser())
    moof_size = len(blob)

    def walk(a, b_, fn):
        while a < b_:
            size, t = struct.unpack_from(">I4s", blob, a)
            fn(t, a)
            if t in (b"moof", b"traf"):
                walk(a + 8, a + size, fn)
            a += size

    def patch(t, a):
        if t == b"senc":
            walk(0, moof_size, lambda t2, a2: struct.pack_into(">I", blob, a2 + 16, a + 16)
                 if t2 == b"saio" else None)
        if t == b"trun":
            struct.pack_into(">i", blob, a + 16, moof_size + 8)
    walk(0, moof_size, patch)
    data = b"".join(samples)
    return bytes(blob) + box(b"mdat", data)


# ---------------------------------------------------------------------------
# Running things
# ---------------------------------------------------------------------------

def run(cmd, check=True):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s" % (" ".join(cmd), p.returncode, p.stderr.decode()[-3000:]))
    return p


def ffmpeg(*args):
    run(["ffmpeg", "-nostdin", "-v", "error", "-y"] + list(args))


def framemd5(path, decode=False, key=None, pipe=False):
    """(lines without comments, ffmpeg stderr, exit code).  With pipe the file
    is fed through standard input, as a non-seekable stream."""
    cmd = ["ffmpeg", "-v", "error"]
    if key is not None:
        cmd += ["-decryption_key", key.hex()]
    cmd += ["-i", "pipe:0" if pipe else path, "-map", "0"] + ([] if decode else ["-c", "copy"])
    cmd += ["-f", "framemd5", "-"]
    if pipe:
        with open(path, "rb") as f:
            p = subprocess.run(cmd, stdin=f, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    else:
        p = run(["ffmpeg", "-nostdin"] + cmd[1:], check=False)
    lines = [l for l in p.stdout.decode().splitlines() if l and not l.startswith("#")]
    return lines, p.stderr.decode(), p.returncode


def payload_md5s(lines):
    """(size, md5) of each packet: timestamps differ between a progressive
    original and a fragmented copy (edit lists), the payloads must not."""
    return [tuple(x.strip() for x in l.split(",")[4:6]) for l in lines]


def read(path):
    with open(path, "rb") as f:
        return f.read()


def cenc_py(*args):
    return run([sys.executable, TOOL] + list(args), check=False)


class Work:
    """Clips made once for all tests."""
    dir = None

    @classmethod
    def path(cls, name):
        return os.path.join(cls.dir, name)


def setUpModule():
    if not HAVE_FFMPEG:
        return
    Work.dir = tempfile.mkdtemp(prefix="cenc-test-")
    w = Work.path
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "4", "-c:v", "libx264",
           "-g", "25", "-pix_fmt", "yuv420p", "-x264-params", "slices=3", w("avc.mp4"))
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=4", "-c:a", "aac", w("aac.mp4"))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "2", "-c:v", "libx265",
           "-g", "25", "-x265-params", "log-level=error", "-tag:v", "hvc1", w("hevc.mp4"))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "2", "-c:v", "libaom-av1",
           "-cpu-used", "8", "-g", "25", w("av1.mp4"))
    for name in ("avc", "hevc", "av1"):
        ffmpeg("-i", w(name + ".mp4"), "-c", "copy", "-movflags", "+frag_keyframe+empty_moov+default_base_moof",
               w(name + "_frag.mp4"))
    ffmpeg("-i", w("aac.mp4"), "-c", "copy", "-frag_duration", "1000000",
           "-movflags", "+empty_moov+default_base_moof", w("aac_frag.mp4"))
    for name in ("avc", "aac", "hevc"):
        ffmpeg("-i", w(name + ".mp4"), "-c", "copy", "-encryption_scheme", "cenc-aes-ctr",
               "-encryption_key", KEY.hex(), "-encryption_kid", KID.hex(), w(name + "_ffcenc.mp4"))


def tearDownModule():
    if Work.dir:
        shutil.rmtree(Work.dir, ignore_errors=True)


FIXED = {"avc": 78, "hevc": 78, "av1": 78, "aac": 28}


def write_track(tag, init_bytes, segments):
    """Write init.mp4 + 00001.m4s ... into a fresh folder, and a single-file copy."""
    d = Work.path(tag)
    os.makedirs(d, exist_ok=True)
    paths = [os.path.join(d, "init.mp4")]
    with open(paths[0], "wb") as f:
        f.write(init_bytes)
    for i, s in enumerate(segments, start=1):
        paths.append(os.path.join(d, "%05d.m4s" % i))
        with open(paths[-1], "wb") as f:
            f.write(s)
    single = os.path.join(d, "single.mp4")
    with open(single, "wb") as f:
        f.write(init_bytes + b"".join(segments))
    return paths, single


@unittest.skipUnless(HAVE_FFMPEG, "ffmpeg is not installed")
class CencTestCase(unittest.TestCase):
    maxDiff = 4000

    def decrypt(self, paths, out, keys=((KID, KEY),)):
        args = ["decrypt"]
        for kid, key in keys:
            args += ["--key", "%s:%s" % (kid.hex(), key.hex())]
        p = cenc_py(*(args + list(paths) + ["-o", out]))
        return p

    def inspect(self, paths, kid=KID, nal=True):
        args = ["inspect"] + list(paths) + ["--expect-kid", kid.hex()]
        if nal:
            args.append("--nal-length-check")
        p = cenc_py(*args)
        report = json.loads(p.stdout.decode()) if p.stdout.strip() else None
        return p, report

    def assert_clear_equals(self, out, name, decode=True):
        """out (a decrypted file) against the clear fragmented and the original clip."""
        ref_lines, _, _ = framemd5(Work.path(name + "_frag.mp4"))
        got_lines, err, rc = framemd5(out)
        self.assertEqual(rc, 0, err)
        self.assertEqual(got_lines, ref_lines)
        orig_lines, _, _ = framemd5(Work.path(name + ".mp4"))
        self.assertEqual(payload_md5s(got_lines), payload_md5s(orig_lines))
        if decode:
            # Decoded frames: same as the clear fragmented copy (same timing),
            # and for video the same pictures as the original clip.
            ref, _, _ = framemd5(Work.path(name + "_frag.mp4"), decode=True)
            got, err, rc = framemd5(out, decode=True)
            self.assertEqual((rc, err), (0, ""))
            self.assertEqual(got, ref)
            if name != "aac":
                orig, _, _ = framemd5(Work.path(name + ".mp4"), decode=True)
                self.assertEqual(payload_md5s(got), payload_md5s(orig))
        types = find_all_types(read(out))
        for t in (b"encv", b"enca", b"sinf", b"senc", b"saiz", b"saio", b"pssh", b"tenc"):
            self.assertNotIn(t, types, "%s left in the clear output" % t.decode())
        return got_lines

    def ffmpeg_agrees(self, single, name, key=KEY):
        """ffmpeg's own decryptor on the protected single file, read as a
        stream: ffmpeg 5.1 on a seekable fragmented file without sidx/mfra
        indexes every moof at open and then looks a sample's encryption info
        up in the last-parsed fragment (cenc_filter uses frag_index.current),
        so it fails from the second fragment on; streamed, it reads one moof
        at a time."""
        ref_lines, _, _ = framemd5(Work.path(name + "_frag.mp4"))
        got, err, rc = framemd5(single, key=key, pipe=True)
        # ffmpeg appends the pssh boxes as packet side data: compare the
        # first six fields (stream, dts, pts, duration, size, md5).
        if rc == 0 and [l.split(",")[:6] for l in got] == [l.split(",")[:6] for l in ref_lines]:
            dec_ref, _, _ = framemd5(Work.path(name + "_frag.mp4"), decode=True)
            dec, err, rc = framemd5(single, key=key, pipe=True, decode=True)
            return rc == 0 and dec == dec_ref, err
        return False, err or "packets differ"


# ---------------------------------------------------------------------------
# 'cenc' from ffmpeg's encryptor
# ---------------------------------------------------------------------------

def ffmpeg_cenc_track(name, pssh=()):
    """ffmpeg-encrypted samples, IVs, subsamples and sinf, laid into the
    fragments of the clear fragmented copy."""
    fixed = FIXED[name]
    enc_samples, entries, sinf, iv_size = progressive_encrypted(Work.path(name + "_ffcenc.mp4"), fixed)
    init_boxes, frags = split_fragmented(Work.path(name + "_frag.mp4"))
    fourcc = b"enca" if name == "aac" else b"encv"
    init = protect_init(init_boxes, fixed, sinf, pssh=pssh, scheme_fourcc=fourcc)
    segs, i = [], 0
    flags = 2 if entries[0][1] is not None else 0
    for moof, clear_samples in frags:
        n = len(clear_samples)
        assert [len(s) for s in clear_samples] == [len(s) for s in enc_samples[i:i + n]]
        segs.append(build_segment(moof, enc_samples[i:i + n], entries[i:i + n], flags))
        i += n
    assert i == len(enc_samples)
    return init, segs, iv_size


class TestFfmpegCenc(CencTestCase):

    def test_avc_cenc(self):
        pssh = [pssh_box(COMMON_PSSH_ID, [KID], b""), pssh_box(OTHER_PSSH_ID, [], b"\x08\x01\x12\x10" + KID)]
        init, segs, iv_size = ffmpeg_cenc_track("avc", pssh)
        self.assertEqual(iv_size, 8)
        paths, single = write_track("avc_cenc", init, segs)
        self.assertEqual(len(paths), 5)   # init + one segment per GOP

        p, rep = self.inspect(paths)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertEqual(rep["scheme"], "cenc")
        self.assertEqual(rep["tenc"]["default_KID"], KID.hex())
        self.assertEqual(rep["tenc"]["default_Per_Sample_IV_Size"], 8)
        self.assertEqual([(x["system_id"].replace("-", ""), x["kids"]) for x in rep["pssh"]],
                         [(COMMON_PSSH_ID.hex(), [KID.hex()]), (OTHER_PSSH_ID.hex(), [])])
        traf = rep["segments"][0]["fragments"][0]["trafs"][0]
        self.assertEqual(traf["trun_sample_count"], traf["senc_sample_count"])
        self.assertEqual(traf["saio"]["offsets"], [traf["saio"]["expected_offset"]])

        out = Work.path("avc_cenc_clear.mp4")
        p = self.decrypt(paths, out)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assert_clear_equals(out, "avc")

        # Single fragmented file as INIT, no SEGs: same output.
        out2 = Work.path("avc_cenc_clear_single.mp4")
        p = self.decrypt([single], out2)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertEqual(read(out), read(out2))

        # ffmpeg's own decryptor agrees, on the fragments and on its progressive file.
        ok, err = self.ffmpeg_agrees(single, "avc")
        self.assertTrue(ok, err)
        prog, _, _ = framemd5(Work.path("avc_ffcenc.mp4"), key=KEY)
        self.assertEqual(payload_md5s(prog), payload_md5s(framemd5(Work.path("avc.mp4"))[0]))

    def test_aac_cenc(self):
        init, segs, _ = ffmpeg_cenc_track("aac")
        paths, single = write_track("aac_cenc", init, segs)
        p, rep = self.inspect(paths, nal=False)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertEqual(rep["segments"][0]["fragments"][0]["trafs"][0]["senc_flags"] & 2, 0)
        out = Work.path("aac_cenc_clear.mp4")
        p = self.decrypt(paths, out)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assert_clear_equals(out, "aac")
        ok, err = self.ffmpeg_agrees(single, "aac")
        self.assertTrue(ok, err)

    def test_wrong_key_gives_wrong_frames(self):
        init, segs, _ = ffmpeg_cenc_track("avc")
        paths, _ = write_track("avc_cenc_wrong", init, segs)
        out = Work.path("avc_wrong.mp4")
        p = self.decrypt(paths, out, keys=[(KID, WRONG_KEY)])
        self.assertEqual(p.returncode, 0, p.stderr.decode())   # no integrity check in CENC
        ref, _, _ = framemd5(Work.path("avc_frag.mp4"))
        got, _, _ = framemd5(out)
        self.assertNotEqual(payload_md5s(got), payload_md5s(ref))
        dec_ref, _, _ = framemd5(Work.path("avc.mp4"), decode=True)
        dec, err, rc = framemd5(out, decode=True)
        self.assertTrue(rc != 0 or err.strip() or payload_md5s(dec) != payload_md5s(dec_ref),
                        "wrong key decoded to the original frames")

    def test_clear_input_is_copied(self):
        """A clear fragmented file (no sinf, no senc) passes through unchanged."""
        out = Work.path("clear_copy.mp4")
        p = self.decrypt([Work.path("avc_frag.mp4")], out)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertIn("0 samples decrypted", p.stderr.decode())
        self.assertIn("mfra x1", p.stderr.decode())
        self.assert_clear_equals(out, "avc")

    def test_missing_key_is_an_error(self):
        init, segs, _ = ffmpeg_cenc_track("aac")
        paths, _ = write_track("aac_cenc_nokey", init, segs)
        p = self.decrypt(paths, Work.path("nokey.mp4"), keys=[(KID2, KEY2)])
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no key for KID %s" % KID.hex(), p.stderr.decode())

    def test_hevc_full_sample_fails_nal_check(self):
        """ffmpeg 5.1 encrypts HEVC samples whole (no subsamples): the NAL
        length fields are ciphertext, which inspect must reject."""
        init, segs, _ = ffmpeg_cenc_track("hevc")
        paths, single = write_track("hevc_ffcenc", init, segs)
        p, rep = self.inspect(paths)
        self.assertNotEqual(p.returncode, 0)
        self.assertTrue(any("whole sample is encrypted" in e or "length" in e for e in rep["errors"]),
                        rep["errors"][:3])
        # It still decrypts to the original (the tool does not need NAL structure).
        out = Work.path("hevc_ffcenc_clear.mp4")
        p = self.decrypt(paths, out)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assert_clear_equals(out, "hevc")


# ---------------------------------------------------------------------------
# cbcs and 16-byte-IV cenc from the test-only encryptor
# ---------------------------------------------------------------------------

def encrypt_track(name, scheme, *, pattern=(1, 9), clear_lead=0, lead_order="clear-first", subsamples="codec",
                  rotate_fragment=None, per_sample_iv=None, mutate=None, pssh=(), av1_align16=True):
    """Encrypt the clear fragmented copy of `name` with the test encryptor.
    The first `clear_lead` fragments stay clear (sample description 1).
    Returns (init bytes, [segment bytes])."""
    fixed = FIXED[name]
    init_boxes, frags = split_fragmented(Work.path(name + "_frag.mp4"))
    orig = {"avc": b"avc1", "hevc": b"hvc1", "av1": b"av01", "aac": b"mp4a"}[name]
    crypt, skip = pattern
    if scheme == "cbcs":
        tenc = tenc_box(1, crypt, skip, 0, KID, CONST_IV)
    else:
        tenc = tenc_box(0, 0, 0, per_sample_iv or 16, KID)
    init = protect_init(init_boxes, fixed, sinf_box(orig, scheme.encode(), tenc),
                        clear_lead=lead_order if clear_lead else None,
                        pssh=pssh, scheme_fourcc=b"enca" if name == "aac" else b"encv")
    clear_sdi, enc_sdi = (1, 2) if lead_order == "clear-first" else (2, 1)
    segs = []
    counter = 0x0102030405060708 << 64
    for fi, (moof, samples) in enumerate(frags):
        if fi < clear_lead:
            segs.append(build_segment(moof, samples, None, sdi=clear_sdi))
            continue
        key, kid, extra = KEY, KID, ()
        if rotate_fragment == fi:
            # key rotation through a fragment-local 'seig' group (23001-7 section 6)
            key, kid = KEY2, KID2
            if scheme == "cbcs":
                entry = seig_entry(crypt, skip, 0, KID2, CONST_IV)
            else:
                entry = seig_entry(0, 0, per_sample_iv or 16, KID2)
            sgpd = full(b"sgpd", 1, 0, b"seig" + struct.pack(">II", len(entry), 1) + entry)
            sbgp = full(b"sbgp", 0, 0, b"seig" + struct.pack(">III", 1, len(samples), 0x10001))
            extra = (sbgp, sgpd)
        out, entries = [], []
        for s in samples:
            if subsamples == "none" or name == "aac":
                subs = None
            elif name == "avc":
                subs = nal_subsamples(s, 4, 1, avc_vcl, align16=(scheme == "cenc"))
            elif name == "hevc":
                subs = nal_subsamples(s, 4, 2, hevc_vcl, align16=(scheme == "cenc"))
            else:
                subs = obu_subsamples(s, align16=av1_align16)
            if scheme == "cbcs":
                out.append(encrypt_cbcs(key, CONST_IV, s, subs, crypt, skip))
                entries.append((b"", subs))
            else:
                counter += 1
                iv = counter.to_bytes(16, "big")[:per_sample_iv or 16]
                out.append(encrypt_ctr(key, iv, s, subs))
                entries.append((iv, subs))
        flags = 0 if entries[0][1] is None else 2
        if mutate:
            out, entries = mutate(fi, out, entries)
        segs.append(build_segment(moof, out, entries, flags, sdi=(enc_sdi if clear_lead else None), extra=extra))
    return init, segs


class TestTestEncryptor(CencTestCase):

    def roundtrip(self, tag, name, init, segs, keys=((KID, KEY),), nal=True):
        paths, single = write_track(tag, init, segs)
        p, rep = self.inspect(paths, nal=nal and name != "aac")
        self.assertEqual(p.returncode, 0, (p.stderr.decode(), rep and rep["errors"][:5]))
        out = Work.path(tag + "_clear.mp4")
        p = self.decrypt(paths, out, keys)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assert_clear_equals(out, name)
        return paths, single, rep

    def test_avc_cbcs(self):
        init, segs = encrypt_track("avc", "cbcs")
        paths, single, rep = self.roundtrip("avc_cbcs", "avc", init, segs)
        self.assertEqual(rep["scheme"], "cbcs")
        self.assertEqual(rep["tenc"]["version"], 1)
        self.assertEqual((rep["tenc"]["crypt_byte_block"], rep["tenc"]["skip_byte_block"]), (1, 9))
        self.assertEqual(rep["tenc"]["default_Per_Sample_IV_Size"], 0)
        self.assertEqual(rep["tenc"]["default_constant_IV"], CONST_IV.hex())
        # Wrong key: the frames differ.
        out = Work.path("avc_cbcs_wrong.mp4")
        self.assertEqual(self.decrypt(paths, out, [(KID, WRONG_KEY)]).returncode, 0)
        self.assertNotEqual(payload_md5s(framemd5(out)[0]), payload_md5s(framemd5(Work.path("avc.mp4"))[0]))

    def test_avc_cbcs_ffmpeg_decrypts(self):
        """Probe: ffmpeg 5.1's mov demuxer decrypts 'cbcs' (1:9 pattern,
        constant IV, subsamples) to the same packets."""
        init, segs = encrypt_track("avc", "cbcs")
        _, single = write_track("avc_cbcs_ff", init, segs)
        ok, err = self.ffmpeg_agrees(single, "avc")
        self.assertTrue(ok, err)

    def test_avc_cbcs_other_patterns(self):
        """5:5 and 10:0 leave a final run of fewer than crypt_byte_block
        blocks clear (9.6.1); ffmpeg reads it the same way."""
        for pattern in ((5, 5), (10, 0), (1, 0)):
            init, segs = encrypt_track("avc", "cbcs", pattern=pattern)
            _, single, rep = self.roundtrip("avc_cbcs_%d_%d" % pattern, "avc", init, segs)
            self.assertEqual((rep["tenc"]["crypt_byte_block"], rep["tenc"]["skip_byte_block"]), pattern)
            ok, err = self.ffmpeg_agrees(single, "avc")
            self.assertTrue(ok, "ffmpeg on cbcs %d:%d: %s" % (pattern + (err,)))

    def test_cbcs_video_without_pattern_is_flagged(self):
        """0:0 on NAL video breaks 23001-7 10.4 (and ffmpeg 5.1 refuses it:
        "pattern encryption is not present in 'cbcs' scheme"); the tool
        still decrypts it."""
        init, segs = encrypt_track("avc", "cbcs", pattern=(0, 0))
        paths, single = write_track("avc_cbcs_00", init, segs)
        p, rep = self.inspect(paths)
        self.assertNotEqual(p.returncode, 0)
        self.assertTrue(any("without a pattern" in e for e in rep["errors"]), rep["errors"][:3])
        out = Work.path("avc_cbcs_00_clear.mp4")
        self.assertEqual(self.decrypt(paths, out).returncode, 0)
        self.assert_clear_equals(out, "avc")
        ok, err = self.ffmpeg_agrees(single, "avc")
        if not ok:   # ffmpeg 5.1
            self.assertIn("pattern encryption is not present", err)

    def test_aac_cbcs_whole_sample(self):
        for pattern in ((0, 0), (1, 0)):
            init, segs = encrypt_track("aac", "cbcs", pattern=pattern)
            tag = "aac_cbcs_%d%d" % pattern
            _, single, rep = self.roundtrip(tag, "aac", init, segs)
            self.assertEqual(rep["segments"][0]["fragments"][0]["trafs"][0]["senc_flags"], 0)
            ok, err = self.ffmpeg_agrees(single, "aac")
            self.assertTrue(ok, "ffmpeg on cbcs audio %s: %s" % (pattern, err))

    def test_clear_lead(self):
        """stsd with a clear and a protected entry; the first segment clear."""
        for order, formats, (clear_sdi, enc_sdi) in (
                ("clear-first", [("avc1", False), ("encv", True)], (1, 2)),
                ("encrypted-first", [("encv", True), ("avc1", False)], (2, 1))):
            for scheme in ("cbcs", "cenc"):
                tag = "avc_%s_lead_%s" % (scheme, order)
                init, segs = encrypt_track("avc", scheme, clear_lead=1, lead_order=order)
                paths, single, rep = self.roundtrip(tag, "avc", init, segs)
                entries = rep["tracks"][0]["sample_entries"]
                self.assertEqual([(e["format"], e["protected"]) for e in entries], formats)
                first = rep["segments"][0]["fragments"][0]["trafs"][0]
                self.assertEqual((first["sample_description_index"], first["clear"]), (clear_sdi, True))
                second = rep["segments"][1]["fragments"][0]["trafs"][0]
                self.assertEqual(second["sample_description_index"], enc_sdi)
                out_types = find_all_types(read(Work.path(tag + "_clear.mp4")))
                self.assertEqual(out_types.count(b"avc1"), 1)

    def test_clear_lead_ffmpeg_encrypted_first(self):
        """ffmpeg 5.1 decrypts clear lead when the protected entry is index 1."""
        init, segs = encrypt_track("avc", "cbcs", clear_lead=1, lead_order="encrypted-first")
        _, single = write_track("avc_lead_ff1", init, segs)
        ok, err = self.ffmpeg_agrees(single, "avc")
        self.assertTrue(ok, err)

    def test_clear_lead_ffmpeg_clear_first_probe(self):
        """Probe: ffmpeg 5.1 (cenc_filter) only looks up encryption info when
        the fragment's sample description index is 1, so with the clear entry
        first it passes the protected fragments through undecrypted."""
        init, segs = encrypt_track("avc", "cbcs", clear_lead=1, lead_order="clear-first")
        _, single = write_track("avc_lead_ff2", init, segs)
        ok, err = self.ffmpeg_agrees(single, "avc")
        if not ok:
            self.skipTest("this ffmpeg does not decrypt a protected sample entry at stsd index 2 (%s)"
                          % err.strip()[:200])

    def test_avc_cenc_16byte_iv(self):
        init, segs = encrypt_track("avc", "cenc")
        _, single, rep = self.roundtrip("avc_cenc16", "avc", init, segs)
        self.assertEqual(rep["tenc"]["default_Per_Sample_IV_Size"], 16)
        ok, err = self.ffmpeg_agrees(single, "avc")
        self.assertTrue(ok, err)

    def test_hevc_cbcs(self):
        init, segs = encrypt_track("hevc", "cbcs")
        _, single, rep = self.roundtrip("hevc_cbcs", "hevc", init, segs)
        self.assertEqual(rep["tracks"][0]["sample_entries"][0]["original_format"], "hvc1")
        self.assertEqual(rep["tracks"][0]["sample_entries"][0]["nal_length_size"], 4)
        ok, err = self.ffmpeg_agrees(single, "hevc")
        self.assertTrue(ok, err)

    def test_av1_cbcs(self):
        init, segs = encrypt_track("av1", "cbcs")
        _, single, _ = self.roundtrip("av1_cbcs", "av1", init, segs)
        ok, err = self.ffmpeg_agrees(single, "av1")
        self.assertTrue(ok, err)

    def test_av1_cenc(self):
        init, segs = encrypt_track("av1", "cenc", per_sample_iv=8)
        self.roundtrip("av1_cenc", "av1", init, segs)

    def test_key_rotation_seig(self):
        for scheme in ("cenc", "cbcs"):
            init, segs = encrypt_track("avc", scheme, rotate_fragment=2)
            tag = "avc_%s_rot" % scheme
            paths, _, rep = self.roundtrip(tag, "avc", init, segs, keys=[(KID, KEY), (KID2, KEY2)])
            self.assertEqual(rep["segments"][2]["fragments"][0]["trafs"][0]["seig_kids"], [KID2.hex()])
            p = self.decrypt(paths, Work.path(tag + "_nokey.mp4"))
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("no key for KID %s" % KID2.hex(), p.stderr.decode())


class TestInspectFailures(CencTestCase):

    def bad(self, tag, init, segs, expect, kid=KID):
        paths, _ = write_track(tag, init, segs)
        p, rep = self.inspect(paths, kid=kid)
        self.assertNotEqual(p.returncode, 0, "inspect passed a bad file (%s)" % tag)
        text = "\n".join(rep["errors"]) if rep else p.stderr.decode()
        self.assertIn(expect, text)
        return rep

    def test_wrong_expected_kid(self):
        init, segs = encrypt_track("avc", "cbcs")
        self.bad("bad_kid", init, segs, "differs from expected", kid=KID2)

    def test_whole_sample_video(self):
        init, segs = encrypt_track("avc", "cbcs", subsamples="none")
        self.bad("bad_whole", init, segs, "whole sample is encrypted")

    def test_encrypted_nal_header(self):
        def mutate(fi, out, entries):
            # The senc of the last sample claims its last NAL's header byte is
            # protected: clear bytes = the 4-byte length field only.
            iv, subs = entries[-1]
            c, p = subs[-1]
            return out, entries[:-1] + [(iv, subs[:-1] + [(4, c - 4 + p)])]
        init, segs = encrypt_track("avc", "cenc", mutate=mutate)
        self.bad("bad_header", init, segs, "header not in clear bytes")

    def test_subsample_across_nals(self):
        def mutate(fi, out, entries):
            # Move 16 bytes from the end of subsample 0 into subsample 1:
            # every NAL header stays clear, but subsample 0 now ends inside a NAL.
            iv, subs = entries[0]
            (c0, p0), (c1, p1) = subs[0], subs[1]
            subs = ([(c0, p0 - 16)] if p0 >= 16 else [(c0 - 16, p0)]) + [(c1 + 16, p1)] + subs[2:]
            return out, [(iv, subs)] + entries[1:]
        init, segs = encrypt_track("avc", "cenc", mutate=mutate)
        self.bad("bad_span", init, segs, "NAL boundaries")

    def test_bad_saio(self):
        init, segs = encrypt_track("avc", "cenc")
        seg = bytearray(segs[1])
        at = seg.find(b"saio")
        struct.pack_into(">I", seg, at + 12, struct.unpack_from(">I", seg, at + 12)[0] + 4)
        self.bad("bad_saio", init, [segs[0], bytes(seg)] + segs[2:], "saio offset")

    def test_bad_saiz(self):
        init, segs = encrypt_track("avc", "cenc")
        seg = bytearray(segs[0])
        at = seg.find(b"saiz")
        default = seg[at + 8]
        if default:
            seg[at + 8] = default + 6
        else:
            seg[at + 13] += 6    # first per-sample size
        self.bad("bad_saiz", init, [bytes(seg)] + segs[1:], "saiz size of sample 0")

    def test_av1_cenc_partial_blocks(self):
        init, segs = encrypt_track("av1", "cenc", av1_align16=False)
        self.bad("bad_av1", init, segs, "not a multiple of 16")

    def test_subsample_sum(self):
        def mutate(fi, out, entries):
            iv, subs = entries[-1]
            c, p = subs[-1]
            return out, entries[:-1] + [(iv, subs[:-1] + [(c, p - 16)])]
        init, segs = encrypt_track("avc", "cenc", mutate=mutate)
        self.bad("bad_sum", init, segs, "subsamples sum to")


if __name__ == "__main__":
    unittest.main()
