#!/usr/bin/env python2
"""Drives the original BNS indexer over a regtest chain and reports what it decided.

The indexer is blockstack-core 22.0.0.0 with virtualchain 20.0.1.0, as installed from PyPI by
setup.sh. This script starts it the way `blockstack-core start` would, minus the servers: it
writes the node's config into WORKDIR, loads the genesis block, instantiates the name database,
and calls the package's own `index_blockchain` once, up to the chain's tip (or --stop-block).
Then it reads the indexer's databases and writes the report (see README.md for its fields).

run.sh sets the test-mode environment and starts this with the venv's python:

    bns_indexer.py WORKDIR [--rpc-host 127.0.0.1] [--rpc-port 18443] [--p2p-port 18444]
                   [--user atlas] [--passwd atlas] [--stop-block N] [--json OUT] [--all-blocks]

One adaptation, outside every BNS rule: if this interpreter's hashlib has no ripemd160 (pyenv's
Python 2.7 here is built without OpenSSL's _hashlib), `hashlib.new('ripemd160')` is answered by
pycryptodome. It has to be installed before the indexer is imported.
"""
from __future__ import print_function

import argparse
import hashlib
import json
import logging
import os
import pkgutil
import re
import sqlite3
import sys
import time


def provide_ripemd160():
    """Makes hashlib.new('ripemd160') work; True if it had to be supplied."""
    try:
        hashlib.new('ripemd160', b'')
        return False
    except ValueError:
        pass
    from Crypto.Hash import RIPEMD160
    builtin_new = hashlib.new

    def new(name, string=b''):
        if name.lower() != 'ripemd160':
            return builtin_new(name, string)
        h = RIPEMD160.new()
        if string:
            h.update(string)
        return h

    hashlib.new = new
    return True


def parse_args(argv):
    ap = argparse.ArgumentParser(description='Run the original BNS indexer over a regtest chain '
                                             '(start it through run.sh).')
    ap.add_argument('workdir', help='the indexer\'s working directory; a second run resumes there')
    ap.add_argument('--rpc-host', default='127.0.0.1', help='host of the JSON-RPC and of the P2P shim')
    ap.add_argument('--rpc-port', type=int, default=18443, help='bitcoind-style JSON-RPC port')
    ap.add_argument('--p2p-port', type=int, default=18444, help='Bitcoin P2P port (p2p_shim.py)')
    ap.add_argument('--user', default='atlas', help='JSON-RPC user')
    ap.add_argument('--passwd', default='atlas', help='JSON-RPC password')
    ap.add_argument('--stop-block', type=int, default=None, help='index no further than this block')
    ap.add_argument('--json', default=None, metavar='OUT', help='also write the report here, as JSON')
    ap.add_argument('--all-blocks', action='store_true',
                    help='list every block\'s consensus hash, not only those with operations')
    return ap.parse_args(argv)


# The node's configuration: the chain is reached at --rpc-host only (without a [bitcoind] section
# the package would fall back to a public server), Atlas and the API stay off, the Atlas
# hostname is given (otherwise it is looked up over STUN), and rejected operations are recorded.
CONFIG = """\
[bitcoind]
server = {host}
port = {rpc_port}
p2p_port = {p2p_port}
user = {user}
passwd = {passwd}
regtest = True
timeout = 300
spv_path = {workdir}/spv_headers.dat

[blockstack]
server_version = {version}
enabled = True
atlas = False
atlas_seeds =
atlas_hostname = 127.0.0.1
zonefiles = {workdir}/zonefiles
save_rejected = True
backup_frequency = 1000000000

[blockstack-api]
enabled = False
"""


