#!/usr/bin/env python2
"""
Generate the test vectors for crates/bns-rules/src/{params,price,keyring}.rs by
running the original indexer's own functions (blockstack 22.0.0.0,
virtualchain 20.0.1.0) in the oracle's Python 2.7 venv.

Usage (from the repository root):

    target/bns-oracle/venv/bin/python crates/bns-rules/src/testdata/gen_rules_vectors.py

The original reads its rule parameters from the environment at import time,
so this script re-runs itself once per rule set (mainnet, the oracle's test
mode, and test mode with EPOCH_ENDS="1 2 3 4 5") and merges the results into
params_vectors.json, price_vectors.json and keyring_vectors.json next to it.

Number encoding in the JSON: "f:<16 hex digits>" is an IEEE-754 double by its
bit pattern (bit-exact, whatever Python's repr would say), "i:<decimal>" is a
Python int/long, null is None.
"""

import hashlib
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

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

MODES = {
    'mainnet': {},
    'test': {
        'BLOCKSTACK_TEST': '1',
        'BLOCKSTACK_TESTNET': '1',
        'BLOCKSTACK_TEST_FIRST_BLOCK': '1',
        'BLOCKSTACK_NAMESPACE_REVEAL_EXPIRE': '52595',
    },
    'test_epochs_12345': {
        'BLOCKSTACK_TEST': '1',
        'BLOCKSTACK_TESTNET': '1',
        'BLOCKSTACK_TEST_FIRST_BLOCK': '1',
        'BLOCKSTACK_NAMESPACE_REVEAL_EXPIRE': '52595',
        'BLOCKSTACK_EPOCH_1_END_BLOCK': '1',
        'BLOCKSTACK_EPOCH_2_END_BLOCK': '2',
        'BLOCKSTACK_EPOCH_3_END_BLOCK': '3',
        'BLOCKSTACK_EPOCH_4_END_BLOCK': '4',
        'BLOCKSTACK_EPOCH_5_END_BLOCK': '5',
    },
}


def enc(v):
    if v is None:
        return None
    if isinstance(v, float):
        return 'f:' + struct.pack('>d', v).encode('hex')
    if isinstance(v, bool):
        raise TypeError('bool where a number was expected')
    if isinstance(v, (int, long)):
        return 'i:%d' % v
    raise TypeError('unexpected %r' % (v,))


def boundary_heights(ends, first_block):
    hs = set([0, 1, first_block])
    for e in ends:
        for d in (-2, -1, 0, 1, 2):
            if e + d >= 0:
                hs.add(e + d)
    hs.add(ends[-1] + 100000)
    return sorted(hs)


def one_height_per_epoch(ends):
    # the last block of every epoch, and the first block of epoch 6
    return list(ends) + [ends[-1] + 1]


def name_variants():
    vowel = 'abcdefghijklmnopqrstuvwxyz' * 2
    consonant = 'bcdfghjklmnpqrstvwxz' * 2
    digits = 'a1b2c3d4e5f6g7h8i9j0' * 2
    nonalpha_novowel = 'b-c_d1f2g3h-j_k4l5m6n-p' * 2
    names = []
    for n in xrange(1, 38):
        names.append(vowel[:n])
        names.append(consonant[:n])
        names.append(digits[:n])
        names.append(nonalpha_novowel[:n])
    # 'y' is a vowel here; '.' and '+' are neither vowels nor non-alpha;
    # upper case is lowered before counting
    names += ['y', 'yyy', 'bcy', 'b.c', 'b+c', 'BCD', 'BaD', '0', '-', '_', '9y',
              'x' * 16, 'x' * 15, 'x' * 17]
    return names


