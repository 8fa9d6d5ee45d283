#!/usr/bin/env python3
"""Independent Common Encryption (ISO/IEC 23001-7) decryptor and box checker.

This tool exists to check rungs' encryptor from the outside: it is written from
the specifications only and shares no code with the Rust packager.  It reads a
CMAF track (an init segment plus media segments, or one fragmented MP4 file)
and either

  decrypt  writes one clear fragmented MP4 that ffmpeg can read without keys, or
  inspect  prints a JSON report of the protection boxes and checks them.

Usage:
  cenc.py decrypt --key KIDHEX:KEYHEX [--key ...] INIT [SEG ...] -o OUT.mp4
  cenc.py inspect INIT [SEG ...] --expect-kid KIDHEX [--nal-length-check]

INIT may itself contain moof/mdat pairs (a single fragmented file); they are
processed before the SEG files.

Spec references are to ISO/IEC 23001-7:2016 (3rd edition, "CENC") unless noted:
  section 6     CencSampleEncryptionInformationGroupEntry ('seig' sample group)
  section 7.2   SampleEncryptionBox ('senc')
  section 8.1   ProtectionSystemSpecificHeaderBox ('pssh')
  section 8.2   TrackEncryptionBox ('tenc')
  section 9     encryption of samples: IVs (9.2), AES-CTR (9.3), AES-CBC (9.4),
                subsample encryption (9.5, NAL structured video 9.5.2),
                pattern encryption (9.6), whole-block full sample encryption (9.7)
  section 10.1  the 'cenc' scheme; section 10.4 the 'cbcs' scheme
and to ISO/IEC 14496-12 ("ISOBMFF") for the generic boxes (sinf/frma/schm,
tfhd/trun, saiz/saio, sbgp/sgpd), ISO/IEC 14496-15 for avcC/hvcC, and the
AV1 Codec ISO Media File Format Binding for av1C and AV1 sample encryption.

Only the Python standard library and the `cryptography` package are used.
"""

import argparse
import json
import struct
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


class CencError(Exception):
    """A file that cannot be processed (malformed, unsupported, or missing key)."""


# ---------------------------------------------------------------------------
# Generic box tree (ISO/IEC 14496-12 section 4.2)
# ---------------------------------------------------------------------------

# Boxes whose payload is only child boxes.
PURE_CONTAINERS = {
    b"moov", b"trak", b"mdia", b"minf", b"stbl", b"mvex", b"moof", b"traf",
    b"sinf", b"schi", b"dinf", b"edts",
}

VISUAL_HANDLER = b"vide"
AUDIO_HANDLER = b"soun"

# Length of the fixed fields of a VisualSampleEntry / AudioSampleEntry that
# precede their child boxes (ISO/IEC 14496-12 sections 8.5.2 and 12.1.3, 12.2.3).
VISUAL_ENTRY_FIXED = 78
AUDIO_ENTRY_FIXED = 28


class Box:
    """One box.  Leaves keep their payload bytes; containers keep `prefix`
    (fields before the first child, e.g. a FullBox header and entry count)
    and a list of `children`.  `offset` is the box's position in the buffer it
    was read from, or None for a box built here."""

    def __init__(self, btype, offset=None, header_size=8, payload=b"", prefix=b"", children=None):
        self.type = btype
        self.offset = offset
        self.header_size = header_size
        self.payload = payload
        self.prefix = prefix
        self.children = children

    @property
    def payload_offset(self):
        return self.offset + self.header_size

    def body(self):
        if self.children is None:
            return self.payload
        return self.prefix + b"".join(c.serialize() for c in self.children)

    def serialize(self):
        body = self.body()
        size = 8 + len(body)
        if size > 0xFFFFFFFF:
            return struct.pack(">I4sQ", 1, self.type, size + 8) + body
        return struct.pack(">I4s", size, self.type) + body

    def find(self, btype):
        for c in self.children or []:
            if c.type == btype:
                return c
        return None

    def find_all(self, btype):
        return [c for c in (self.children or []) if c.type == btype]

    def name(self):
        return self.type.decode("latin-1")


def parse_boxes(buf, start, end, expand=True):
    """Parse the boxes in buf[start:end].  Pure containers are expanded
    recursively when `expand` is set; everything else is a leaf."""
    boxes = []
    pos = start
    while pos < end:
        if end - pos < 8:
            raise CencError("truncated box header at offset %d" % pos)
        size, btype = struct.unpack_from(">I4s", buf, pos)
        header = 8
        if size == 1:
            if end - pos < 16:
                raise CencError("truncated largesize header at offset %d" % pos)
            (size,) = struct.unpack_from(">Q", buf, pos + 8)
            header = 16
        elif size == 0:  # box extends to the end of its container / file
            size = end - pos
        if size < header or pos + size > end:
            raise CencError("box '%s' at offset %d has bad size %d (room %d)"
                            % (btype.decode("latin-1"), pos, size, end - pos))
        box = Box(btype, offset=pos, header_size=header)
        if expand and btype in PURE_CONTAINERS:
            box.children = parse_boxes(buf, pos + header, pos + size)
        else:
            box.payload = bytes(buf[pos + header:pos + size])
        boxes.append(box)
        pos += size
    return boxes


def full_box(payload):
    """(version, flags) of a FullBox payload (ISO/IEC 14496-12 section 4.2)."""
    if len(payload) < 4:
        raise CencError("full box too short")
    return payload[0], int.from_bytes(payload[1:4], "big")


class Reader:
    """Sequential big-endian reader over a bytes object."""

    def __init__(self, data, pos=0, what="box"):
        self.data = data
        self.pos = pos
        self.what = what

    def take(self, n):
        if self.pos + n > len(self.data):
            raise CencError("%s is truncated (wanted %d bytes at %d of %d)"
                            % (self.what, n, self.pos, len(self.data)))
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack(">H", self.take(2))[0]

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def s32(self):
        return struct.unpack(">i", self.take(4))[0]

    def u64(self):
        return struct.unpack(">Q", self.take(8))[0]

    def left(self):
        return len(self.data) - self.pos


def parse_hex(text, length, what):
    clean = text.strip().replace("-", "").lower()
    if clean.startswith("0x"):
        clean = clean[2:]
    try:
        raw = bytes.fromhex(clean)
    except ValueError:
        raise CencError("%s %r is not hex" % (what, text))
    if len(raw) != length:
        raise CencError("%s %r must be %d bytes, got %d" % (what, text, length, len(raw)))
    return raw


# ---------------------------------------------------------------------------
# Protection boxes
# ---------------------------------------------------------------------------

