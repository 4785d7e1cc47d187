#!/usr/bin/env bash
# oracle/run.sh WORKDIR [--rpc-port P] [--p2p-port Q] [--json OUT] [--stop-block N] [--all-blocks]
#                       [--rpc-host H] [--user U] [--passwd W]
#
# Runs the original BNS indexer (bns_indexer.py in the venv that setup.sh made) over the regtest
# chain whose JSON-RPC is at P and whose P2P (p2p_shim.py) is at Q, from the first block to the
# tip or to block N, and prints its report; --json also writes it as JSON. WORKDIR keeps the
# indexer's state: a second run over the same chain indexes only the new blocks. It does not
# follow reorgs: use a fresh WORKDIR for each chain.
#
# Environment (all optional):
#   BNS_ORACLE_VENV          the venv (default target/bns-oracle/venv)
#   FIRST_BLOCK              first block indexed (default 1)
#   GENESIS                  genesis-block module (default genesis_empty.py beside this script)
#   NAMESPACE_REVEAL_EXPIRE  blocks a revealed namespace has to become ready (default 52595, mainnet's)
#   EPOCH_ENDS               "e1 e2 e3 e4 e5": last blocks of epochs 1-5 (default mainnet's heights)
#   BLOCKSTACK_*             passed through to the indexer (e.g. BLOCKSTACK_EPOCH_n_NAMESPACE_*)
#
# The indexer runs as this script's own process (exec), so its exit status, or the signal that
# ended it (SIGABRT when the original aborts), is this script's.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv=${BNS_ORACLE_VENV:-target/bns-oracle/venv}
if [[ $# -lt 1 || $1 == -* ]]; then
    sed -n '2,3p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
if [[ ! -x $venv/bin/python ]]; then
    echo "oracle/run.sh: no venv at $venv; make it with: $here/setup.sh $venv" >&2
    exit 1
fi

# Test mode: regtest addresses, no confirmations, the test rule parameters (README.md).
export BLOCKSTACK_TEST=1 BLOCKSTACK_TESTNET=1
export PYTHONDONTWRITEBYTECODE=1   # the genesis module is loaded from this directory
export BLOCKSTACK_TEST_FIRST_BLOCK=${FIRST_BLOCK:-1}
export BLOCKSTACK_GENESIS_BLOCK_PATH=${GENESIS:-$here/genesis_empty.py}
export BLOCKSTACK_NAMESPACE_REVEAL_EXPIRE=${NAMESPACE_REVEAL_EXPIRE:-52595}
# Settings that would change the network or the magic bytes rather than the rules: never inherited.
unset BLOCKSTACK_TESTNET3 BLOCKSTACK_TESTNET_ID BLOCKSTACK_PUBLIC_TESTNET BLOCKSTACK_TESTNET_START_BLOCK \
      BLOCKSTACK_CORE_NUM_CONFS

if [[ -n ${EPOCH_ENDS:-} ]]; then
    read -r -a ends <<<"$EPOCH_ENDS"
    if [[ ${#ends[@]} -gt 5 ]]; then
        echo "oracle/run.sh: EPOCH_ENDS has ${#ends[@]} heights; epochs 1-5 have an end" >&2
        exit 2
    fi
    for i in "${!ends[@]}"; do
        if [[ ! ${ends[$i]} =~ ^[0-9]+$ ]]; then
            echo "oracle/run.sh: EPOCH_ENDS: '${ends[$i]}' is not a block height" >&2
            exit 2
        fi
        export "BLOCKSTACK_EPOCH_$((i + 1))_END_BLOCK=${ends[$i]}"
    done
fi
if [[ ! -f $BLOCKSTACK_GENESIS_BLOCK_PATH ]]; then
    echo "oracle/run.sh: no genesis module at $BLOCKSTACK_GENESIS_BLOCK_PATH" >&2
    exit 2
fi

exec "$venv/bin/python" -u "$here/bns_indexer.py" "$@"