class LogNotes(object):
    """Follows the indexer's log and files each warning of a BNS rule module under what it was
    logged for.

    The indexer processes a block in three passes, each visible in its log: it parses every
    transaction (`db_parse`), pre-scans the parsed operations for collisions (`SCAN BEGIN` ..
    `SCAN END`), then checks and commits them one by one: `CHECK <op> at (<block>, <vtxindex>)`,
    the check's warnings, then `ACCEPT <op> at (...)` or `REJECT <op> at (...)`. `CONSENSUS(<block>)`
    ends the block.

    * A rejected operation's reason: the warnings between its CHECK and its REJECT.
    * A block's own notes: the warnings logged while parsing a transaction whose payload the
      parser dropped (so it never reaches a check), and those outside every pass (e.g. after the
      last verdict).
    * Dropped: warnings of the parse and the pre-scan of operations that go on to be checked
      (their check repeats what matters), and those of accepted operations."""

    CHECK = re.compile(r'CHECK (\S+) at \((\d+), (\d+)\)')
    VERDICT = re.compile(r'(ACCEPT|REJECT) (\S+) at \((\d+), (\d+)\)')
    BLOCK_DONE = re.compile(r'CONSENSUS\((\d+)\)')
    SCAN_BEGINS = re.compile(r'SCAN BEGIN: \d+ ops at block (\d+)')
    KEEP = 300  # characters kept of one warning (some quote whole operations)

    def __init__(self, rule_modules):
        self.rule_modules = frozenset(rule_modules)
        self.pending = []       # warnings since the last boundary
        self.rejected = {}      # (block, vtxindex) -> (op name, [warnings])
        self.block_notes = {}   # block -> [warnings]

    def observe(self, record):
        try:
            text = record.getMessage()
        except Exception:
            return
        m = self.SCAN_BEGINS.match(text)
        if m:
            self.to_block(int(m.group(1)))
            return
        if text.startswith('SCAN END'):
            self.to_nowhere()
            return
        m = self.CHECK.match(text)
        if m:
            self.to_block(int(m.group(2)))
            return
        m = self.VERDICT.match(text)
        if m:
            if m.group(1) == 'REJECT':
                self.rejected[(int(m.group(3)), int(m.group(4)))] = (m.group(2), self.pending)
            self.pending = []
            return
        m = self.BLOCK_DONE.match(text)
        if m:
            self.to_block(int(m.group(1)))
            return
        if record.levelno >= logging.WARNING and record.module in self.rule_modules and text.strip():
            note = text[:self.KEEP]
            if note not in self.pending:
                self.pending.append(note)

    def parse_begins(self, block):
        self.to_block(block)

    def parse_ends(self, block, dropped):
        if dropped:
            self.to_block(block)
        self.to_nowhere()

    def to_block(self, block):
        if self.pending:
            notes = self.block_notes.setdefault(block, [])
            notes.extend(n for n in self.pending if n not in notes)
        self.pending = []

    def to_nowhere(self):
        self.pending = []


def listen_to_every_logger(observer):
    """Shows every log record to the observer. The package's loggers do not propagate, and
    virtualchain.get_logger() strips a logger's handlers whenever it is called, so the hook sits
    in logging.Logger itself rather than in a handler."""
    call_handlers = logging.Logger.callHandlers

    def hooked(logger, record):
        observer(record)
        call_handlers(logger, record)

    logging.Logger.callHandlers = hooked


def watch_parses(hooks, notes):
    """Tells `notes` where each transaction's parse begins and ends, and whether the parser
    dropped it. Observes only: the package's own db_parse runs with the same arguments and its
    result is returned unchanged (virtualchain looks the hook up on the module at each call)."""
    db_parse = hooks.db_parse

    def observed_db_parse(block_id, *args, **kwargs):
        notes.parse_begins(block_id)
        op = None
        try:
            op = db_parse(block_id, *args, **kwargs)
            return op
        finally:
            notes.parse_ends(block_id, dropped=op is None)

    hooks.db_parse = observed_db_parse


def rows(path, query):
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute(query)]
    finally:
        db.close()


