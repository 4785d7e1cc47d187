#!/usr/bin/env python2
"""
Derive data/stx-genesis-mainnet.bin (and its .sha256) from the genesis block
shipped inside the PyPI `blockstack` 22.0.0.0 package, as the original
indexer loads it on mainnet.

Usage (from the repository root, in the oracle's Python 2.7 venv; no
BLOCKSTACK_* variables set, so the package loads its mainnet configuration):

    target/bns-oracle/venv/bin/python crates/bns-rules/tools/derive_stx_genesis.py [OUT_DIR]

OUT_DIR defaults to data/. It takes about 4 minutes. The output is a pure
function of the installed package: two runs give the same bytes.

What goes in, and why each value is the one the original's database holds:

- Initial allocations: `GENESIS_BLOCK['rows']` (the last stage), in order,
  with addresses converted the way `namedb_create_token_genesis` converts
  them (c32 -> base58check, then `virtualchain.address_reencode`; an address
  that fails to convert is kept verbatim: those are the unspendable
  placeholder accounts). `lock_send` and `receive_whitelisted` are the row's
  (defaults 0 and true).
- Patches, by block height: `get_genesis_block_patches(height)` for every
  height in GENESIS_BLOCK_PATCHES and GENESIS_BLOCK_PATCHES_FILES, so bulk
  file patches are expanded by the original's own loader (which checks the
  CSV's sha256). Added rows carry the address and `receive_whitelisted` as
  `namedb_account_info_normalize` gives them: the merge writes that flag
  (true for every valid address, whatever the row says), not the row's.
  Deleted addresses are converted as `namedb_remove_account` converts them.

File format (all integers are unsigned LEB128 varints unless noted):

    magic        8 bytes "STXGEN01"
    origin       block at which the allocations exist (FIRST_BLOCK_MAINNET)
    types        n, then n strings: token type names, referenced by index
    schedules    n, then n schedules: vesting schedules, referenced by index;
                 index 0 is the empty schedule
    allocations  a group list
    patches      n, then n times: height, a group list of added rows,
                 ndel, then ndel strings (deleted addresses)

    string       length, then that many bytes (UTF-8)
    schedule     nruns, then nruns times: gap, step, count, amount. A run
                 vests `amount` at heights start + j*step for j < count;
                 start = gap for the first run, else the previous run's
                 last height + gap. Runs are maximal, in height order.
    group list   ngroups, then ngroups groups. A group is a run of
                 consecutive rows that differ only in their address:
                 type index, value, lock_send, flags (1 byte: bit 0 =
                 receive_whitelisted), schedule index, kind (1 byte),
                 naddr, then naddr addresses. Kind 0xff: each address is a
                 string; any other kind: each address is a 20-byte hash160,
                 base58check-encoded with the kind as version byte.

Rows keep the original's order, within the allocations and within each patch.
"""

import hashlib
import os
import sys

# pyenv's Python 2.7 here lacks OpenSSL's ripemd160, which hash160 needs;
# serve it from pycryptodome (the oracle does the same, outside the BNS rules).
_hashlib_new = hashlib.new


def _hashlib_new_with_ripemd(name, data=b''):
    if name.lower() == 'ripemd160':
        from Crypto.Hash import RIPEMD160
        h = RIPEMD160.new()
        if data:
            h.update(data)
        return h
    return _hashlib_new(name, data)


hashlib.new = _hashlib_new_with_ripemd

for k in os.environ:
    if k.startswith('BLOCKSTACK_'):
        sys.exit('unset {}: the mainnet genesis is wanted'.format(k))

import keylib  # noqa: E402
import virtualchain  # noqa: E402
from blockstack.lib import config  # noqa: E402
from blockstack.lib.nameset import db as namedb  # noqa: E402
from blockstack.lib.scripts import address_as_b58, is_c32_address  # noqa: E402

MAGIC = b'STXGEN01'
RAW_KIND = 0xff


def genesis_address(address):
    """The address namedb_create_token_genesis / namedb_remove_account store."""
    try:
        a = address
        if is_c32_address(a):
            a = address_as_b58(a)
        return virtualchain.address_reencode(a)
    except ValueError:
        return a


def varint(n):
    assert n >= 0, n
    out = bytearray()
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def string(s):
    if isinstance(s, unicode):
        s = s.encode('utf-8')
    return varint(len(s)) + s