class CryptParams:
    """The encryption parameters that apply to a sample: from 'tenc'
    (section 8.2) or from a 'seig' sample group entry (section 6), which carry
    the same fields."""

    def __init__(self, version, crypt, skip, is_protected, iv_size, kid, constant_iv):
        self.version = version
        self.crypt_byte_block = crypt
        self.skip_byte_block = skip
        self.is_protected = is_protected
        self.iv_size = iv_size
        self.kid = kid
        self.constant_iv = constant_iv

    def to_json(self):
        return {
            "version": self.version,
            "default_isProtected": self.is_protected,
            "default_Per_Sample_IV_Size": self.iv_size,
            "default_KID": self.kid.hex(),
            "crypt_byte_block": self.crypt_byte_block,
            "skip_byte_block": self.skip_byte_block,
            "default_constant_IV_size": len(self.constant_iv) if self.constant_iv is not None else None,
            "default_constant_IV": self.constant_iv.hex() if self.constant_iv is not None else None,
        }


def read_crypt_fields(r, version):
    """The common tail of 'tenc' (section 8.2.2) and 'seig' (section 6):
        unsigned int(8) reserved;
        if (version == 0) unsigned int(8) reserved;
        else { unsigned int(4) crypt_byte_block; unsigned int(4) skip_byte_block; }
        unsigned int(8) isProtected;
        unsigned int(8) Per_Sample_IV_Size;
        unsigned int(8)[16] KID;
        if (isProtected == 1 && Per_Sample_IV_Size == 0) {
            unsigned int(8) constant_IV_size;
            unsigned int(8)[constant_IV_size] constant_IV;
        }
    """
    r.u8()
    pattern = r.u8()
    crypt, skip = (pattern >> 4, pattern & 0x0F) if version > 0 else (0, 0)
    is_protected = r.u8()
    iv_size = r.u8()
    kid = r.take(16)
    constant_iv = None
    if is_protected == 1 and iv_size == 0:
        civ_size = r.u8()
        constant_iv = r.take(civ_size)
    return CryptParams(version, crypt, skip, is_protected, iv_size, kid, constant_iv)


def parse_tenc(payload):
    version, _ = full_box(payload)
    return read_crypt_fields(Reader(payload, 4, "tenc"), version)


def parse_seig(data):
    # The 'seig' entry has no version of its own; the pattern nibbles are
    # always present there (written as 0 when no pattern applies).
    return read_crypt_fields(Reader(data, 0, "seig entry"), 1)


def parse_pssh(payload):
    """Section 8.1.1: SystemID, then for version > 0 a KID list, then Data."""
    version, _ = full_box(payload)
    r = Reader(payload, 4, "pssh")
    system_id = r.take(16)
    kids = []
    if version > 0:
        for _ in range(r.u32()):
            kids.append(r.take(16).hex())
    data_size = r.u32()
    r.take(data_size)
    return {"system_id": format_uuid(system_id), "version": version, "kids": kids, "data_size": data_size}


def format_uuid(raw):
    h = raw.hex()
    return "%s-%s-%s-%s-%s" % (h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])


def parse_sgpd_seig(payload):
    """ISO/IEC 14496-12 section 8.9.3 SampleGroupDescriptionBox carrying 'seig'
    entries.  Returns None for other grouping types."""
    version, _ = full_box(payload)
    r = Reader(payload, 4, "sgpd")
    grouping_type = r.take(4)
    if grouping_type != b"seig":
        return None
    default_length = 0
    if version == 1:
        default_length = r.u32()
    if version >= 2:
        r.u32()  # default_sample_description_index
    entries = []
    for _ in range(r.u32()):
        length = default_length
        if version == 1 and default_length == 0:
            length = r.u32()
        if length:
            entries.append(parse_seig(r.take(length)))
        else:  # version 0: the entry's length follows from its contents
            entries.append(read_crypt_fields(r, 1))
    return entries


def parse_sbgp_seig(payload):
    """ISO/IEC 14496-12 section 8.9.2 SampleToGroupBox; returns a list of
    (sample_count, group_description_index) for grouping type 'seig', or None."""
    version, _ = full_box(payload)
    r = Reader(payload, 4, "sbgp")
    grouping_type = r.take(4)
    if grouping_type != b"seig":
        return None
    if version == 1:
        r.u32()  # grouping_type_parameter
    return [(r.u32(), r.u32()) for _ in range(r.u32())]


def is_seig_group_box(box):
    return box.type in (b"sbgp", b"sgpd") and len(box.payload) >= 8 and box.payload[4:8] == b"seig"


# ---------------------------------------------------------------------------
# Init segment model
# ---------------------------------------------------------------------------

NAL_CODECS = {b"avc1": "avc", b"avc3": "avc", b"hvc1": "hevc", b"hev1": "hevc"}


class SampleEntry:
    def __init__(self, index, box):
        self.index = index            # 1-based, as in tfhd / trex
        self.box = box
        self.format = box.type        # as stored ('encv', 'avc1', ...)
        self.original_format = box.type
        self.protected = False
        self.scheme_type = None
        self.scheme_version = None
        self.tenc = None
        self.nal_length_size = None
        self.codec = None

    def to_json(self):
        out = {
            "index": self.index,
            "format": self.format.decode("latin-1"),
            "original_format": self.original_format.decode("latin-1"),
            "protected": self.protected,
        }
        if self.protected:
            out["scheme_type"] = self.scheme_type.decode("latin-1") if self.scheme_type else None
            out["scheme_version"] = "0x%08x" % self.scheme_version if self.scheme_version is not None else None
            out["tenc"] = self.tenc.to_json() if self.tenc else None
        if self.nal_length_size:
            out["nal_length_size"] = self.nal_length_size
        return out


class Track:
    def __init__(self, track_id, handler, trak, stsd):
        self.track_id = track_id
        self.handler = handler
        self.trak = trak
        self.stsd = stsd
        self.entries = []
        self.trex = None              # Box
        self.stbl_seig = []           # 'seig' entries of an sgpd in stbl


def expand_sample_entries(stsd, buf, handler):
    """Turn the stsd leaf into a container: prefix = FullBox header + entry
    count, children = sample entries.  Visual and audio sample entries are
    themselves expanded so their 'sinf' child can be found and removed."""
    version, _ = full_box(stsd.payload)
    count = struct.unpack_from(">I", stsd.payload, 4)[0]
    start = stsd.payload_offset + 8
    end = stsd.offset + stsd.header_size + len(stsd.payload)
    entries = parse_boxes(buf, start, end, expand=False)
    if len(entries) != count:
        raise CencError("stsd says %d entries but holds %d" % (count, len(entries)))
    for e in entries:
        fixed = None
        if e.type == b"encv" or handler == VISUAL_HANDLER:
            fixed = VISUAL_ENTRY_FIXED
        elif e.type == b"enca" or handler == AUDIO_HANDLER:
            fixed = AUDIO_ENTRY_FIXED
            if version == 0 and len(e.payload) >= 10:
                # In a version 0 stsd, a non-zero entry version is a QuickTime
                # sound description with extra fields (ISO's AudioSampleEntryV1
                # only appears in a version 1 stsd and keeps the 28 bytes).
                qt_version = struct.unpack_from(">H", e.payload, 8)[0]
                fixed += {1: 16, 2: 36}.get(qt_version, 0)
        elif e.type in (b"encs", b"enct", b"encm"):
            raise CencError("protected sample entry '%s' outside a video/audio track is not supported" % e.name())
        if fixed is not None:
            if len(e.payload) < fixed:
                raise CencError("sample entry '%s' is too short" % e.name())
            e.prefix = e.payload[:fixed]
            e.children = parse_boxes(buf, e.payload_offset + fixed, e.payload_offset + len(e.payload))
            e.payload = b""
    stsd.prefix = stsd.payload[:8]
    stsd.children = entries
    stsd.payload = b""
    return version