def namespaces():
    id_buckets = [6, 5, 4, 3, 2, 1] + [0] * 10
    out = [
        {'namespace_id': 'id', 'version': 1, 'coeff': 250, 'base': 4, 'buckets': id_buckets,
         'nonalpha_discount': 10, 'no_vowel_discount': 10},
        {'namespace_id': 'pay2creator', 'version': 2, 'coeff': 250, 'base': 4, 'buckets': id_buckets,
         'nonalpha_discount': 10, 'no_vowel_discount': 10},
        {'namespace_id': 'stx', 'version': 3, 'coeff': 250, 'base': 4, 'buckets': id_buckets,
         'nonalpha_discount': 10, 'no_vowel_discount': 10},
        # beyond 128 bits in epochs >= 4; float() of a huge long
        {'namespace_id': 'huge', 'version': 1, 'coeff': 255, 'base': 255, 'buckets': [15] * 16,
         'nonalpha_discount': 1, 'no_vowel_discount': 15},
        {'namespace_id': 'hugestx', 'version': 3, 'coeff': 255, 'base': 255, 'buckets': [15] * 16,
         'nonalpha_discount': 15, 'no_vowel_discount': 1},
        # price floor at the cost unit
        {'namespace_id': 'free', 'version': 1, 'coeff': 0, 'base': 7, 'buckets': [1, 2, 3] * 5 + [0],
         'nonalpha_discount': 3, 'no_vowel_discount': 7},
        # 0 ** 0 == 1
        {'namespace_id': 'zero', 'version': 2, 'coeff': 17, 'base': 0, 'buckets': [0, 1] * 8,
         'nonalpha_discount': 2, 'no_vowel_discount': 3},
        {'namespace_id': 'cheap', 'version': 1, 'coeff': 1, 'base': 1, 'buckets': [0] * 16,
         'nonalpha_discount': 15, 'no_vowel_discount': 15},
    ]
    rnd = random.Random(20240611)
    for i in xrange(8):
        out.append({
            'namespace_id': 'rnd%d' % i,
            'version': rnd.choice([1, 2, 3]),
            'coeff': rnd.randint(0, 255),
            'base': rnd.choice([rnd.randint(0, 20), rnd.randint(0, 255)]),
            'buckets': [rnd.randint(0, 15) for _ in xrange(16)],
            'nonalpha_discount': rnd.randint(1, 15),
            'no_vowel_discount': rnd.randint(1, 15),
        })
    return out