def address_kind(address):
    """(kind, payload) for an address; base58check only if it round-trips."""
    try:
        version = keylib.b58check.b58check_version_byte(address)
        h = keylib.b58check.b58check_decode(address)
    except Exception:
        return RAW_KIND, address
    if len(h) == 20 and version != RAW_KIND and \
            keylib.b58check.b58check_encode(h, version_byte=version) == address:
        return version, h
    return RAW_KIND, address


def schedule_runs(vesting):
    runs = []  # [start, step, count, amount, last]
    for height, amount in sorted((int(h), int(v)) for h, v in vesting.items()):
        if runs and runs[-1][3] == amount and \
                (runs[-1][2] == 1 or height - runs[-1][4] == runs[-1][1]):
            r = runs[-1]
            if r[2] == 1:
                r[1] = height - r[4]
            r[2] += 1
            r[4] = height
        else:
            runs.append([height, 0, 1, amount, height])
    return runs


class Encoder(object):
    def __init__(self):
        self.types = []
        self.schedules = [()]
        self.schedule_ids = {(): 0}

    def type_index(self, t):
        if t not in self.types:
            self.types.append(t)
        return self.types.index(t)

    def schedule_index(self, vesting):
        key = tuple(sorted((int(h), int(v)) for h, v in vesting.items()))
        if key not in self.schedule_ids:
            self.schedule_ids[key] = len(self.schedules)
            self.schedules.append(key)
        return self.schedule_ids[key]

    def groups(self, rows):
        """rows: (address, type, value, lock_send, receive_whitelisted, vesting)."""
        groups = []
        for address, ty, value, lock_send, whitelisted, vesting in rows:
            kind, payload = address_kind(address)
            head = (self.type_index(ty), int(value), int(lock_send),
                    1 if whitelisted else 0, self.schedule_index(vesting), kind)
            if groups and groups[-1][0] == head:
                groups[-1][1].append(payload)
            else:
                groups.append((head, [payload]))
        out = [varint(len(groups))]
        for (ty, value, lock_send, flags, sched, kind), payloads in groups:
            out += [varint(ty), varint(value), varint(lock_send), chr(flags),
                    varint(sched), chr(kind), varint(len(payloads))]
            for p in payloads:
                out.append(string(p) if kind == RAW_KIND else p)
        return b''.join(out)

    def schedule(self, key):
        runs = schedule_runs(dict(key))
        out = [varint(len(runs))]
        prev = 0
        for start, step, count, amount, last in runs:
            out += [varint(start - prev), varint(step), varint(count), varint(amount)]
            prev = last
        return b''.join(out)


def allocation_rows():
    rows = []
    for r in config.get_genesis_block()['rows']:
        rows.append((genesis_address(r['address']), r['type'], r['value'],
                     r.get('lock_send', 0), r.get('receive_whitelisted', True),
                     r.get('vesting', {})))
    return rows


def patch_heights():
    heights = set(config.GENESIS_BLOCK_PATCHES.keys())
    heights |= set(config.GENESIS_BLOCK_PATCHES_FILES.keys())
    return sorted(int(h) for h in heights)


def patch_rows(height):
    patch = config.get_genesis_block_patches(str(height))
    adds = []
    for r in patch['add']:
        address, _metadata, whitelisted = namedb.namedb_account_info_normalize(r)
        adds.append((address, r['type'], r['value'], r.get('lock_send', 0),
                     whitelisted, r['vesting']))
    dels = [genesis_address(a) for a in patch['del']]
    return adds, dels


def derive():
    enc = Encoder()
    allocations = enc.groups(allocation_rows())
    patches = [varint(len(patch_heights()))]
    for h in patch_heights():
        adds, dels = patch_rows(h)
        patches += [varint(h), enc.groups(adds), varint(len(dels))]
        patches += [string(a) for a in dels]
    head = [MAGIC, varint(config.FIRST_BLOCK_MAINNET), varint(len(enc.types))]
    head += [string(t) for t in enc.types]
    head.append(varint(len(enc.schedules)))
    head += [enc.schedule(s) for s in enc.schedules]
    return b''.join(head) + allocations + b''.join(patches)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, 'data')
    if not os.path.isdir(out_dir):
        os.makedirs(out_dir)
    data = derive()
    name = 'stx-genesis-mainnet.bin'
    with open(os.path.join(out_dir, name), 'wb') as f:
        f.write(data)
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(out_dir, 'stx-genesis-mainnet.sha256'), 'wb') as f:
        f.write('{}  {}\n'.format(digest, name))
    print '{}: {} bytes, sha256 {}'.format(name, len(data), digest)


if __name__ == '__main__':
    main()