def describe_entry(index, box):
    entry = SampleEntry(index, box)
    sinf = box.find(b"sinf") if box.children is not None else None
    if sinf is not None:
        # ISO/IEC 14496-12 section 8.12: sinf = frma (original format), schm, schi.
        entry.protected = True
        frma = sinf.find(b"frma")
        if frma is None or len(frma.payload) != 4:
            raise CencError("sample entry '%s' has a sinf without a valid frma" % box.name())
        entry.original_format = frma.payload
        schm = sinf.find(b"schm")
        if schm is not None:
            r = Reader(schm.payload, 4, "schm")
            entry.scheme_type = r.take(4)
            entry.scheme_version = r.u32()
        schi = sinf.find(b"schi")
        tenc = schi.find(b"tenc") if schi is not None else None
        if tenc is not None:
            entry.tenc = parse_tenc(tenc.payload)
    elif box.type in (b"encv", b"enca"):
        raise CencError("protected sample entry '%s' has no sinf" % box.name())
    # Codec configuration for the NAL/OBU checks.
    if box.children is not None:
        if entry.original_format in NAL_CODECS:
            entry.codec = NAL_CODECS[entry.original_format]
            if entry.codec == "avc":
                cfg = box.find(b"avcC")
                # ISO/IEC 14496-15 5.3.3.1: byte 4 = 111111b + lengthSizeMinusOne(2)
                if cfg is not None and len(cfg.payload) >= 5:
                    entry.nal_length_size = (cfg.payload[4] & 3) + 1
            else:
                cfg = box.find(b"hvcC")
                # ISO/IEC 14496-15 8.3.3.1: byte 21 = ... + lengthSizeMinusOne(2)
                if cfg is not None and len(cfg.payload) >= 22:
                    entry.nal_length_size = (cfg.payload[21] & 3) + 1
        elif entry.original_format == b"av01":
            entry.codec = "av1"
    return entry


class Init:
    def __init__(self, path, buf):
        self.path = path
        self.buf = buf
        self.boxes = parse_boxes(buf, 0, len(buf))
        self.moov = next((b for b in self.boxes if b.type == b"moov"), None)
        if self.moov is None:
            raise CencError("%s: no moov box (is this an init segment?)" % path)
        self.tracks = {}
        self.pssh = [parse_pssh(b.payload) for b in self.moov.find_all(b"pssh")]
        for trak in self.moov.find_all(b"trak"):
            track = self._read_trak(trak)
            self.tracks[track.track_id] = track
        mvex = self.moov.find(b"mvex")
        for trex in (mvex.find_all(b"trex") if mvex else []):
            tid = struct.unpack_from(">I", trex.payload, 4)[0]
            if tid in self.tracks:
                self.tracks[tid].trex = trex
        # Fragments stored in the same file as the moov (single-file input).
        self.inline_fragments = any(b.type == b"moof" for b in self.boxes)

    def _read_trak(self, trak):
        tkhd = trak.find(b"tkhd")
        version, _ = full_box(tkhd.payload)
        track_id = struct.unpack_from(">I", tkhd.payload, 20 if version == 1 else 12)[0]
        mdia = trak.find(b"mdia")
        hdlr = mdia.find(b"hdlr")
        handler = hdlr.payload[8:12]
        stbl = mdia.find(b"minf").find(b"stbl")
        stsd = stbl.find(b"stsd")
        expand_sample_entries(stsd, self.buf, handler)
        track = Track(track_id, handler, trak, stsd)
        track.entries = [describe_entry(i + 1, e) for i, e in enumerate(stsd.children)]
        for sgpd in stbl.find_all(b"sgpd"):
            seig = parse_sgpd_seig(sgpd.payload)
            if seig:
                track.stbl_seig = seig
        stsz = stbl.find(b"stsz")
        if stsz is not None and any(e.protected for e in track.entries):
            count = struct.unpack_from(">I", stsz.payload, 8)[0]
            if count:
                raise CencError("track %d has %d protected samples in moov (not fragmented); "
                                "only fragmented MP4 is supported" % (track_id, count))
        return track

    def to_json(self):
        return [
            {"track_id": t.track_id, "handler": t.handler.decode("latin-1"),
             "sample_entries": [e.to_json() for e in t.entries]}
            for t in self.tracks.values()
        ]


# ---------------------------------------------------------------------------
# Fragment model (moof + mdat)
# ---------------------------------------------------------------------------

TFHD_BASE_DATA_OFFSET = 0x000001
TFHD_SAMPLE_DESCRIPTION_INDEX = 0x000002
TFHD_DEFAULT_DURATION = 0x000008
TFHD_DEFAULT_SIZE = 0x000010
TFHD_DEFAULT_FLAGS = 0x000020
TFHD_DEFAULT_BASE_IS_MOOF = 0x020000

TRUN_DATA_OFFSET = 0x000001
TRUN_FIRST_SAMPLE_FLAGS = 0x000004
TRUN_DURATION = 0x000100
TRUN_SIZE = 0x000200
TRUN_FLAGS = 0x000400
TRUN_CTO = 0x000800

SENC_USE_SUBSAMPLES = 0x2  # section 7.2.2: UseSubSampleEncryption


class SencEntry:
    def __init__(self, iv, subsamples):
        self.iv = iv                  # bytes (may be empty with a constant IV)
        self.subsamples = subsamples  # list of (clear, protected) or None


