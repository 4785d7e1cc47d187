#!/usr/bin/env bash
# oracle/setup.sh [VENV]
#
# Makes VENV (default: target/bns-oracle/venv) a Python 2.7 virtualenv holding the original BNS
# indexer, installed unmodified from PyPI at the versions pinned in py2-requirements.txt.
#
# Idempotent: when VENV already holds exactly these requirements it returns at once. Otherwise it
# rebuilds VENV from scratch (about half a minute). The interpreter is pyenv's 2.7.18
# (`PYENV_VERSION=2.7.18 python`), or the one named by $BNS_ORACLE_PYTHON2.
# Progress and pip's chatter go to stderr; nothing goes to stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
requirements=$here/py2-requirements.txt
venv=${1:-target/bns-oracle/venv}
stamp=$venv/.bns-oracle-requirements

say() { echo "oracle/setup.sh: $*" >&2; }

# Fast path: the stamp is written last, after the installed packages imported, so its presence
# with today's requirements means the venv is complete.
if [[ -x $venv/bin/python && -f $stamp ]] && cmp -s "$stamp" "$requirements"; then
    exit 0
fi

# The interpreter to build from. It must really be 2.7: blockstack 22 is Python 2 code.
# Tried in order: $BNS_ORACLE_PYTHON2 if set (and only it), else pyenv's 2.7.18, else a
# python2.7 on the PATH.
is_27='import sys; assert sys.version_info[:2] == (2, 7); print(sys.executable)'
if [[ -n ${BNS_ORACLE_PYTHON2:-} ]]; then
    candidates=("$BNS_ORACLE_PYTHON2")
else
    candidates=("env PYENV_VERSION=2.7.18 python" "python2.7")
fi
python2=""
for c in "${candidates[@]}"; do
    # shellcheck disable=SC2086 # a candidate may be a command with words
    if python2=$($c -c "$is_27" 2>/dev/null); then
        break
    fi
    python2=""
done
if [[ -z $python2 ]]; then
    say "Python 2.7 not found: install pyenv's Python 2.7.18 ('pyenv install 2.7.18', so that 'PYENV_VERSION=2.7.18 python' runs it), put a python2.7 on the PATH, or set BNS_ORACLE_PYTHON2 to one"
    exit 1
fi

# Never delete a directory that is not a (possibly half-built) venv of ours.
if [[ -d $venv && -n $(ls -A "$venv") && ! -e $venv/bin/python && ! -e $venv/.bns-oracle-building ]]; then
    say "$venv exists and is not a virtualenv; refusing to replace it"
    exit 1
fi
rm -rf "$venv"
mkdir -p "$venv"
touch "$venv/.bns-oracle-building"

# Python 2.7 has no `venv` module, so virtualenv builds it. virtualenv itself is fetched into a
# scratch directory (not into the user's site-packages) and thrown away afterwards. 20.15.1 is the
# last release that still runs on Python 2.7; it carries pip, setuptools and wheel for 2.7 inside.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/bns-oracle-setup.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
say "building $venv from $python2"
"$python2" -m pip install -q --disable-pip-version-check --no-warn-script-location \
    --target "$scratch/virtualenv" 'virtualenv==20.15.1' >&2
PYTHONPATH=$scratch/virtualenv "$python2" -m virtualenv -q --no-periodic-update --no-download \
    -p "$python2" "$venv" >&2

"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-warn-script-location \
    -r "$requirements" >&2

# The venv counts as done only once the indexer and the ripemd160 fallback import.
"$venv/bin/python" -c 'import virtualchain, blockstack.lib.config, Crypto.Hash.RIPEMD160' >/dev/null 2>&1 || {
    say "the packages installed but do not import; run: $venv/bin/python -c 'import blockstack.lib.config'"
    exit 1
}
cp "$requirements" "$stamp"
rm -f "$venv/.bns-oracle-building"
say "installed in $venv"