def generate(mode):
    import blockstack.lib.config as config
    import blockstack.lib.scripts as scripts
    import virtualchain
    from virtualchain.lib.blockchain.bitcoin_blockchain import bech32

    ends = [config.EPOCHS[i]['end_block'] for i in xrange(5)]
    first_block = config.FIRST_BLOCK_MAINNET
    out = {}

    out['constants'] = {
        'first_block': first_block,
        'epoch_end_blocks': [config.EPOCHS[i]['end_block'] for i in xrange(6)],
        'blocks_per_year': config.BLOCKS_PER_YEAR,
        'blocks_per_day': config.BLOCKS_PER_DAY,
        'name_preorder_expire': config.NAME_PREORDER_EXPIRE,
        'namespace_preorder_expire': config.NAMESPACE_PREORDER_EXPIRE,
        'namespace_reveal_expire': config.NAMESPACE_REVEAL_EXPIRE,
        'max_names_per_sender': config.MAX_NAMES_PER_SENDER,
        'name_import_keyring_size': config.NAME_IMPORT_KEYRING_SIZE,
        'name_cost_unit': config.NAME_COST_UNIT,
        'name_cost_unit_stacks': config.NAME_COST_UNIT_STACKS,
        'microstacks_per_satoshi_num': config.MICROSTACKS_PER_SATOSHI_NUM,
        'microstacks_per_satoshi_den': config.MICROSTACKS_PER_SATOSHI_DEN,
        'burn_pubkey_hash': config.BLOCKSTACK_BURN_PUBKEY_HASH,
        'burn_address': config.BLOCKSTACK_BURN_ADDRESS,
        'token_type_stacks': config.TOKEN_TYPE_STACKS,
        'namespace_life_infinite': config.NAMESPACE_LIFE_INFINITE,
        'p2pkh_version_byte': virtualchain.version_byte,
        'p2sh_version_byte': virtualchain.multisig_version_byte,
        'bech32_hrp': bech32.bech32_prefix,
        'subdomain_address_version_bytes': config.SUBDOMAIN_ADDRESS_VERSION_BYTES,
        'subdomains_first_block': config.SUBDOMAINS_FIRST_BLOCK,
        'num_confirmations': config.NUM_CONFIRMATIONS,
        'valid_transaction_window': 24,
        'genesis_snapshot': dict((int(k), v) for k, v in config.GENESIS_SNAPSHOT.items()),
        'magic_bytes': config.MAGIC_BYTES,
        'namespace_versions_supported': config.NAMESPACE_VERSIONS_SUPPORTED,
    }

    out['epoch_numbers'] = [[h, config.get_epoch_number(h)]
                            for h in boundary_heights(ends, first_block)]

    # every per-epoch value, read the way the get_epoch_* helpers read it
    # (the price multiplier/divisor getters abort on None, so read the table)
    epochs = []
    for h in one_height_per_epoch(ends):
        ec = config.get_epoch_config(h)
        per_ns = {}
        for ns in ['id', 'test', 'foo', '*']:
            row = ec['namespaces'].get(ns, ec['namespaces']['*'])
            assert config.get_epoch_namespace_lifetime_multiplier(h, ns) == row['NAMESPACE_LIFETIME_MULTIPLIER']
            assert config.get_epoch_namespace_lifetime_grace_period(h, ns) == row['NAMESPACE_LIFETIME_GRACE_PERIOD']
            assert config.get_epoch_namespace_receive_fees_period(h, ns) == row['NAMESPACE_RECEIVE_FEES_PERIOD']
            per_ns[ns] = {
                'has_own_rules': ns in ec['namespaces'],
                'lifetime_multiplier': row['NAMESPACE_LIFETIME_MULTIPLIER'],
                'grace_period': row['NAMESPACE_LIFETIME_GRACE_PERIOD'],
                'receive_fees_period': row['NAMESPACE_RECEIVE_FEES_PERIOD'],
                'price_multiplier_btc': enc(row['PRICE_MULTIPLIER']),
                'price_multiplier_stacks': enc(row['PRICE_MULTIPLIER_STACKS']),
                'price_divisor_btc': enc(row['PRICE_DIVISOR']),
                'price_divisor_stacks': enc(row['PRICE_DIVISOR_STACKS']),
            }
        epochs.append({
            'height': h,
            'epoch_number': config.get_epoch_number(h),
            'features': sorted(config.get_epoch_features(h)),
            'has_multisig': config.epoch_has_multisig(h),
            'has_segwit': config.epoch_has_segwit(h),
            'script_types': config.get_epoch_btc_script_types(h),
            'sender_types': config.get_epoch_btc_sender_types(h),
            'namespace_price_units': config.get_epoch_namespace_price_units(h),
            'namespaces': per_ns,
        })
    out['epochs'] = epochs

    nsp = []
    for h in one_height_per_epoch(ends):
        for units in ['BTC', 'STACKS']:
            for n in xrange(0, 21):
                nsid = ('abcdefghijklmnopqrstu')[:n]
                nsp.append([h, units, nsid, enc(scripts.price_namespace(nsid, h, units))])
    out['namespace_prices'] = nsp

    # name prices
    nss = namespaces()
    names = name_variants()
    if mode == 'mainnet':
        id_heights = sorted(set([first_block] + [e + d for e in ends for d in (0, 1)] + [ends[-1] + 100000]))
        other_heights = [first_block, ends[0] + 1, ends[1] + 1, ends[2], ends[2] + 1, ends[4] + 1]
        n_other = 30
    else:
        id_heights = sorted(set([1] + [e + d for e in ends for d in (0, 1)]))
        other_heights = [ends[0], ends[2], ends[2] + 1, ends[4] + 1]
        n_other = 6

    rnd = random.Random(7)
    cases = []
    for nsi, ns in enumerate(nss):
        if nsi == 0 and mode == 'mainnet':
            plan = [(nm, h) for h in id_heights for nm in names]
        elif nsi == 0:
            plan = [(nm, h) for h in id_heights for nm in rnd.sample(names, 40)]
        else:
            plan = []
            for h in other_heights:
                for nm in rnd.sample(names, n_other):
                    plan.append((nm, h))
        for nm, h in plan:
            p = scripts.price_name(nm, ns, h)
            ps = scripts.price_name_stacks(nm, ns, h)
            cases.append([nm, nsi, h, enc(p), enc(ps)])
    out['price_namespaces'] = nss
    out['price_cases'] = cases

    # the fee checks' `paid < price`, int against float or long
    cmp_prices = set()
    for c in cases:
        cmp_prices.add(c[3])
    for v in config.EPOCHS[0]['namespace_prices'][1:] + config.EPOCHS[2]['namespace_prices'][1:]:
        cmp_prices.add(enc(v))
    comparisons = []
    floats = sorted(e for e in cmp_prices if e.startswith('f:'))
    ints = sorted(e for e in cmp_prices if e.startswith('i:'))
    for e in floats[:250] + ints[:150]:
        kind, body = e.split(':', 1)
        price = struct.unpack('>d', body.decode('hex'))[0] if kind == 'f' else long(body)
        base = long(price)
        for paid in (base - 1, base, base + 1):
            if 0 <= paid < 2 ** 64:
                comparisons.append([str(paid), e, paid < price])
    for price in [2.0 ** 53 + 2, 2.0 ** 64, 2.0 ** 64 - 2048, 0.5, 1e30]:
        for paid in (2 ** 53 + 1, 2 ** 53 + 2, 2 ** 53 + 3, 2 ** 64 - 1, 2 ** 64 - 2048, 2 ** 64 - 2049, 0):
            comparisons.append([str(paid), enc(price), paid < price])
    out['comparisons'] = comparisons

    out['keyrings'] = keyrings(config)
    return out