def read_verdict(workdir, notes):
    """The report's verdict fields, from the indexer's databases."""
    import virtualchain
    from blockstack.lib.nameset import virtualchain_hooks
    from blockstack.lib.nameset.namedb import BlockstackDB

    names_db = virtualchain.get_db_filename(virtualchain_hooks, workdir)
    snapshots_db = virtualchain.get_snapshots_filename(virtualchain_hooks, workdir)
    metadata_db = os.path.join(workdir, os.path.basename(names_db).replace('.db', '.metadata.db'))
    out = {}

    # every block's consensus hash, the 4 genesis rows below the first block included
    out['consensus'] = rows(snapshots_db, 'SELECT block_id, consensus_hash, ops_hash '
                                          'FROM snapshots ORDER BY block_id')

    # Accepted operations: the history table, plus the preorders nothing has consumed yet, which
    # are committed (and hashed into the consensus hash) but get a history row only when a
    # registration or reveal consumes them.
    accepted = rows(names_db, 'SELECT block_id, vtxindex, txid, opcode AS op, history_id '
                              'FROM history ORDER BY rowid')
    seen = set(a['txid'] for a in accepted)
    for p in rows(names_db, 'SELECT block_number, vtxindex, txid, op, preorder_hash '
                            'FROM preorders ORDER BY rowid'):
        if p['txid'] not in seen:
            accepted.append({'block_id': p['block_number'], 'vtxindex': p['vtxindex'],
                             'txid': p['txid'], 'history_id': p['preorder_hash'],
                             'op': 'NAMESPACE_PREORDER' if p['op'] == '*' else 'NAME_PREORDER'})
    accepted.sort(key=lambda a: (a['block_id'], a['vtxindex']))
    out['accepted'] = accepted

    # Rejected operations as the indexer recorded them (save_rejected), with the name it logged
    # and, where it stored no reason, the warnings logged while checking them.
    rejected = rows(metadata_db, 'SELECT block_id, vtxindex, op, txid, reason '
                                 'FROM rejected ORDER BY block_id, vtxindex')
    for r in rejected:
        opname, warnings = notes.rejected.get((r['block_id'], r['vtxindex']), ('?', []))
        r['opname'] = opname
        r['reason'] = r['reason'] or ' | '.join(warnings)
    out['rejected'] = rejected
    out['block_warnings'] = dict((str(b), w) for b, w in sorted(notes.block_notes.items()))

    out['namespaces'] = rows(names_db, 'SELECT namespace_id, op, reveal_block, ready_block, address, '
                                       'recipient_address, op_fee, token_fee FROM namespaces ORDER BY rowid')
    out['names'] = rows(names_db, 'SELECT name, value_hash, address, block_number, last_renewed, '
                                  'revoked FROM name_records ORDER BY name')

    # The Atlas whitelist, from the same call the original's Atlas builds its inventory with:
    # per block in chain order, the value hashes of its accepted NAME_IMPORT, NAME_REGISTRATION,
    # NAME_RENEWAL and NAME_UPDATE operations, in transaction order.
    inventory = []
    db = BlockstackDB.get_readonly_instance(workdir)
    try:
        for block in sorted(set(a['block_id'] for a in accepted)):
            for z in db.get_atlas_zonefile_info_at(block):
                inventory.append({'block_id': block, 'name': z['name'],
                                  'value_hash': z['value_hash'], 'txid': z['txid']})
    finally:
        db.close()
    out['zonefile_inventory'] = inventory
    return out


