#!/usr/bin/env python3
"""Bitcoin P2P in front of a JSON-RPC-only regtest chain, for the original BNS indexer.

virtualchain 20.0.1.0 (the indexer's chain reader) downloads headers and blocks over Bitcoin's
peer-to-peer protocol, through protocoin, and only fetches the funding transactions of BNS
operations over JSON-RPC. A chain served by bitcoind's JSON-RPC alone (`atlas-dev devnet
--bitcoind-rpc-port`, the test harness's server) has no P2P side, so this program provides one:
each connection is a tiny regtest peer whose answers come from the JSON-RPC.

    version     -> version, verack
    getheaders  -> headers after the first locator hash on the chain (after genesis if none is),
                   at most 2000, up to hashStop
    getdata     -> block for each block item (`getblock HASH 0`), notfound for anything else
    ping        -> pong
    other       -> ignored

Delivery. protocoin's client reads with recv(8192) and decodes at most one message after each
recv, so messages that reach it together wait in its buffer until more bytes arrive; if none do,
it waits for ever. Every message is therefore followed by a probe (a ping whose pong proves that
everything before it was decoded), and while that pong is outstanding the connection is nudged
with one byte of a further probe every millisecond. A single byte completes at most one message,
so nudging never adds to the backlog faster than each nudge's recv drains it.

Standard library only (runs under `python3 -I -S`). Usage:

    p2p_shim.py --listen 127.0.0.1:18444 --rpc http://atlas:atlas@127.0.0.1:18443/ [-v]
"""

import argparse
import base64
import hashlib
import json
import select
import socket
import struct
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

REGTEST_MAGIC = bytes.fromhex("fabfb5da")
HEADER_LEN = 24
MAX_HEADERS = 2000
MSG_BLOCK = 2
MSG_WITNESS_FLAG = 1 << 30
NUDGE_SECONDS = 0.001
PROTOCOL_VERSION = 70015
USER_AGENT = b"/atlas-oracle-shim:1/"


def sha256d(data):
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def compact_size(n):
    if n < 0xFD:
        return struct.pack("<B", n)
    if n <= 0xFFFF:
        return b"\xfd" + struct.pack("<H", n)
    if n <= 0xFFFFFFFF:
        return b"\xfe" + struct.pack("<I", n)
    return b"\xff" + struct.pack("<Q", n)


def read_compact_size(buf, pos):
    """(value, next position) of the CompactSize integer at buf[pos]."""
    first = buf[pos]
    width = {0xFD: 2, 0xFE: 4, 0xFF: 8}.get(first)
    if width is None:
        return first, pos + 1
    return int.from_bytes(buf[pos + 1:pos + 1 + width], "little"), pos + 1 + width


def frame(command, payload=b""):
    """One wire message: magic, command, length, checksum, payload."""
    return (REGTEST_MAGIC + command.encode("ascii").ljust(12, b"\0")
            + struct.pack("<I", len(payload)) + sha256d(payload)[:4] + payload)


def display_hex(raw32):
    """A hash as the wire carries it (little-endian) -> the hex that RPC prints."""
    return raw32[::-1].hex()


