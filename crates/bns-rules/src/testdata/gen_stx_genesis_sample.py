#!/usr/bin/env python2
"""
Generate stx_genesis_sample.json, the test vector for crates/bns-rules/src/genesis.rs,
with the original indexer's own code (blockstack 22.0.0.0) in the oracle's
Python 2.7 venv, mainnet configuration (no BLOCKSTACK_* variables):

    target/bns-oracle/venv/bin/python crates/bns-rules/src/testdata/gen_stx_genesis_sample.py

Takes several minutes (the original merges the 322,146 airdrop rows one by one).

What it records:

- `allocations_digest` / `patches_digest`: sha256 over every allocation as the
  original's `namedb_create` stored it (accounts + account_vesting tables,
  sorted by address) and over every patch as `get_genesis_block_patches`
  expands it and `namedb_account_info_normalize` normalises it, in order.
  One line per row: "address|type|value|lock_send|whitelisted|h:v,h:v...\n"
  (vesting sorted by height; whitelisted 0/1); a deletion is "-address\n";
  each patch starts with "@height\n".
- `totals`: counts and sums of the same.
- `allocation_sample` / `patch_sample`: every 97th allocation, and per patch
  height the rows 0, 97, 194, ... below 500 (bulk-file patches: row 0) plus
  the last row and all deletions, with their fields.
- `checkpoints`: the original's database after each listed block (its genesis
  patch, its vesting, then the synthetic `events` of that block, applied with
  `namedb_account_debit` / `namedb_account_credit`): account count, sums and a
  digest of every (address, STACKS) account's latest row
  ("address|credit|debit|lock|whitelisted\n", sorted), plus the latest rows of
  the event accounts, every third sampled allocation and each patch's first
  row.
"""

import hashlib
import json
import os
import shutil
import sys
import tempfile

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

import logging  # noqa: E402

from blockstack.lib import config  # noqa: E402
from blockstack.lib.nameset import db as namedb  # noqa: E402

logging.disable(logging.CRITICAL)

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKPOINTS = [547921, 547922, 560000, 599865, 599866, 600000, 613249, 613250,
               613282, 613283, 700000, 1000000]
LAST = CHECKPOINTS[-1]


def row_line(address, ty, value, lock_send, whitelisted, vesting):
    v = ','.join('{}:{}'.format(h, x) for h, x in sorted((int(h), int(x)) for h, x in vesting.items()))
    return '{}|{}|{}|{}|{}|{}\n'.format(address, ty, value, lock_send, 1 if whitelisted else 0, v)


def sample_row(address, ty, value, lock_send, whitelisted, vesting):
    return {'address': address, 'type': ty, 'value': str(value), 'lock_send': lock_send,
            'receive_whitelisted': bool(whitelisted),
            'vesting': [[int(h), str(x)] for h, x in sorted((int(h), int(x)) for h, x in vesting.items())]}


def db_allocations(con):
    """(address, type, value, lock, whitelisted, vesting) as namedb_create stored them."""
    out = []
    rows = con.execute("SELECT * FROM accounts WHERE type != 'GENESIS' ORDER BY address, type").fetchall()
    for r in rows:
        vesting = namedb.namedb_get_account_vesting(con, r['address'], r['type'])
        out.append((r['address'], r['type'], r['credit_value'], r['lock_transfer_block_id'],
                    r['receive_whitelisted'], vesting))
    return out


def patch_heights():
    heights = set(config.GENESIS_BLOCK_PATCHES.keys()) | set(config.GENESIS_BLOCK_PATCHES_FILES.keys())
    return sorted(int(h) for h in heights)


def normalized_patch(height):
    patch = config.get_genesis_block_patches(str(height))
    adds = []
    for r in patch['add']:
        address, _metadata, whitelisted = namedb.namedb_account_info_normalize(r)
        adds.append((address, r['type'], r['value'], r.get('lock_send', 0), whitelisted, r['vesting']))
    return patch, adds


def latest_accounts(con):
    """Every STACKS account's latest row, by address."""
    out = {}
    rows = con.execute("SELECT address, credit_value, debit_value, lock_transfer_block_id, receive_whitelisted,"
                       " block_id, vtxindex FROM accounts WHERE type = 'STACKS'").fetchall()
    for r in rows:
        key = (r['block_id'], r['vtxindex'])
        cur = out.get(r['address'])
        if cur is None or key > cur[0]:
            out[r['address']] = (key, r)
    return dict((a, v[1]) for a, v in out.items())


def account_json(r):
    return {'credit': str(r['credit_value']), 'debit': str(r['debit_value']),
            'lock': r['lock_transfer_block_id'], 'receive_whitelisted': bool(r['receive_whitelisted'])}


