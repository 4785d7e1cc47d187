#!/usr/bin/env python2
"""
Generate the test vectors for crates/bns-rules/src/txparse.rs by running the
original indexer's own functions (virtualchain 20.0.1.0, blockstack 22.0.0.0)
in the oracle's Python 2.7 venv.

Usage (from the repository root):

    target/bns-oracle/venv/bin/python crates/bns-rules/src/testdata/gen_txparse_vectors.py

virtualchain picks the address version bytes and the bech32 prefix from the
environment at import time, so this script re-runs itself once for mainnet
(BLOCKSTACK_TEST=1) and once for the oracle's test mode (BLOCKSTACK_TEST=1
BLOCKSTACK_TESTNET=1), then merges both into txparse.json next to it.

What is called:
  * scripts: bits.btc_script_classify, keys.btc_script_hex_to_address,
    bits.btc_tx_output_parse_script (what add_sender_info stores as a sender),
    blockstack check_tx_output_types / check_tx_sender_types at one height
    per epoch;
  * nulldata, txid, txindex: a block built here is fed to
    BlockchainDownloader.handle_block (the P2P block path), which keeps each
    tx's nulldata or drops the tx;
  * public keys: virtualchain.BitcoinPublicKey(...).address() and blockstack
    get_public_key_hex_from_tx on btc_tx_deserialize(tx)['ins'];
  * base58check: keylib.b58check.b58check_unpack.
"""

import hashlib
import json
import os
import random
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, 'txparse.json')

# pyenv's Python 2.7 here lacks OpenSSL's ripemd160, which hash160 needs;
# serve it from pycryptodome (the oracle does the same).
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
    'main': {'BLOCKSTACK_TEST': '1'},
    'test': {'BLOCKSTACK_TEST': '1', 'BLOCKSTACK_TESTNET': '1'},
}

P = 2 ** 256 - 2 ** 32 - 977
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def h(b):
    return b.encode('hex')


def push(data):
    if len(data) <= 75:
        return chr(len(data)) + data
    if len(data) < 256:
        return '\x4c' + chr(len(data)) + data
    return '\x4d' + struct.pack('<H', len(data)) + data


def varint(n):
    if n < 0xfd:
        return chr(n)
    if n <= 0xffff:
        return '\xfd' + struct.pack('<H', n)
    return '\xfe' + struct.pack('<I', n)


def point(k):
    import ecdsa
    sk = ecdsa.SigningKey.from_secret_exponent(k, curve=ecdsa.SECP256k1)
    raw = sk.get_verifying_key().to_string()
    return int(raw[:32].encode('hex'), 16), int(raw[32:].encode('hex'), 16)


def be32(x):
    return ('%064x' % x).decode('hex')


def comp(x, y):
    return chr(2 + (y & 1)) + be32(x)


def uncomp(x, y, prefix='\x04'):
    return prefix + be32(x) + be32(y)