def keyrings(config):
    from blockstack.lib.nameset.namedb import BlockstackDB
    import keylib
    import ecdsa

    out = []
    secrets = [hashlib.sha256('atlas keyring vector %d' % i).digest() for i in xrange(3)]
    for si, secret in enumerate(secrets):
        sk = ecdsa.SigningKey.from_string(secret, curve=ecdsa.SECP256k1)
        xy = sk.get_verifying_key().to_string()
        x, y = xy[:32], xy[32:]
        compressed = ('\x03' if ord(y[-1]) & 1 else '\x02') + x
        uncompressed = '\x04' + xy
        forms = [('compressed', compressed), ('uncompressed', uncompressed)]
        if si == 0:
            # keylib also takes the bare 64 coordinate bytes (hashed as 04 || xy)
            forms.append(('bare64', xy))
        for form, pub in forms:
            if config.NAME_IMPORT_KEYRING_SIZE > 5 and si > 0 and form == 'uncompressed':
                # keep the 300-key vectors small
                continue
            tmp = tempfile.mkdtemp()
            try:
                addrs = BlockstackDB.build_import_keychain(tmp, 'ns', pub.encode('hex'))
            finally:
                shutil.rmtree(tmp)
            out.append({
                'pubkey': pub.encode('hex'),
                'form': form,
                'size': config.NAME_IMPORT_KEYRING_SIZE,
                'version_bytes': sorted(set(keylib.b58check.b58check_version_byte(a) for a in addrs)),
                'hash160s': [keylib.b58check.b58check_decode(a).encode('hex') for a in addrs],
            })
    return out


def main():
    if len(sys.argv) == 3 and sys.argv[1] == '--mode':
        json.dump(generate(sys.argv[2]), sys.stdout, sort_keys=True)
        return

    results = {}
    for mode, env_add in sorted(MODES.items()):
        env = dict((k, v) for k, v in os.environ.items() if not k.startswith('BLOCKSTACK_'))
        env.update(env_add)
        p = subprocess.Popen([sys.executable, os.path.abspath(__file__), '--mode', mode],
                             env=env, stdout=subprocess.PIPE)
        data, _ = p.communicate()
        assert p.returncode == 0, 'mode %s failed' % mode
        results[mode] = json.loads(data)

    params = {}
    price = {}
    keyring = {}
    for mode, r in results.items():
        params[mode] = {
            'constants': r['constants'],
            'epoch_numbers': r['epoch_numbers'],
            'epochs': r['epochs'],
            'namespace_prices': r['namespace_prices'],
        }
        price[mode] = {'namespaces': r['price_namespaces'], 'cases': r['price_cases'],
                       'comparisons': r['comparisons']}
        keyring[mode] = r['keyrings']

    for fname, obj in [('params_vectors.json', params), ('price_vectors.json', price),
                       ('keyring_vectors.json', keyring)]:
        with open(os.path.join(HERE, fname), 'w') as f:
            json.dump(obj, f, sort_keys=True, separators=(',', ':'))
            f.write('\n')


if __name__ == '__main__':
    main()