def summary(report, versions, all_blocks):
    """The report for a person to read."""
    lines = ['BNS oracle: blockstack-core %s, virtualchain %s, test mode' % versions,
             'indexed up to block %d (first block %d; resumed after %s) in %.2f s; index_blockchain -> %s'
             % (report['indexed_to'], report['first_block'], report['resumed_after'],
                report['index_seconds'], report['index_rc'])]
    busy = set(a['block_id'] for a in report['accepted']) | set(r['block_id'] for r in report['rejected'])
    last = report['consensus'][-1]['block_id'] if report['consensus'] else None
    lines.append('consensus hashes (%s):' % ('every block' if all_blocks else 'blocks with operations, and the last'))
    for c in report['consensus']:
        if all_blocks or c['block_id'] in busy or c['block_id'] == last:
            lines.append('  %7d  %s  ops %s' % (c['block_id'], c['consensus_hash'], c['ops_hash']))
    lines.append('accepted operations (%d):' % len(report['accepted']))
    for a in report['accepted']:
        lines.append('  %7d.%-3d %-20s %-24s %s' % (a['block_id'], a['vtxindex'], a['op'], a['history_id'], a['txid']))
    lines.append('rejected operations (%d):' % len(report['rejected']))
    for r in report['rejected']:
        lines.append('  %7d.%-3d %-20s %s: %s' % (r['block_id'], r['vtxindex'], r['opname'], r['txid'], r['reason']))
    lines.append('warnings outside any operation (%d blocks):' % len(report['block_warnings']))
    for b in sorted(report['block_warnings'], key=int):
        lines.append('  %7s  %s' % (b, ' | '.join(report['block_warnings'][b])))
    lines.append('namespaces (%d):' % len(report['namespaces']))
    for n in report['namespaces']:
        lines.append('  %s' % json.dumps(n, sort_keys=True))
    lines.append('names (%d): name, zone-file hash, owner' % len(report['names']))
    for n in report['names']:
        lines.append('  %s %s %s%s' % (n['name'], n['value_hash'], n['address'], ' (revoked)' if n['revoked'] else ''))
    lines.append('zone-file whitelist (%d), in order:' % len(report['zonefile_inventory']))
    for i, z in enumerate(report['zonefile_inventory']):
        lines.append('  %5d  %7d  %s %s' % (i, z['block_id'], z['value_hash'], z['name']))
    return '\n'.join(lines)


def main(argv):
    args = parse_args(argv)
    if os.environ.get('BLOCKSTACK_TEST') != '1' or os.environ.get('BLOCKSTACK_TESTNET') != '1':
        sys.exit('bns_indexer.py: the indexer must run in test mode; start it through run.sh')
    provide_ripemd160()

    workdir = os.path.abspath(args.workdir)
    if not os.path.isdir(workdir):
        os.makedirs(workdir)

    import virtualchain
    import blockstack.version
    from blockstack.lib import config
    with open(os.path.join(workdir, 'blockstack-server.ini'), 'w') as f:
        f.write(CONFIG.format(host=args.rpc_host, rpc_port=args.rpc_port, p2p_port=args.p2p_port,
                              user=args.user, passwd=args.passwd, workdir=workdir,
                              version=config.VERSION))

    import blockstack.lib.operations
    rule_modules = [m for _, m, _ in pkgutil.iter_modules(blockstack.lib.operations.__path__)]
    notes = LogNotes(rule_modules + ['namedb', 'virtualchain_hooks', 'indexer'])
    listen_to_every_logger(notes.observe)

    # what `blockstack-core start` does before its indexing loop, minus the servers
    from blockstack import blockstackd
    from blockstack.lib.nameset import virtualchain_hooks
    watch_parses(virtualchain_hooks, notes)
    blockstackd.setup(workdir)
    blockstackd.genesis_block_load(workdir)
    config.set_running(True)
    virtualchain_hooks.get_or_instantiate_db_state(workdir).close()

    tip = int(blockstackd.get_bitcoind(new=True).getblockcount())
    last = tip if args.stop_block is None else min(tip, args.stop_block)
    resumed_after = virtualchain.StateEngine.get_lastblock(virtualchain_hooks, workdir)
    server_state = {'working_dir': workdir, 'atlas': None, 'subdomains': None,
                    'subdomains_initialized': False, 'rpc': None}
    started = time.time()
    rc = blockstackd.index_blockchain(server_state, stop_block=last)
    seconds = time.time() - started
    config.set_running(False)

    report = {'first_block': config.FIRST_BLOCK_MAINNET, 'indexed_to': last, 'index_rc': bool(rc),
              'index_seconds': round(seconds, 2), 'resumed_after': resumed_after}
    report.update(read_verdict(workdir, notes))

    print(summary(report, (blockstack.version.__version__, virtualchain.__version__), args.all_blocks))
    sys.stdout.flush()
    if args.json:
        tmp = args.json + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(report, f, indent=1, sort_keys=True)
            f.write('\n')
        os.rename(tmp, args.json)


if __name__ == '__main__':
    main(sys.argv[1:])