def is_qr(v):
    return pow(v % P, (P - 1) // 2, P) == 1


def first_x(start, want_qr):
    x = start
    while is_qr(x ** 3 + 7) != want_qr:
        x += 1
    return x


def sqrt_y(x):
    y = pow((x ** 3 + 7) % P, (P + 1) // 4, P)
    assert (y * y - x ** 3 - 7) % P == 0
    return y


SIG = '\x30\x44' + '\x02\x20' + '\x11' * 32 + '\x02\x20' + '\x22' * 32 + '\x01'


def pubkey_candidates():
    """Push payloads a scriptSig may carry where a public key goes."""
    x1, y1 = point(1)
    x2, y2 = point(2)
    x3, y3 = point(3)
    x4, y4 = point(4)
    bad_x = first_x(5, False)
    high_x = first_x(N, True)  # n <= x < p, on the curve
    return [
        comp(x1, y1), uncomp(x1, y1), comp(x2, y2), uncomp(x2, y2),
        be32(x3) + be32(y3),              # 64 raw bytes (hex length 128)
        comp(x4, y4),
        chr(5 - (y1 & 1)) + be32(x1),     # wrong parity byte: other y
        '\x05' + be32(x1),                # bad prefix
        '\x02' + be32(bad_x),             # x off the curve
        '\x02' + be32(high_x),            # n <= x < p
        '\x02' + be32(P + 1),             # x >= p
        uncomp(x2, (y2 + 1) % P),         # y off the curve
        uncomp(x2, y2, '\x06' if y2 % 2 == 0 else '\x07'),  # hybrid
        '\x04' + be32(P + 1) + be32(y1),   # uncompressed, x >= p
        '\x04' + be32(x3) + be32(y3)[:-1],  # 64 bytes but starts with 04
        be32(x3)[:32],                    # 32 bytes: hex length 64 (binary branch)
        '', '\x02', '\x21' * 33, '\x04' * 65,
        uncomp(high_x, sqrt_y(high_x)),
    ]


def odd_key_strings():
    """Non-hex strings keylib sniffs as binary keys by their length."""
    rnd = random.Random(33)
    while True:
        x = ''.join(chr(rnd.randrange(0x21, 0x7f)) for _ in range(32))
        if is_qr(int(x.encode('hex'), 16) ** 3 + 7):
            break
    x1, y1 = point(1)
    return ['\x02' + x, '\x03' + x, '\x04' + x + x, 'z' * 66, '0x' + comp(x1, y1).encode('hex')[:64],
            comp(x1, y1).encode('hex').upper(), uncomp(x1, y1).encode('hex').upper()]


def p2pkh(hh):
    return '\x76\xa9\x14' + hh + '\x88\xac'


def p2sh(hh):
    return '\xa9\x14' + hh + '\x87'


def script_cases():
    x1, y1 = point(1)
    c1 = comp(x1, y1)
    u1 = uncomp(x1, y1)
    h20 = '\x33' * 20
    h32 = '\x44' * 32
    payload = 'id?' + '\x55' * 37
    s = [
        p2pkh(h20), p2pkh('\x00' * 20), p2pkh(h20)[:-1], p2pkh(h20) + '\x00',
        p2pkh(h20)[:-1] + '\xad', '\x76\xa9\x15' + h20 + '\x88\xac',
        p2sh(h20), p2sh(h20)[:-1], p2sh(h20) + '\x87', p2sh(h20)[:-1] + '\x88',
        '\x00\x14' + h20, '\x00\x14' + h20[:-1], '\x00\x14' + h20 + '\x00',
        '\x00\x20' + h32, '\x00\x20' + h32[:-1], '\x00\x20' + h32 + '\x00',
        '\x00\x15' + h20 + '\x00', '\x51\x20' + h32, '\x00\x14' + '\x88\xac' * 10,
        # OP_RETURN forms
        '\x6a', '\x6a\x00', '\x6a' + push(payload), '\x6a\x4c\x00',
        '\x6a\x4c\x03abc', '\x6a\x4d\x03\x00abc', '\x6a\x4e\x03\x00\x00\x00abc',
        '\x6a\x4c' + chr(80) + 'id' + '\x77' * 78, '\x6a' + push('x' * 300),
        '\x6a\x05ab', '\x6a\x4c', '\x6a\x4d\x05', '\x6a\x4e\x01\x00', '\x6a\x4c\x05ab',
        '\x6a\x4d\x02\x00ab\x51', '\x6a\x4c\x01\x00', '\x6a\x4e\x02\x00\x00\x00ab',
        '\x4e\x01\x00\x00\x00a\xac', '\x4d\x01\x00\xae\xae',
        '\x6a\x52', '\x6a\x4f', '\x6a\x50', '\x6a\x60', '\x6a\x61', '\x6a\x6a',
        '\x6a\x01a\x6a', '\x6a\x01a\x01b', '\x6a\x02id\x00', '\x6a\x01\xac',
        '\x6a\xac', '\x6a' + push(c1) + '\xac', '\x6a\xae', '\x6a\x01a\xae',
        # multisig and p2pk
        '\x51' + push(c1) + push(u1) + '\x52\xae', '\xae', '\x00\xae', '\x01\xae',
        '\x52\x21' + c1[:10], push(c1) + '\xac', push(u1) + '\xac', '\x51\xac',
        '\x00\xac', '\xac', '\x01\xac\xac', push(c1) + '\xac\xac', '\x61\xac',
        '\x01\xac',
        # nonstandard
        '', '\x00', '\x51', '\x76\xa9', '\xff', '\x4c', '\x4d\x01',
        '\x76\xa9\x14' + h20 + '\x88', push(c1),
    ]
    # short random scripts drawn mostly from the opcodes the parser treats
    # specially, with an OP_RETURN in front of every other one
    rnd = random.Random(20)
    special = [0, 1, 2, 3, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f, 0x50, 0x51, 0x60, 0x61, 0x6a, 0xac, 0xae, 0xff]
    for i in range(40):
        body = ''.join(chr(rnd.choice(special) if rnd.random() < 0.6 else rnd.randrange(256))
                       for _ in range(rnd.randrange(1, 9)))
        s.append(('\x6a' if i % 2 == 0 else '') + body)
    return s


def blk_tx(ins, outs, version=1, locktime=0):
    """ins: [(prev_hash_bin, index, scriptsig)]; outs: [(value, script)]"""
    b = struct.pack('<I', version) + varint(len(ins))
    for (ph, idx, ss) in ins:
        b += ph + struct.pack('<I', idx) + varint(len(ss)) + ss + '\xff\xff\xff\xff'
    b += varint(len(outs))
    for (v, sc) in outs:
        b += struct.pack('<q', v) + varint(len(sc)) + sc
    return b + struct.pack('<I', locktime)


def prev(n):
    return hashlib.sha256('prev%d' % n).digest()


def block_txs():
    """Every tx of the block handed to handle_block, coinbase first."""
    sink = p2pkh('\x66' * 20)
    magic = 'id?' + '\x01' * 20
    txs = [
        # coinbase with a witness-commitment style OP_RETURN
        blk_tx([('\x00' * 32, 0xffffffff, '\x03\x01\x02\x03')],
               [(5000000000, sink), (0, '\x6a\x24\xaa\x21\xa9\xed' + '\x99' * 32)]),
    ]
    n = [0]

    def tx(outs, nin=1):
        n[0] += 1
        ins = [(prev(n[0] * 10 + i), i, push('s')) for i in range(nin)]
        txs.append(blk_tx(ins, outs))

    for sc in script_cases():
        tx([(1000, sc)])
    # several OP_RETURN outputs: the last one decides
    tx([(0, '\x6a' + push(magic)), (0, '\x6a' + push('later'))])
    tx([(0, '\x6a' + push(magic)), (0, '\x6a\x52')])
    tx([(0, '\x6a' + push(magic)), (0, '\x6a')])
    tx([(0, '\x6a' + push(magic)), (0, '\x6a\x00')])
    tx([(0, '\x6a\x52'), (0, '\x6a' + push(magic))])
    tx([(0, '\x6a'), (5, sink), (0, '\x6a\x4c\x00'), (7, sink)])
    tx([(5, sink), (0, '\x6a' + push(magic)), (7, sink), (0, '\x6a\x01\x00\x01\x00')])
    tx([(0, '\x6a' + push(magic)), (0, '\x6a' + push(magic + 'z'))], nin=3)
    tx([(1, sink)])
    tx([])
    return txs


def lookup_txs():
    """Txs whose scriptSigs get_public_key_hex_from_tx searches."""
    x1, y1 = point(1)
    x2, y2 = point(2)
    c = pubkey_candidates()
    sink = p2pkh('\x66' * 20)
    redeem = '\x52' + push(comp(x1, y1)) + push(comp(x2, y2)) + '\x52\xae'
    scriptsigs = [
        [push(SIG) + push(comp(x1, y1)), push(SIG) + push(uncomp(x2, y2))],
        [push(SIG) + push(uncomp(x1, y1)), push(SIG) + push(comp(x1, y1))],
        [push(SIG), push(SIG) + push(comp(x1, y1)) + push('x'), push(SIG) + '\x51',
         push(SIG) + '\x00', push(SIG) + '\x4c\x21' + comp(x2, y2),
         push(SIG) + push(c[4])],
        [push(SIG) + push(p) for p in c[6:]] + [push(SIG) + push(c[5])],
        ['\x00' + push(SIG) + push(SIG) + push(redeem), '\x00' + push(SIG) + push(redeem),
         push(SIG) + push(redeem), push(SIG) + '\x21' + comp(x2, y2)[:10]],
        ['\x00' + push(comp(x1, y1)), push(comp(x1, y1)) + push(comp(x2, y2))],
        [push(SIG) + push(c[9]), push(SIG) + push(c[15]), push(SIG) + push(c[20])],
        [''],
    ]
    out = []
    for i, sigs in enumerate(scriptsigs):
        ins = [(prev(1000 + i * 10 + j), j, ss) for j, ss in enumerate(sigs)]
        out.append(blk_tx(ins, [(1, sink)]))
    return out


def addr_both(pk_hex):
    import keylib
    res = []
    for vb in (0, 111):
        try:
            res.append(keylib.ECPublicKey(pk_hex, version_byte=vb).address())
        except Exception:
            pass
    return res


def b58_cases():
    import keylib
    hh = '\x12' * 20
    enc = keylib.b58check.b58check_encode
    good = [enc(hh, 0), enc(hh, 5), enc(hh, 111), enc(hh, 196), enc('\x00' * 20, 0),
            enc(hh, 42), enc(hh[:19], 0), enc(hh + '\x01', 0), enc('', 0)]
    bad = [good[0][:-1] + ('2' if good[0][-1] != '2' else '3'), good[0][:-1], good[0] + '0',
           'l' + good[0][1:], '', '1', '11111111111111111111111111114oLvT2']
    return good + bad


def child(mode):
    import binascii
    from StringIO import StringIO
    import virtualchain
    from virtualchain.lib import merkle
    from virtualchain.lib.blockchain.bitcoin_blockchain import bits, keys, blocks
    import keylib
    import blockstack.lib.config as bsconfig
    import blockstack.lib.scripts as bsscripts
    from protocoin.serializers import BlockSerializer

    heights = [bsconfig.EPOCHS[i]['end_block'] for i in range(5)]
    heights.append(heights[-1] + 1)
    for i, ht in enumerate(heights):
        assert bsconfig.get_epoch_number(ht) == i
    res = {'mode': mode}

    def sender(sc_hex):
        info = bits.btc_tx_output_parse_script(sc_hex)
        return {'script_pubkey': sc_hex, 'script_type': info['type'],
                'addresses': info.get('addresses', [])}

    def epochs_ok(fn, items):
        return [i + 1 for i, ht in enumerate(heights) if fn(items, ht)]

    res['epochs'] = dict((str(i + 1), {'output': bsconfig.EPOCHS[i]['script_types'],
                                        'sender': bsconfig.EPOCHS[i]['sender_types']})
                         for i in range(6))

    scripts = []
    for sc in script_cases():
        sh = h(sc)
        snd = sender(sh)
        scripts.append({
            'hex': sh,
            'class': bits.btc_script_classify(sh),
            'tokens': keys.btc_script_deserialize(sh),
            'addr': keys.btc_script_hex_to_address(sh),
            'sender_type': snd['script_type'],
            'sender_addresses': snd['addresses'],
            'output_ok': epochs_ok(bsscripts.check_tx_output_types, [{'script': sh}]),
            'sender_ok': epochs_ok(bsscripts.check_tx_sender_types, [snd]),
        })
    res['scripts'] = scripts

    lists = []
    pkh, sh, wpkh, wsh = h(p2pkh('\x33' * 20)), h(p2sh('\x33' * 20)), '0014' + '33' * 20, '0020' + '44' * 32
    for scs in [[pkh, sh], [pkh, sh, '6a00'], [pkh, wpkh], [wpkh, pkh], [], [pkh, pkh, pkh],
                [wsh, sh], [pkh, '51ac'], [sh, '6a', pkh], ['', pkh]]:
        lists.append({
            'scripts': scs,
            'output_ok': epochs_ok(bsscripts.check_tx_output_types, [{'script': s} for s in scs]),
            'sender_ok': epochs_ok(bsscripts.check_tx_sender_types, [sender(s) for s in scs]),
        })
    res['type_lists'] = lists

    # the P2P block path: handle_block keeps the txs with usable nulldata
    txs = block_txs()
    raw = struct.pack('<I', 1) + '\x00' * 32 + '\x00' * 32 + struct.pack('<III', 0, 0, 0)
    raw += varint(len(txs)) + ''.join(txs)
    block = BlockSerializer().deserialize(StringIO(raw))
    bhash = block.calculate_hash()
    mroot = merkle.MerkleTree([t.calculate_hash() for t in block.txns]).root()
    dl = blocks.BlockchainDownloader.__new__(blocks.BlockchainDownloader)
    dl.block_info = {bhash: {'height': 700000, 'header': {'merkle_root': mroot}, 'txns': None,
                             'handled': False}}
    dl.sender_info = {}
    dl.num_blocks_requested = 2
    dl.num_blocks_received = 0
    dl.num_txs_processed = 0
    dl.tx_filter = None
    dl.handle_block(None, block)
    kept = dict((t['txindex'], t) for t in dl.block_info[bhash]['txns'])
    btxs = []
    for i, t in enumerate(txs):
        k = kept.get(i)
        if k is not None:
            # db_parse's raw_tx sanity check
            d = bits.btc_tx_deserialize(k['hex'])
            again = bits.btc_tx_serialize({'ins': k['ins'], 'outs': k['outs'],
                                           'locktime': d['locktime'], 'version': d['version']})
            assert again == k['hex'] == h(t)
        btxs.append({'hex': h(t), 'txid': block.txns[i].calculate_hash(),
                     'nulldata': None if k is None else k['nulldata']})
    res['block_txs'] = btxs

    pks = []
    for pk in [h(c) for c in pubkey_candidates()] + odd_key_strings():
        try:
            addr = virtualchain.BitcoinPublicKey(pk).address()
        except Exception:
            addr = None
        pks.append({'hex': pk, 'addr': addr})
    res['pubkeys'] = pks

    lookups = []
    for t in lookup_txs():
        ins = bits.btc_tx_deserialize(h(t))['ins']
        addrs = []
        for inp in ins:
            for tok in keys.btc_script_deserialize(inp['script']):
                if isinstance(tok, str):
                    addrs.extend(a for a in addr_both(tok) if a not in addrs)
        addrs.append(keylib.b58check.b58check_encode('\x12' * 20, 0))
        qs = [{'addr': a, 'found': bsscripts.get_public_key_hex_from_tx(ins, a)} for a in addrs]
        lookups.append({'tx': h(t), 'queries': qs})
    res['pubkey_lookups'] = lookups

    b58 = []
    for a in b58_cases():
        try:
            vb, payload, _ = keylib.b58check.b58check_unpack(a)
            b58.append({'addr': a, 'version': ord(vb), 'payload': h(payload)})
        except Exception:
            b58.append({'addr': a, 'version': None, 'payload': None})
    res['b58'] = b58
    return res


def merge(main, test):
    out = {'epochs': test['epochs'], 'scripts': [], 'type_lists': test['type_lists'],
           'block_txs': test['block_txs'], 'pubkeys': [], 'pubkey_lookups': [],
           'b58': test['b58']}
    assert main['block_txs'] == test['block_txs']
    for m, t in zip(main['scripts'], test['scripts']):
        assert m['class'] == t['class'] and m['sender_type'] == t['sender_type']
        assert m['tokens'] == t['tokens']
        assert m['output_ok'] == t['output_ok'] and m['sender_ok'] == t['sender_ok']
        row = dict(t)
        row['addr'] = {'main': m['addr'], 'test': t['addr']}
        row['sender_addresses'] = {'main': m['sender_addresses'], 'test': t['sender_addresses']}
        out['scripts'].append(row)
    for m, t in zip(main['pubkeys'], test['pubkeys']):
        out['pubkeys'].append({'hex': t['hex'], 'main': m['addr'], 'test': t['addr']})
    for m, t in zip(main['pubkey_lookups'], test['pubkey_lookups']):
        qs = [{'addr': qm['addr'], 'main': qm['found'], 'test': qt['found']}
              for qm, qt in zip(m['queries'], t['queries'])]
        out['pubkey_lookups'].append({'tx': t['tx'], 'queries': qs})
    return out


def main():
    if len(sys.argv) == 3 and sys.argv[1] == '--child':
        sys.stdout.write(json.dumps(child(sys.argv[2])))
        return
    got = {}
    for mode, env in MODES.items():
        e = dict((k, v) for k, v in os.environ.items() if not k.startswith('BLOCKSTACK_'))
        e.update(env)
        p = subprocess.Popen([sys.executable, os.path.abspath(__file__), '--child', mode],
                             env=e, stdout=subprocess.PIPE, stderr=open(os.devnull, 'w'))
        data, _ = p.communicate()
        assert p.returncode == 0, 'child %s failed' % mode
        got[mode] = json.loads(data)
    out = merge(got['main'], got['test'])
    with open(OUT, 'w') as f:
        json.dump(out, f, sort_keys=True, separators=(',', ':'))
        f.write('\n')
    print 'wrote %s: %d scripts, %d block txs, %d pubkeys, %d lookup txs, %d b58' % (
        OUT, len(out['scripts']), len(out['block_txs']), len(out['pubkeys']),
        len(out['pubkey_lookups']), len(out['b58']))


if __name__ == '__main__':
    main()