class Traf:
    """What one traf says about its samples, with absolute positions in the
    segment buffer."""

    def __init__(self, box, moof, buf, init, implicit_base):
        self.box = box
        tfhd = box.find(b"tfhd")
        if tfhd is None:
            raise CencError("traf without tfhd")
        _, flags = full_box(tfhd.payload)
        self.tfhd = tfhd
        self.tfhd_flags = flags
        r = Reader(tfhd.payload, 4, "tfhd")
        self.track_id = r.u32()
        self.base_data_offset = r.u64() if flags & TFHD_BASE_DATA_OFFSET else None
        self.sdi_pos = r.pos if flags & TFHD_SAMPLE_DESCRIPTION_INDEX else None
        self.sdi = r.u32() if flags & TFHD_SAMPLE_DESCRIPTION_INDEX else None
        if flags & TFHD_DEFAULT_DURATION:
            r.u32()
        default_size = r.u32() if flags & TFHD_DEFAULT_SIZE else None

        self.track = init.tracks.get(self.track_id)
        if self.track is None:
            raise CencError("fragment refers to track %d, which the init does not have" % self.track_id)
        trex_sdi, trex_size = 1, 0
        if self.track.trex is not None:
            # ISO/IEC 14496-12 8.8.3: track_ID, default_sample_description_index,
            # default_sample_duration, default_sample_size, default_sample_flags
            _, trex_sdi, _, trex_size, _ = struct.unpack_from(">IIIII", self.track.trex.payload, 4)
        if self.sdi is None:
            self.sdi = trex_sdi
        if not 1 <= self.sdi <= len(self.track.entries):
            raise CencError("track %d: sample_description_index %d out of range" % (self.track_id, self.sdi))
        self.entry = self.track.entries[self.sdi - 1]
        if default_size is None:
            default_size = trex_size

        if self.base_data_offset is not None:
            raise CencError("tfhd base_data_offset is not supported (expected default-base-is-moof)")
        # ISO/IEC 14496-12 8.8.7.1: with default-base-is-moof the base is the
        # moof start; without it (and no explicit base) the first traf's base
        # is the moof start and a later traf's is the end of the previous
        # traf's data.
        self.default_base_is_moof = bool(flags & TFHD_DEFAULT_BASE_IS_MOOF)
        base = moof.offset if self.default_base_is_moof else implicit_base

        # Samples from each trun (ISO/IEC 14496-12 8.8.8).
        self.truns = []
        self.samples = []   # (absolute offset, size)
        for trun in box.find_all(b"trun"):
            _, tflags = full_box(trun.payload)
            r = Reader(trun.payload, 4, "trun")
            count = r.u32()
            if not tflags & TRUN_DATA_OFFSET:
                raise CencError("trun without data_offset is not supported")
            data_offset = r.s32()
            self.truns.append(trun)
            if tflags & TRUN_FIRST_SAMPLE_FLAGS:
                r.u32()
            pos = base + data_offset
            for _ in range(count):
                if tflags & TRUN_DURATION:
                    r.u32()
                size = r.u32() if tflags & TRUN_SIZE else default_size
                if tflags & TRUN_FLAGS:
                    r.u32()
                if tflags & TRUN_CTO:
                    r.u32()
                self.samples.append((pos, size))
                pos += size
            base = pos
        self.data_end = base

        # Per-sample crypt parameters: tenc defaults, overridden by 'seig'
        # sample groups (section 6).  None means "not protected".
        default = self.entry.tenc if self.entry.protected else None
        self.params = [default] * len(self.samples)
        self.seig_kids = []
        local_seig = []
        for sgpd in box.find_all(b"sgpd"):
            entries = parse_sgpd_seig(sgpd.payload)
            if entries:
                local_seig = entries
        self.seig_kids = sorted({e.kid.hex() for e in local_seig})
        for sbgp in box.find_all(b"sbgp"):
            runs = parse_sbgp_seig(sbgp.payload)
            if runs is None or default is None:
                continue
            i = 0
            for count, index in runs:
                for _ in range(count):
                    if i >= len(self.params):
                        raise CencError("sbgp 'seig' maps more samples than the traf has")
                    if index == 0:
                        p = default
                    elif index > 0x10000:  # fragment-local group description (14496-12 8.9.4)
                        if index - 0x10000 > len(local_seig):
                            raise CencError("sbgp 'seig' index %d has no traf sgpd entry" % index)
                        p = local_seig[index - 0x10001]
                    else:
                        if index > len(self.track.stbl_seig):
                            raise CencError("sbgp 'seig' index %d has no stbl sgpd entry" % index)
                        p = self.track.stbl_seig[index - 1]
                    self.params[i] = p
                    i += 1

        # Sample encryption box (section 7.2).
        self.senc_box = box.find(b"senc")
        self.saiz_box = box.find(b"saiz")
        self.saio_box = box.find(b"saio")
        self.senc_flags = None
        self.senc_entries = None
        self.senc_first_entry_offset = None
        self.senc_sample_count = None
        self.senc_entry_sizes = None
        if self.senc_box is not None:
            self._parse_senc()

    def _parse_senc(self):
        """section 7.2.2:
            unsigned int(32) sample_count;
            { unsigned int(Per_Sample_IV_Size*8) InitializationVector;
              if (flags & 0x000002) {
                  unsigned int(16) subsample_count;
                  { unsigned int(16) BytesOfClearData;
                    unsigned int(32) BytesOfProtectedData; } [subsample_count]
              } } [sample_count]
        The IV size is not in the box: it comes from the sample's tenc/seig."""
        _, flags = full_box(self.senc_box.payload)
        self.senc_flags = flags
        r = Reader(self.senc_box.payload, 4, "senc")
        count = r.u32()
        self.senc_first_entry_offset = self.senc_box.payload_offset + r.pos
        self.senc_sample_count = count
        entries = []
        self.senc_entry_sizes = []
        for i in range(count):
            start = r.pos
            p = self.params[i] if i < len(self.params) else None
            iv_size = p.iv_size if p is not None and p.is_protected else 0
            iv = r.take(iv_size)
            subsamples = None
            if flags & SENC_USE_SUBSAMPLES:
                subsamples = [(r.u16(), r.u32()) for _ in range(r.u16())]
            entries.append(SencEntry(iv, subsamples))
            self.senc_entry_sizes.append(r.pos - start)
        if r.left():
            raise CencError("senc has %d bytes left over after %d entries (IV size mismatch?)"
                            % (r.left(), count))
        self.senc_entries = entries


class Fragment:
    def __init__(self, source, index, moof, mdat, buf, init):
        self.source = source
        self.index = index
        self.moof = moof
        self.mdat = mdat
        self.buf = buf
        mfhd = moof.find(b"mfhd")
        self.sequence_number = struct.unpack_from(">I", mfhd.payload, 4)[0] if mfhd else None
        self.trafs = []
        implicit_base = moof.offset
        for t in moof.find_all(b"traf"):
            self.trafs.append(Traf(t, moof, buf, init, implicit_base))
            implicit_base = self.trafs[-1].data_end
        mdat_start = mdat.payload_offset
        mdat_end = mdat.offset + mdat.header_size + len(mdat.payload)
        for traf in self.trafs:
            for pos, size in traf.samples:
                if pos < mdat_start or pos + size > mdat_end:
                    raise CencError("%s: sample at %d+%d lies outside the mdat [%d, %d)"
                                    % (source, pos, size, mdat_start, mdat_end))


