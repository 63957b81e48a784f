#!/usr/bin/env python3
"""An independent reader of TensorBoard event files (tests/viz/tensorboard_test.cpp runs it).

Parses the TFRecord framing and the tensorflow.Event protobuf with its own code (no TensorFlow,
no protobuf package), checks both masked CRC32C of every record, and prints one JSON line per
event: {"step", "wall_time", "file_version"?, "session_status"?, "scalars": {tag: value}}.
Exits 1 with a message on any malformed record.
"""
import json
import struct
import sys


def _table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


TABLE = _table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked(data):
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(buf, pos):
    value, shift = 0, 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def fields(buf):
    """Yields (field number, wire type, value) of a protobuf message."""
    pos = 0
    while pos < len(buf):
        key, pos = varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError("wire type %d" % wire)
        yield number, wire, value


def decode_event(data):
    event = {"scalars": {}}
    for number, wire, value in fields(data):
        if number == 1 and wire == 1:
            event["wall_time"] = struct.unpack("<d", value)[0]
        elif number == 2 and wire == 0:
            event["step"] = value - (1 << 64) if value >= 1 << 63 else value
        elif number == 3 and wire == 2:
            event["file_version"] = value.decode()
        elif number == 5 and wire == 2:  # Summary
            for n, w, v in fields(value):
                if n != 1:
                    continue
                tag, simple = None, None
                for vn, vw, vv in fields(v):
                    if vn == 1 and vw == 2:
                        tag = vv.decode()
                    elif vn == 2 and vw == 5:
                        simple = struct.unpack("<f", vv)[0]
                if simple is not None:
                    event["scalars"][tag] = simple
        elif number == 7 and wire == 2:  # SessionLog
            for n, w, v in fields(value):
                if n == 1 and w == 0:
                    event["session_status"] = v
    event.setdefault("step", 0)
    return event


def main(path):
    data = open(path, "rb").read()
    pos = 0
    while pos < len(data):
        header = data[pos:pos + 8]
        if len(header) < 8:
            sys.exit("truncated header at %d" % pos)
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        if masked(header) != length_crc:
            sys.exit("length CRC mismatch at %d" % pos)
        body = data[pos + 12:pos + 12 + length]
        (body_crc,) = struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])
        if len(body) != length or masked(body) != body_crc:
            sys.exit("data CRC mismatch at %d" % pos)
        print(json.dumps(decode_event(body), sort_keys=True))
        pos += 16 + length


if __name__ == "__main__":
    main(sys.argv[1])
