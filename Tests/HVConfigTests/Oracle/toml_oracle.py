#!/usr/bin/env python3
"""Python's tomllib as the oracle for HVKit's TOML reader.

Reads documents, one per line, each as hex of its bytes; prints one line
per document: "ok <canonical value>", "error" (not TOML: not UTF-8, or
tomllib refused it) or "bigint" (tomllib accepted an integer outside the
signed 64-bit range, which TOML lets an implementation refuse and HVKit
does). The canonical form is the one the Swift test builds.
"""
import datetime
import math
import struct
import sys
import tomllib


class BigInt(Exception):
    pass


def canon(v):
    if isinstance(v, bool):
        return "b1" if v else "b0"
    if isinstance(v, int):
        if not -(1 << 63) <= v < (1 << 63):
            raise BigInt()
        return "i%d" % v
    if isinstance(v, float):
        if math.isnan(v):
            return "fnan"
        return "f%016x" % struct.unpack("<Q", struct.pack("<d", v))[0]
    if isinstance(v, str):
        return "s" + v.encode("utf-8").hex()
    if isinstance(v, datetime.datetime):
        core = "%d-%d-%d-%d-%d-%d-%d" % (v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond)
        if v.tzinfo is None:
            return "L" + core
        return "O" + core + "-%d" % (v.utcoffset().total_seconds() // 60)
    if isinstance(v, datetime.date):
        return "D%d-%d-%d" % (v.year, v.month, v.day)
    if isinstance(v, datetime.time):
        return "T%d-%d-%d-%d" % (v.hour, v.minute, v.second, v.microsecond)
    if isinstance(v, list):
        return "[" + ",".join(canon(x) for x in v) + "]"
    if isinstance(v, dict):
        keys = sorted(v, key=lambda k: k.encode("utf-8"))
        return "{" + ",".join(k.encode("utf-8").hex() + "=" + canon(v[k]) for k in keys) + "}"
    raise TypeError(type(v))


def main():
    out = []
    for line in open(sys.argv[1], "r"):
        raw = bytes.fromhex(line.strip())
        try:
            doc = tomllib.loads(raw.decode("utf-8"))
            out.append("ok " + canon(doc))
        except BigInt:
            out.append("bigint")
        except (UnicodeDecodeError, tomllib.TOMLDecodeError):
            out.append("error")
    sys.stdout.write("\n".join(out) + "\n")


main()