class Chain:
    """The JSON-RPC side: the best chain's hashes by height, and the raw blocks asked for.

    Uses only getblockcount, getblockhash and `getblock HASH 0` (batched), which every
    bitcoind-style server here has."""

    BATCH = 200

    def __init__(self, url):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("--rpc must look like http://USER:PASS@HOST:PORT/, not %r" % url)
        netloc = parts.hostname if parts.port is None else "%s:%d" % (parts.hostname, parts.port)
        self.endpoint = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path or "/", "", ""))
        self.headers = {"Content-Type": "application/json"}
        if parts.username is not None:
            userpass = "%s:%s" % (urllib.parse.unquote(parts.username),
                                  urllib.parse.unquote(parts.password or ""))
            self.headers["Authorization"] = "Basic " + base64.b64encode(userpass.encode()).decode()
        self.lock = threading.Lock()
        self.by_height = []   # display hex of the block at each height of the best chain
        self.height_of = {}   # display hex -> height
        self.header = {}      # display hex -> 80-byte header

    def post(self, body):
        request = urllib.request.Request(self.endpoint, data=json.dumps(body).encode(),
                                         headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=120) as reply:
                return json.loads(reply.read())
        except urllib.error.HTTPError as e:
            # bitcoind answers a failed call with HTTP 500 and the error in a JSON body
            try:
                return json.loads(e.read())
            except ValueError:
                raise RuntimeError("JSON-RPC: HTTP %d from %s" % (e.code, self.endpoint)) from None

    def call(self, method, *params):
        answer = self.post({"jsonrpc": "1.0", "id": 0, "method": method, "params": list(params)})
        if answer.get("error"):
            raise RuntimeError("%s%r: %s" % (method, params, answer["error"]))
        return answer["result"]

    def call_each(self, method, param_lists):
        """One batched request per BATCH calls; each call's result, None where it failed."""
        results = []
        for at in range(0, len(param_lists), self.BATCH):
            chunk = param_lists[at:at + self.BATCH]
            answers = self.post([{"jsonrpc": "1.0", "id": i, "method": method, "params": list(p)}
                                 for i, p in enumerate(chunk)])
            if not isinstance(answers, list):
                raise RuntimeError("%s: a batch was answered with %r" % (method, answers))
            by_id = {a.get("id"): a for a in answers if isinstance(a, dict)}
            for i in range(len(chunk)):
                a = by_id.get(i) or {}
                results.append(None if a.get("error") else a.get("result"))
        return results

    def refresh(self):
        """Follows the RPC's best chain: forgets heights a reorg replaced, learns new ones."""
        with self.lock:
            tip = self.call("getblockcount")
            del self.by_height[tip + 1:]
            while self.by_height and self.call("getblockhash", len(self.by_height) - 1) != self.by_height[-1]:
                self.by_height.pop()
            new = self.call_each("getblockhash", [[h] for h in range(len(self.by_height), tip + 1)])
            if None in new:
                raise RuntimeError("getblockhash failed below the tip %d" % tip)
            self.by_height += new
            self.height_of = {h: i for i, h in enumerate(self.by_height)}
            return tip

    def blocks(self, hashes):
        """{hash: raw block} for those of the hashes the RPC knows. Not cached: each block is
        downloaded once per indexing pass, and a devnet's blocks can be large."""
        wanted = list(dict.fromkeys(hashes))
        with self.lock:
            found = self.call_each("getblock", [[h, 0] for h in wanted])
        return {h: bytes.fromhex(b) for h, b in zip(wanted, found) if isinstance(b, str)}

    def headers_after(self, locator, stop):
        """The 80-byte headers that follow the first locator hash on the chain (or genesis)."""
        with self.lock:
            fork = next((self.height_of[h] for h in locator if h in self.height_of), 0)
            hashes = self.by_height[fork + 1:fork + 1 + MAX_HEADERS]
        if stop in hashes:
            hashes = hashes[:hashes.index(stop) + 1]
        missing = [h for h in hashes if h not in self.header]
        for h, raw in self.blocks(missing).items():
            self.header[h] = raw[:80]
        lost = [h for h in hashes if h not in self.header]
        if lost:
            raise RuntimeError("getblock %s failed: the chain changed under the shim" % lost[0])
        return [self.header[h] for h in hashes]