def read_fragments(path, buf, boxes, init, first_index, dropped=None):
    """Pair every moof with the mdat that follows it.  Other top-level boxes
    (styp, sidx, prft, emsg, mfra, ...) are not carried to the output; their
    types are counted in `dropped`."""
    frags = []
    pending = None
    for b in boxes:
        if b.type not in (b"moof", b"mdat") and dropped is not None:
            dropped[b.name()] = dropped.get(b.name(), 0) + 1
        if b.type == b"moof":
            if pending is not None:
                raise CencError("%s: moof at %d has no mdat" % (path, pending.offset))
            pending = b
        elif b.type == b"mdat" and pending is not None:
            frags.append(Fragment(path, first_index + len(frags), pending, b, buf, init))
            pending = None
    if pending is not None:
        raise CencError("%s: moof at %d has no mdat" % (path, pending.offset))
    return frags


def load(init_path, seg_paths):
    with open(init_path, "rb") as f:
        init_buf = f.read()
    init = Init(init_path, init_buf)
    sources = []  # (path, fragments)
    init.dropped = {}
    idx = 0
    if init.inline_fragments:
        after = init.boxes[init.boxes.index(init.moov) + 1:]
        frags = read_fragments(init_path, init_buf, after, init, idx, init.dropped)
        idx += len(frags)
        sources.append((init_path, frags))
    for p in seg_paths:
        with open(p, "rb") as f:
            buf = f.read()
        boxes = parse_boxes(buf, 0, len(buf))
        frags = read_fragments(p, buf, boxes, init, idx, init.dropped)
        if not frags:
            raise CencError("%s: no moof/mdat found" % p)
        idx += len(frags)
        sources.append((p, frags))
    return init, sources


# ---------------------------------------------------------------------------
# Decryption of one sample
# ---------------------------------------------------------------------------

def sample_ranges(size, subsamples):
    """(start, length) of the protected byte ranges of a sample.  Each
    subsample is BytesOfClearData followed by BytesOfProtectedData
    (section 7.2 and 9.5 subsample encryption); no subsamples means the
    whole sample is one protected range."""
    if subsamples is None or len(subsamples) == 0:
        return [(0, size)]
    ranges = []
    pos = 0
    for clear, protected in subsamples:
        pos += clear
        ranges.append((pos, protected))
        pos += protected
    if pos != size:
        raise CencError("subsamples cover %d bytes but the sample has %d" % (pos, size))
    return ranges


def decrypt_cenc(key, iv, data, ranges):
    """'cenc' scheme (section 10.1), AES-CTR mode (section 9.3).  The counter
    block is the IV, an 8-byte IV taking the most significant half with the
    lower 8 bytes zero (section 9.2/9.3); the block counter is incremented
    as a 128-bit big-endian integer.  One keystream runs over the
    concatenation of all protected ranges of the sample: it does not restart
    per subsample, and a range that ends mid-block continues the keystream in
    the next range."""
    if len(iv) not in (8, 16):
        raise CencError("cenc IV must be 8 or 16 bytes, got %d" % len(iv))
    counter = iv + bytes(16 - len(iv))
    ctx = Cipher(algorithms.AES(key), modes.CTR(counter)).decryptor()
    for start, length in ranges:
        data[start:start + length] = ctx.update(bytes(data[start:start + length]))


def decrypt_cbcs(key, iv, data, ranges, crypt, skip):
    """'cbcs' scheme (section 10.4), AES-CBC mode (9.4) with pattern
    encryption (9.6).

    - The CBC chain restarts with the (constant) IV at the start of every
      protected range, i.e. every subsample.
    - Within a range, 16-byte blocks follow the pattern: crypt_byte_block
      encrypted, then skip_byte_block left clear, repeated.  The CBC chain
      links only the encrypted blocks (the skipped blocks are not part of it).
    - 9.6.1: "If the last Block pattern in a Subsample is incomplete, the
      partial pattern SHALL be followed until truncated by the
      BytesOfProtectedData size, and any partial crypt_byte_block SHALL remain
      unencrypted": a final run of fewer than crypt_byte_block whole blocks
      stays clear.  (Read this way by ffmpeg's mov demuxer too; it only makes
      a difference for crypt_byte_block > 1, e.g. 5:5 or 10:0, not 1:9 or 1:0.)
    - A trailing partial block (< 16 bytes) is never encrypted.
    - Pattern 0:0 means no pattern: every whole 16-byte block of the range is
      encrypted (whole-block full sample encryption, 9.7, when there are no
      subsamples)."""
    if len(iv) != 16:
        raise CencError("cbcs IV must be 16 bytes, got %d" % len(iv))
    for start, length in ranges:
        ctx = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        blocks = length // 16
        if crypt == 0 and skip == 0:
            n = blocks * 16
            data[start:start + n] = ctx.update(bytes(data[start:start + n]))
            continue
        b = 0
        while b + crypt <= blocks:
            s = start + b * 16
            data[s:s + crypt * 16] = ctx.update(bytes(data[s:s + crypt * 16]))
            b += crypt + skip


def decrypt_sample(scheme, params, key, entry, data, size):
    if entry is not None and entry.subsamples is not None and len(entry.subsamples) > 0:
        ranges = sample_ranges(size, entry.subsamples)
    else:
        ranges = [(0, size)]
    iv = entry.iv if entry is not None and entry.iv else params.constant_iv
    if iv is None or len(iv) == 0:
        raise CencError("no IV for a protected sample (no per-sample IV and no constant IV)")
    if scheme == b"cenc":
        decrypt_cenc(key, iv, data, ranges)
    elif scheme == b"cbcs":
        decrypt_cbcs(key, iv, data, ranges, params.crypt_byte_block, params.skip_byte_block)
    else:
        raise CencError("protection scheme '%s' is not supported (cenc and cbcs are)"
                        % scheme.decode("latin-1"))


# ---------------------------------------------------------------------------
# decrypt command
# ---------------------------------------------------------------------------

def clear_init(init):
    """Rewrite the moov into its clear form.  Returns {track_id: {old sdi: new sdi}}."""
    sdi_maps = {}
    init.moov.children = [c for c in init.moov.children if c.type != b"pssh"]
    for track in init.tracks.values():
        clear_formats = {e.format: e for e in track.entries if not e.protected}
        kept = []        # sample entry boxes of the new stsd
        index_map = {}   # old 1-based index -> new 1-based index
        for e in track.entries:
            if e.protected:
                if e.original_format in clear_formats:
                    continue  # a clear-lead twin exists: keep only the clear entry
                # Unprotected form (ISO/IEC 14496-12 8.12): the sample entry type
                # goes back to frma's original format and the sinf is removed.
                e.box.type = e.original_format
                e.box.children = [c for c in e.box.children if c.type != b"sinf"]
            kept.append(e.box)
            index_map[e.index] = len(kept)
        for e in track.entries:
            if e.index not in index_map:
                index_map[e.index] = index_map[clear_formats[e.original_format].index]
        track.stsd.children = kept
        track.stsd.prefix = track.stsd.prefix[:4] + struct.pack(">I", len(kept))
        sdi_maps[track.track_id] = index_map
        # Drop sample-table-level encryption boxes (often empty ones in an init).
        stbl = track.trak.find(b"mdia").find(b"minf").find(b"stbl")
        stbl.children = [c for c in stbl.children
                         if c.type not in (b"senc", b"saiz", b"saio") and not is_seig_group_box(c)]
        if track.trex is not None:
            p = bytearray(track.trex.payload)
            old = struct.unpack_from(">I", p, 8)[0]
            if old in index_map:
                struct.pack_into(">I", p, 8, index_map[old])
            track.trex.payload = bytes(p)
    return sdi_maps