def main():
    work = tempfile.mkdtemp(prefix='stx-genesis-')
    try:
        con = namedb.namedb_create(os.path.join(work, 'blockstack-server.db'), config.get_genesis_block())
        allocations = db_allocations(con)
        alloc_digest = hashlib.sha256()
        for a in allocations:
            alloc_digest.update(row_line(*a))
        genesis_rows = config.get_genesis_block()['rows']
        by_address = dict((a[0], a) for a in allocations)
        alloc_sample = []
        for i in range(0, len(genesis_rows), 97):
            address, _m, _w = namedb.namedb_account_info_normalize(genesis_rows[i])
            alloc_sample.append(sample_row(*by_address[address]))
        totals = {'allocations': {
            'rows': len(allocations),
            'value': str(sum(a[2] for a in allocations)),
            'vesting': str(sum(sum(a[5].values()) for a in allocations)),
            'whitelisted': sum(1 for a in allocations if a[4]),
        }, 'patches': []}

        patches = {}
        patch_digest = hashlib.sha256()
        patch_sample = []
        for h in patch_heights():
            patch, adds = normalized_patch(h)
            patches[h] = patch
            patch_digest.update('@{}\n'.format(h))
            for a in adds:
                patch_digest.update(row_line(*a))
            # namedb_remove_account refuses valid addresses, so it deletes by the string as given
            dels = list(patch['del'])
            for d in dels:
                patch_digest.update('-{}\n'.format(d))
            # bulk-file rows differ only in their address
            limit = 1 if h in config.GENESIS_BLOCK_PATCHES_FILES else 500
            idx = [i for i in range(0, min(len(adds), limit), 97)]
            if adds and idx[-1] != len(adds) - 1:
                idx.append(len(adds) - 1)
            patch_sample.append({'height': h, 'add': [dict(sample_row(*adds[i]), index=i) for i in idx],
                                 'delete': dels})
            totals['patches'].append({'height': h, 'add': len(adds), 'delete': len(dels),
                                      'value': str(sum(a[2] for a in adds)),
                                      'vesting': str(sum(sum(int(x) for x in a[5].values()) for a in adds))})

        watched = set(r['address'] for r in alloc_sample[::3])
        for p in patch_sample:
            watched.add(p['add'][0]['address'])
        events = choose_events(allocations, patches)
        watched |= set(e['address'] for e in events)

        vest_heights = set(r['block_id'] for r in con.execute('SELECT DISTINCT block_id FROM account_vesting').fetchall())
        for p in patches.values():
            for r in p['add']:
                vest_heights |= set(int(k) for k in r['vesting'])
        steps = sorted(set(h for h in vest_heights | set(patches) | set(CHECKPOINTS) | set(e['height'] for e in events)
                           if config.FIRST_BLOCK_MAINNET < h <= LAST))
        checkpoints = []
        for h in steps:
            if h in patches:
                namedb.namedb_patch_genesis(con, h, patches[h]['add'], patches[h]['del'])
            cur = con.cursor()
            cur.execute('BEGIN')
            namedb.namedb_accounts_vest(cur, h)
            for n, e in enumerate(ev for ev in events if ev['height'] == h):
                fn = namedb.namedb_account_debit if e['kind'] == 'debit' else namedb.namedb_account_credit
                fn(cur, e['address'], 'STACKS', int(e['amount']), h, n + 1, 'event-{}-{}'.format(h, n))
            cur.execute('END')
            if h in CHECKPOINTS:
                checkpoints.append(snapshot(con, h, watched))
                sys.stderr.write('checkpoint {}\n'.format(h))
        out = {
            'origin_block': config.FIRST_BLOCK_MAINNET,
            'allocations_digest': alloc_digest.hexdigest(),
            'patches_digest': patch_digest.hexdigest(),
            'totals': totals,
            'allocation_sample': alloc_sample,
            'patch_sample': patch_sample,
            'events': events,
            'checkpoints': checkpoints,
        }
        with open(os.path.join(HERE, 'stx_genesis_sample.json'), 'w') as f:
            json.dump(out, f, indent=1, sort_keys=True, separators=(',', ': '))
            f.write('\n')
    finally:
        shutil.rmtree(work)


def choose_events(allocations, patches):
    """Token movements between patches, so merges meet accounts with history."""
    genesis = dict((a[0], a) for a in allocations)

    def first_add(h, pred):
        for r in patches[h]['add']:
            address, _m, _w = namedb.namedb_account_info_normalize(r)
            if pred(address, r):
                return address
        raise Exception('no candidate at {}'.format(h))

    def vested(a, upto):
        return sum(x for h, x in genesis[a][5].items() if int(h) <= upto)

    # a genesis account that the 599865 patch tops up, spending before and after
    a1 = first_add(599865, lambda a, r: a in genesis and vested(a, 560000) > 0 and r['vesting'])
    # an account of the 613249 patch, whose rows grant vesting from before it
    a2 = first_add(613249, lambda a, r: any(int(k) < 613249 for k in r['vesting']))
    # an airdrop address that holds tokens before its airdrop
    a3 = first_add(613250, lambda a, r: a not in genesis)
    # a new account in the 599865 patch
    a4 = first_add(599865, lambda a, r: a not in genesis and r['vesting'] and r['receive_whitelisted'])
    base1 = vested(a1, 560000)
    return [
        {'height': 560000, 'address': a1, 'kind': 'debit', 'amount': str(base1 // 3)},
        {'height': 600000, 'address': a2, 'kind': 'credit', 'amount': '12345'},
        {'height': 600000, 'address': a1, 'kind': 'credit', 'amount': '5'},
        {'height': 605000, 'address': a3, 'kind': 'credit', 'amount': '777'},
        {'height': 605000, 'address': a2, 'kind': 'debit', 'amount': '1000'},
        {'height': 610000, 'address': a4, 'kind': 'debit', 'amount': '1'},
        {'height': 700000, 'address': a3, 'kind': 'debit', 'amount': '700'},
    ]


def snapshot(con, h, watched):
    latest = latest_accounts(con)
    digest = hashlib.sha256()
    credit = debit = 0
    for address in sorted(latest):
        r = latest[address]
        credit += r['credit_value']
        debit += r['debit_value']
        digest.update('{}|{}|{}|{}|{}\n'.format(address, r['credit_value'], r['debit_value'],
                                                r['lock_transfer_block_id'], 1 if r['receive_whitelisted'] else 0))
    accounts = {}
    for a in sorted(watched):
        accounts[a] = account_json(latest[a]) if a in latest else None
    return {'height': h, 'accounts_count': len(latest), 'credit': str(credit), 'debit': str(debit),
            'digest': digest.hexdigest(), 'accounts': accounts}


if __name__ == '__main__':
    main()