class Peer:
    """One connection from virtualchain (a header sync or a block download)."""

    def __init__(self, conn, chain, verbose):
        self.conn = conn
        self.chain = chain
        self.verbose = verbose
        try:
            self.name = "%s:%d" % conn.getpeername()[:2]
        except OSError:
            self.name = "?"
        self.inbox = bytearray()
        self.probes = 0          # probes made so far; each carries its number as the ping nonce
        self.awaited = 0         # the last probe sent whole: its pong means "all caught up"
        self.confirmed = 0       # the highest probe number whose pong came back
        self.tail = b""          # unsent bytes of the probe being nudged out
        self.tail_probe = 0      # ... and its number
        self.sent_at = 0.0

    def log(self, *words):
        if self.verbose:
            print("p2p_shim: %s" % self.name, *words, flush=True)

    def serve(self):
        try:
            self.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while True:
                behind = self.confirmed < self.awaited
                readable, _, _ = select.select([self.conn], [], [], NUDGE_SECONDS if behind else None)
                if readable:
                    data = self.conn.recv(65536)
                    if not data:
                        self.log("closed by the peer")
                        return
                    self.inbox += data
                    replies = []
                    for command, payload in self.messages():
                        replies += self.answer(command, payload)
                    if replies:
                        self.send(replies)
                elif behind and time.monotonic() - self.sent_at >= NUDGE_SECONDS:
                    self.nudge()
        except OSError as e:
            self.log("connection lost:", e)
        except Exception as e:  # a malformed message or a failing RPC: drop this connection
            print("p2p_shim: %s: %s: %s" % (self.name, type(e).__name__, e), file=sys.stderr, flush=True)
        finally:
            self.conn.close()

    def messages(self):
        """Takes the complete messages out of the inbox."""
        while len(self.inbox) >= HEADER_LEN:
            if self.inbox[:4] != REGTEST_MAGIC:
                raise ValueError("not regtest's magic: %s" % bytes(self.inbox[:4]).hex())
            command = bytes(self.inbox[4:16]).rstrip(b"\0").decode("ascii", "replace")
            length, checksum = struct.unpack_from("<I4s", self.inbox, 16)
            if len(self.inbox) < HEADER_LEN + length:
                return
            payload = bytes(self.inbox[HEADER_LEN:HEADER_LEN + length])
            del self.inbox[:HEADER_LEN + length]
            if sha256d(payload)[:4] != checksum:
                raise ValueError("bad checksum on a %s message" % command)
            if command not in ("ping", "pong"):
                self.log("<-", command, "(%d bytes)" % length)
            yield command, payload

    def answer(self, command, payload):
        """The messages that answer one message."""
        if command == "version":
            tip = self.chain.refresh()
            return [frame("version", version_payload(tip)), frame("verack")]
        if command == "ping":
            return [frame("pong", payload[:8])]
        if command == "pong":
            if len(payload) == 8:
                self.confirmed = max(self.confirmed, struct.unpack("<Q", payload)[0])
            return []
        if command == "getheaders":
            self.chain.refresh()
            count, pos = read_compact_size(payload, 4)
            locator = [display_hex(payload[pos + 32 * i:pos + 32 * (i + 1)]) for i in range(count)]
            stop = display_hex(payload[pos + 32 * count:pos + 32 * (count + 1)])
            headers = self.chain.headers_after(locator, stop)
            self.log("->", "headers x%d" % len(headers))
            # each header is followed by its transaction count, always 0 here
            return [frame("headers", compact_size(len(headers)) + b"".join(h + b"\0" for h in headers))]
        if command == "getdata":
            count, pos = read_compact_size(payload, 0)
            items = [payload[pos + 36 * i:pos + 36 * (i + 1)] for i in range(count)]
            wanted = [display_hex(it[4:]) for it in items
                      if struct.unpack_from("<I", it)[0] & ~MSG_WITNESS_FLAG == MSG_BLOCK]
            blocks = self.chain.blocks(wanted)
            out, missing = [], []
            for it in items:
                raw = blocks.get(display_hex(it[4:]))
                if raw is not None and struct.unpack_from("<I", it)[0] & ~MSG_WITNESS_FLAG == MSG_BLOCK:
                    out.append(frame("block", raw))
                else:
                    missing.append(it)
            self.log("->", "block x%d" % len(out), "notfound x%d" % len(missing))
            if missing:
                out.append(frame("notfound", compact_size(len(missing)) + b"".join(missing)))
            return out
        return []

    def new_probe(self):
        self.probes += 1
        return self.probes, frame("ping", struct.pack("<Q", self.probes))

    def send(self, replies):
        """The replies, then a whole probe. A probe still being nudged out is finished first, so
        the peer's byte stream stays whole messages."""
        number, probe = self.new_probe()
        self.conn.sendall(self.tail + b"".join(replies) + probe)
        self.tail = b""
        self.awaited = number
        self.sent_at = time.monotonic()

    def nudge(self):
        """One more byte: it makes the peer's recv return, and so decode one waiting message."""
        if not self.tail:
            self.tail_probe, self.tail = self.new_probe()
        byte, self.tail = self.tail[:1], self.tail[1:]
        self.conn.sendall(byte)
        if not self.tail:
            self.awaited = self.tail_probe
        self.sent_at = time.monotonic()


def version_payload(tip):
    """Our version message: no services, the chain's tip as start height."""
    unroutable = struct.pack("<Q", 0) + bytes(10) + b"\xff\xff" + bytes([127, 0, 0, 1]) + struct.pack(">H", 0)
    return (struct.pack("<iQq", PROTOCOL_VERSION, 0, int(time.time())) + unroutable + unroutable
            + struct.pack("<Q", 0x6f7261636c65) + compact_size(len(USER_AGENT)) + USER_AGENT
            + struct.pack("<i", tip) + b"\0")


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Bitcoin P2P (regtest) answered from a bitcoind-style JSON-RPC, for the "
                    "original BNS indexer (virtualchain); see the module docstring.")
    ap.add_argument("--listen", default="127.0.0.1:18444", metavar="HOST:PORT",
                    help="where virtualchain connects (its p2p_port); default %(default)s")
    ap.add_argument("--rpc", default="http://atlas:atlas@127.0.0.1:18443/", metavar="URL",
                    help="the chain's JSON-RPC, credentials in the URL; default %(default)s")
    ap.add_argument("-v", "--verbose", action="store_true", help="log every message")
    args = ap.parse_args(argv)

    try:
        chain = Chain(args.rpc)
    except ValueError as e:
        ap.error(str(e))
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        ap.error("--listen must be HOST:PORT, not %r" % args.listen)
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        server.bind((host, int(port)))
    except OSError as e:
        print("p2p_shim: cannot listen on %s: %s" % (args.listen, e), file=sys.stderr, flush=True)
        return 1
    server.listen(32)
    print("p2p_shim: regtest P2P on %s, answered from %s" % (args.listen, chain.endpoint), flush=True)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=Peer(conn, chain, args.verbose).serve, daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