def clear_fragment(frag, keys, sdi_maps, stats):
    """Decrypt one moof+mdat; returns the bytes of the clear moof+mdat."""
    mdat_data = bytearray(frag.mdat.payload)
    mdat_base = frag.mdat.payload_offset
    for traf in frag.trafs:
        scheme = traf.entry.scheme_type
        protected_any = any(p is not None and p.is_protected for p in traf.params)
        if traf.senc_entries is None:
            if traf.saiz_box is not None or traf.saio_box is not None:
                raise CencError("%s: fragment %d has saiz/saio but no senc; auxiliary information "
                                "outside senc is not supported" % (frag.source, frag.index))
            if protected_any and not all(p is None or not p.is_protected or
                                         (p.iv_size == 0 and p.constant_iv) for p in traf.params):
                raise CencError("%s: fragment %d uses protected sample description %d with "
                                "per-sample IVs but has no senc" % (frag.source, frag.index, traf.sdi))
        elif traf.senc_sample_count != len(traf.samples):
            raise CencError("%s: fragment %d: senc has %d entries for %d samples"
                            % (frag.source, frag.index, traf.senc_sample_count, len(traf.samples)))
        for i, (pos, size) in enumerate(traf.samples):
            p = traf.params[i]
            if p is None or not p.is_protected:
                stats["clear_samples"] += 1
                continue
            key = keys.get(p.kid)
            if key is None:
                raise CencError("no key for KID %s (track %d, %s); pass --key %s:KEYHEX"
                                % (p.kid.hex(), traf.track_id, frag.source, p.kid.hex()))
            entry = traf.senc_entries[i] if traf.senc_entries is not None else None
            view = memoryview(mdat_data)[pos - mdat_base:pos - mdat_base + size]
            sample = bytearray(view)
            decrypt_sample(scheme, p, key, entry, sample, size)
            view[:] = sample
            stats["decrypted_samples"] += 1
        # Strip the protection boxes from the traf.
        traf.box.children = [c for c in traf.box.children
                             if c.type not in (b"senc", b"saiz", b"saio") and not is_seig_group_box(c)]
        new_sdi = sdi_maps[traf.track_id].get(traf.sdi, traf.sdi)
        if traf.sdi_pos is not None and new_sdi != traf.sdi:
            p = bytearray(traf.tfhd.payload)
            struct.pack_into(">I", p, traf.sdi_pos, new_sdi)
            traf.tfhd.payload = bytes(p)
    frag.moof.children = [c for c in frag.moof.children if c.type != b"pssh"]

    # The moof shrank: move every trun's data_offset so it points at the same
    # byte of the mdat that now follows the smaller moof directly.
    new_moof_size = len(frag.moof.serialize())
    old_mdat_rel = frag.mdat.offset - frag.moof.offset          # mdat start, relative to moof
    for traf in frag.trafs:
        for trun in traf.truns:
            p = bytearray(trun.payload)
            old = struct.unpack_from(">i", p, 8)[0]
            struct.pack_into(">i", p, 8, old - old_mdat_rel + new_moof_size)
            trun.payload = bytes(p)
    mdat = Box(b"mdat", payload=bytes(mdat_data))
    return frag.moof.serialize() + mdat.serialize()


