#!/usr/bin/env python3
"""Recompute the agent-otp audit hash chain from `agent-otp audit export` output.

Independent of the Rust code: Python standard library only, following docs/audit.md.

    agent-otp audit export > audit.jsonl
    python3 scripts/verify_audit_export.py --key-file data/audit.key audit.jsonl   # or "-" for stdin

For every line it checks hash == HMAC-SHA-256(key, "agent-otp audit chain v1\n" || prevHash ||
canonical JSON of the event) for keyed lines ("keyed": true; the key is the 64 hex characters of
the audit key file), and hash == SHA-256(prevHash || canonical JSON) for lines written before the
chain was keyed. No unkeyed line may follow a keyed one. Where lines
are consecutive (seq n then n+1) it also checks prevHash == the previous line's hash, and a line
with seq 1 must have the all-zero prevHash. A full export therefore verifies the whole chain; a
filtered one (--agent, --since, ...) verifies each row and every unbroken run.

Exit 0 and "ok: N events, head HASH" when everything holds; exit 1 naming the first bad seq.
"""

import hashlib
import hmac
import json
import sys

GENESIS = "0" * 64
CHAIN_LABEL = b"agent-otp audit chain v1\n"
HASHED_FIELDS = ("seq", "at", "actor", "event", "requestId", "agentId", "details")


class Number(str):
    """A JSON number kept as the exact text it was written with (no float round trip)."""


def canonical(value):
    """Canonical JSON: keys sorted by code point (= UTF-8 byte order), no whitespace,
    strings escaped like serde_json (ensure_ascii=False), numbers as written in the export."""
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: kv[0])
        return "{" + ",".join(canonical(k) + ":" + canonical(v) for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    if isinstance(value, Number):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    raise ValueError("unexpected JSON value %r" % (value,))


def event_hash(prev_hash, line, key):
    body = {field: line[field] for field in HASHED_FIELDS}
    data = prev_hash.encode("ascii") + canonical(body).encode("utf-8")
    if line.get("keyed"):
        return hmac.new(key, CHAIN_LABEL + data, hashlib.sha256).hexdigest()
    return hashlib.sha256(data).hexdigest()


def main(argv):
    args = argv[1:]
    key = None
    if len(args) == 3 and args[0] == "--key-file":
        with open(args[1], encoding="ascii") as f:
            key = bytes.fromhex(f.read().strip())
        args = args[2:]
    if len(args) != 1:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        print("usage: verify_audit_export.py [--key-file FILE] FILE|-", file=sys.stderr)
        return 2
    stream = sys.stdin if args[0] == "-" else open(args[0], encoding="utf-8")
    count, prev, keyed_seen = 0, None, False
    for number, text in enumerate(stream, start=1):
        if not text.strip():
            continue
        line = json.loads(text, parse_int=Number, parse_float=Number)
        seq = int(line["seq"])
        if line.get("keyed"):
            if key is None:
                print("cannot check seq %d: it is keyed; pass --key-file" % seq)
                return 1
            keyed_seen = True
        elif keyed_seen:
            print("broken at seq %d: an unkeyed event after keyed ones" % seq)
            return 1
        if prev is not None and seq == prev[0] + 1 and line["prevHash"] != prev[1]:
            print("broken at seq %d: prevHash does not match the hash of seq %d" % (seq, prev[0]))
            return 1
        if seq == 1 and line["prevHash"] != GENESIS:
            print("broken at seq 1: prevHash is not the genesis hash")
            return 1
        if not hmac.compare_digest(event_hash(line["prevHash"], line, key), line["hash"]):
            print("broken at seq %d: hash does not match the event's contents (line %d)" % (seq, number))
            return 1
        count, prev = count + 1, (seq, line["hash"])
    if count == 0:
        print("no events")
        return 1
    print("ok: %d events, head %s" % (count, prev[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