def cmd_decrypt(args):
    keys = {}
    for spec in args.key:
        if ":" not in spec:
            raise CencError("--key must be KIDHEX:KEYHEX, got %r" % spec)
        kid, key = spec.split(":", 1)
        keys[parse_hex(kid, 16, "KID")] = parse_hex(key, 16, "key")
    init, sources = load(args.init, args.segments)
    for t in init.tracks.values():
        for e in t.entries:
            if e.protected and e.scheme_type not in (b"cenc", b"cbcs"):
                raise CencError("track %d uses scheme '%s'; only cenc and cbcs are supported"
                                % (t.track_id, (e.scheme_type or b"????").decode("latin-1")))
            if e.protected and e.tenc is None:
                raise CencError("track %d: protected entry without tenc" % t.track_id)
    stats = {"decrypted_samples": 0, "clear_samples": 0, "fragments": 0}
    # Fragments are parsed before the init is rewritten (they need its model).
    sdi_maps = clear_init(init)
    out = bytearray()
    ftyp = next((b for b in init.boxes if b.type == b"ftyp"), None)
    if ftyp is not None:
        out += ftyp.serialize()
    out += init.moov.serialize()
    for _, frags in sources:
        for frag in frags:
            out += clear_fragment(frag, keys, sdi_maps, stats)
            stats["fragments"] += 1
    with open(args.output, "wb") as f:
        f.write(out)
    print("wrote %s: %d fragments, %d samples decrypted, %d clear samples"
          % (args.output, stats["fragments"], stats["decrypted_samples"], stats["clear_samples"]),
          file=sys.stderr)
    if init.dropped:
        print("not copied: " + ", ".join("%s x%d" % kv for kv in sorted(init.dropped.items())),
              file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------
# inspect command
# ---------------------------------------------------------------------------

def nal_units(sample, length_size):
    """Split a length-prefixed sample (ISO/IEC 14496-15) into (start, total
    length including the length field).  Returns (units, error)."""
    units = []
    pos = 0
    while pos < len(sample):
        if pos + length_size > len(sample):
            return units, "NAL length field at %d runs past the sample end" % pos
        n = int.from_bytes(sample[pos:pos + length_size], "big")
        if n == 0 or pos + length_size + n > len(sample):
            return units, ("NAL at %d claims %d bytes, past the sample end (%d); "
                           "length field encrypted?" % (pos, n, len(sample)))
        units.append((pos, length_size + n))
        pos += length_size + n
    return units, None


def leb128(data, pos):
    value = 0
    for i in range(8):
        if pos + i >= len(data):
            return None, 0
        b = data[pos + i]
        value |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            return value, i + 1
    return None, 0


AV1_OBU_TILE_GROUP = 4
AV1_OBU_FRAME = 6
AV1_OBU_TILE_LIST = 8


def obu_units(sample):
    """Split an AV1 sample (low-overhead bitstream format) into OBUs:
    (start, header length incl. size field, total length, type).  Encrypted
    data never overlaps OBU headers if the sample is valid, so this walks the
    ciphertext directly."""
    units = []
    pos = 0
    while pos < len(sample):
        h = sample[pos]
        if h & 0x80:
            return units, "OBU at %d has forbidden bit set (header encrypted?)" % pos
        obu_type = (h >> 3) & 0xF
        ext = (h >> 2) & 1
        has_size = (h >> 1) & 1
        header = 1 + ext
        if has_size:
            size, n = leb128(sample, pos + header)
            if size is None:
                return units, "OBU at %d has a bad leb128 size" % pos
            header += n
            total = header + size
        else:
            total = len(sample) - pos
        if pos + total > len(sample):
            return units, "OBU at %d runs past the sample end (size field encrypted?)" % pos
        units.append((pos, header, total, obu_type))
        pos += total
    return units, None


def clear_intervals(size, subsamples):
    out = []
    pos = 0
    for clear, protected in subsamples:
        out.append((pos, pos + clear))
        pos += clear + protected
    return out


def in_clear(intervals, start, end):
    return any(a <= start and end <= b for a, b in intervals)


def check_sample_structure(entry, sample, senc_entry, params):
    """Codec-aware subsample checks.  Returns a list of problems."""
    problems = []
    size = len(sample)
    subs = senc_entry.subsamples if senc_entry is not None else None
    if not subs:
        return ["no subsample map: the whole sample is encrypted, including %s headers"
                % ("NAL" if entry.codec != "av1" else "OBU")]
    total = sum(c + p for c, p in subs)
    if total != size:
        return ["subsamples sum to %d bytes but the sample has %d" % (total, size)]
    clear = clear_intervals(size, subs)
    if entry.codec in ("avc", "hevc"):
        ls = entry.nal_length_size
        # NAL unit header: 1 byte in H.264 (7.3.1), 2 bytes in HEVC (7.3.1.2).
        header = 1 if entry.codec == "avc" else 2
        units, err = nal_units(sample, ls)
        if err:
            problems.append(err)
        starts = {s for s, _ in units}
        ends = {s + n for s, n in units}
        # Subsample encryption of NAL structured video (section 9.5.2): each
        # NAL's length field and header must be clear...
        for s, n in units:
            if not in_clear(clear, s, s + min(n, ls + header)):
                problems.append("NAL at %d: length field + %d-byte header not in clear bytes" % (s, header))
        # ...and each subsample must span one or more whole NAL units.
        pos = 0
        for i, (c, p) in enumerate(subs):
            if err is None and (pos not in starts or (pos + c + p) not in ends):
                problems.append("subsample %d [%d, %d) does not start and end on NAL boundaries"
                                % (i, pos, pos + c + p))
            pos += c + p
    elif entry.codec == "av1":
        # AV1 Codec ISO Media File Format Binding, "Common Encryption" and
        # "General Subsample Encryption constraints": an OBU may span several
        # subsamples, so boundaries are not checked against OBUs; but all OBU
        # headers and obu_size fields are clear, only tile data (Tile Group
        # and Frame OBUs) is protected, 'cenc' protected ranges are whole
        # 16-byte blocks, and 'cbcs' uses pattern 1:9, 5:5 or 10:0.
        units, err = obu_units(sample)
        if err:
            problems.append(err)
        if entry.scheme_type == b"cenc":
            for i, (c, p) in enumerate(subs):
                if p % 16:
                    problems.append("subsample %d: BytesOfProtectedData %d is not a multiple of 16" % (i, p))
        elif entry.scheme_type == b"cbcs" and params is not None:
            pattern = (params.crypt_byte_block, params.skip_byte_block)
            if pattern not in ((1, 9), (5, 5), (10, 0)):
                problems.append("cbcs pattern %d:%d is not 1:9, 5:5 or 10:0" % pattern)
        for s, header, total, obu_type in units:
            if not in_clear(clear, s, s + header):
                problems.append("OBU at %d (type %d): header/size field not in clear bytes" % (s, obu_type))
            elif obu_type not in (AV1_OBU_TILE_GROUP, AV1_OBU_FRAME, AV1_OBU_TILE_LIST) \
                    and not in_clear(clear, s, s + total):
                # AV1-ISOBMFF: OBUs other than tile data are left unprotected.
                problems.append("OBU at %d (type %d) is not a tile OBU but has protected bytes" % (s, obu_type))
    return problems


def inspect_fragment(frag, expect_kid, nal_check, errors, warnings):
    rep = {"source": frag.source, "fragment": frag.index, "sequence_number": frag.sequence_number,
           "moof_offset": frag.moof.offset, "trafs": []}
    where = "%s fragment %d" % (frag.source, frag.index)
    for traf in frag.trafs:
        entry = traf.entry
        protected = [p for p in traf.params if p is not None and p.is_protected]
        t = {
            "track_id": traf.track_id,
            "sample_description_index": traf.sdi,
            "sample_entry": entry.format.decode("latin-1"),
            "trun_sample_count": len(traf.samples),
            "protected_samples": len(protected),
            "senc_sample_count": traf.senc_sample_count if traf.senc_box is not None else None,
            "senc_flags": traf.senc_flags,
            "seig_kids": traf.seig_kids,
            "clear": not protected,
            "codec_checked_samples": 0,
            "sample_problems": 0,
        }
        rep["trafs"].append(t)
        if not traf.default_base_is_moof:
            warnings.append("%s: tfhd without default-base-is-moof (CMAF requires it)" % where)
        if traf.senc_box is None:
            if traf.saiz_box is not None or traf.saio_box is not None:
                errors.append("%s: saiz/saio present without senc" % where)
            if protected and not all(p.iv_size == 0 and p.constant_iv for p in protected):
                errors.append("%s: %d protected samples but no senc (no IVs)" % (where, len(protected)))
            elif protected:
                warnings.append("%s: protected samples with a constant IV and no senc (whole-sample encryption)" % where)
            continue
        if traf.senc_sample_count != len(traf.samples):
            errors.append("%s: trun has %d samples but senc has %d entries"
                          % (where, len(traf.samples), traf.senc_sample_count))
        for kid in traf.seig_kids:
            if kid != expect_kid.hex():
                warnings.append("%s: seig KID %s differs from the expected KID" % (where, kid))
        # saiz (ISO/IEC 14496-12 8.7.8): one size per senc entry.
        if traf.saiz_box is None:
            errors.append("%s: senc without saiz" % where)
        else:
            version, flags = full_box(traf.saiz_box.payload)
            r = Reader(traf.saiz_box.payload, 4, "saiz")
            aux_type = None
            if flags & 1:
                aux_type = r.take(4).decode("latin-1")
                r.u32()
            default_size = r.u8()
            count = r.u32()
            sizes = [default_size] * count if default_size else list(r.take(count))
            t["saiz"] = {"aux_info_type": aux_type, "default_sample_info_size": default_size,
                         "sample_count": count}
            if count != traf.senc_sample_count:
                errors.append("%s: saiz sample_count %d != senc sample_count %d"
                              % (where, count, traf.senc_sample_count))
            elif sizes != traf.senc_entry_sizes:
                bad = next(i for i, (a, b) in enumerate(zip(sizes, traf.senc_entry_sizes)) if a != b)
                errors.append("%s: saiz size of sample %d is %d but its senc entry is %d bytes"
                              % (where, bad, sizes[bad], traf.senc_entry_sizes[bad]))
            if aux_type is not None and entry.scheme_type and aux_type != entry.scheme_type.decode("latin-1"):
                errors.append("%s: saiz aux_info_type '%s' != scheme '%s'"
                              % (where, aux_type, entry.scheme_type.decode("latin-1")))
        # saio (ISO/IEC 14496-12 8.7.9): offset of the first senc entry, relative
        # to the base data offset, which is the moof start here.
        if traf.saio_box is None:
            errors.append("%s: senc without saio" % where)
        else:
            version, flags = full_box(traf.saio_box.payload)
            r = Reader(traf.saio_box.payload, 4, "saio")
            if flags & 1:
                r.take(8)
            count = r.u32()
            offsets = [r.u64() if version == 1 else r.u32() for _ in range(count)]
            expected = traf.senc_first_entry_offset - frag.moof.offset
            t["saio"] = {"entry_count": count, "offsets": offsets, "expected_offset": expected}
            if count != 1:
                errors.append("%s: saio entry_count is %d, expected 1" % (where, count))
            elif offsets[0] != expected:
                errors.append("%s: saio offset %d does not point at the first senc entry (moof + %d)"
                              % (where, offsets[0], expected))
        # Per-sample checks.
        sample_problems = []
        checked = 0
        for i, (pos, size) in enumerate(traf.samples):
            p = traf.params[i]
            se = traf.senc_entries[i] if i < len(traf.senc_entries) else None
            if p is None or not p.is_protected or se is None:
                continue
            if se.subsamples:
                total = sum(c + q for c, q in se.subsamples)
                if total != size:
                    sample_problems.append("sample %d: subsamples sum to %d, sample is %d bytes" % (i, total, size))
                    continue
            if nal_check and entry.codec in ("avc", "hevc", "av1"):
                if entry.codec != "av1" and not entry.nal_length_size:
                    sample_problems.append("no avcC/hvcC NAL length size for the NAL check")
                    break
                sample = frag.buf[pos:pos + size]
                checked += 1
                for prob in check_sample_structure(entry, sample, se, p):
                    sample_problems.append("sample %d: %s" % (i, prob))
        t["codec_checked_samples"] = checked
        t["sample_problems"] = len(sample_problems)
        for prob in sample_problems[:20]:
            errors.append("%s track %d: %s" % (where, traf.track_id, prob))
        if len(sample_problems) > 20:
            errors.append("%s track %d: ... and %d more sample problems"
                          % (where, traf.track_id, len(sample_problems) - 20))
    return rep


def cmd_inspect(args):
    expect_kid = parse_hex(args.expect_kid, 16, "--expect-kid")
    errors, warnings = [], []
    init, sources = load(args.init, args.segments)
    report = {"init": args.init, "tracks": init.to_json(), "pssh": init.pssh}
    protected = [(t, e) for t in init.tracks.values() for e in t.entries if e.protected]
    if not protected:
        errors.append("no protected sample entry (encv/enca with sinf) in the init")
    for t, e in protected:
        report.setdefault("scheme", e.scheme_type.decode("latin-1") if e.scheme_type else None)
        report.setdefault("tenc", e.tenc.to_json() if e.tenc else None)
        where = "track %d entry %d" % (t.track_id, e.index)
        if e.scheme_type not in (b"cenc", b"cbcs"):
            errors.append("%s: scheme %r is not cenc or cbcs" % (where, e.scheme_type))
        if e.tenc is None:
            errors.append("%s: no tenc" % where)
            continue
        if e.tenc.kid != expect_kid:
            errors.append("%s: tenc KID %s differs from expected %s" % (where, e.tenc.kid.hex(), expect_kid.hex()))
        if e.tenc.is_protected != 1:
            warnings.append("%s: tenc default_isProtected is %d" % (where, e.tenc.is_protected))
        if e.scheme_type == b"cenc":
            # section 10.1: AES-CTR, 8- or 16-byte per-sample IVs, no pattern
            if e.tenc.iv_size not in (8, 16):
                errors.append("%s: cenc needs a Per_Sample_IV_Size of 8 or 16, got %d" % (where, e.tenc.iv_size))
        elif e.scheme_type == b"cbcs":
            # section 10.4: pattern in a version 1 tenc, 16-byte IVs
            if e.tenc.version < 1:
                errors.append("%s: cbcs needs tenc version 1 (pattern fields)" % where)
            if e.tenc.iv_size == 0 and (e.tenc.constant_iv is None or len(e.tenc.constant_iv) != 16):
                errors.append("%s: cbcs constant IV must be 16 bytes" % where)
            if e.tenc.iv_size not in (0, 16):
                errors.append("%s: cbcs IV size must be 16 (or 0 with a constant IV)" % where)
            if e.tenc.iv_size != 0:
                warnings.append("%s: cbcs with per-sample IVs instead of a constant IV" % where)
            if e.codec in ("avc", "hevc") and e.tenc.crypt_byte_block == 0 and e.tenc.skip_byte_block == 0:
                # section 10.4: NAL structured video uses subsample and pattern encryption
                errors.append("%s: cbcs video without a pattern (crypt_byte_block and skip_byte_block 0)" % where)
        if e.codec in ("avc", "hevc") and not e.nal_length_size:
            errors.append("%s: %s without a readable configuration record" % (where, e.original_format))
    report["segments"] = []
    for path, frags in sources:
        report["segments"].append({
            "file": path,
            "fragments": [inspect_fragment(f, expect_kid, args.nal_length_check, errors, warnings)
                          for f in frags],
        })
    report["warnings"] = warnings
    report["errors"] = errors
    report["ok"] = not errors
    print(json.dumps(report, indent=2))
    if errors:
        print("inspect: %d check(s) failed; first: %s" % (len(errors), errors[0]), file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("decrypt", help="write one clear fragmented MP4")
    d.add_argument("--key", action="append", required=True, metavar="KIDHEX:KEYHEX",
                   help="a content key and its KID (repeatable)")
    d.add_argument("-o", "--output", required=True, metavar="OUT.mp4")
    d.add_argument("init", metavar="INIT")
    d.add_argument("segments", nargs="*", metavar="SEG")
    i = sub.add_parser("inspect", help="print a JSON report and check the protection boxes")
    i.add_argument("--expect-kid", required=True, metavar="KIDHEX")
    i.add_argument("--nal-length-check", action="store_true",
                   help="check subsample maps against NAL units (AVC/HEVC) or OBUs (AV1)")
    i.add_argument("init", metavar="INIT")
    i.add_argument("segments", nargs="*", metavar="SEG")
    args = ap.parse_args(argv)
    try:
        if args.command == "decrypt":
            return cmd_decrypt(args)
        return cmd_inspect(args)
    except CencError as exc:
        print("cenc.py %s: error: %s" % (args.command, exc), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
