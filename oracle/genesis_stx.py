# A test-mode genesis block with one token account: 1,000,000 STX, unlocked and spendable at
# once, for the regtest address of the devnet's and the fixtures' miner key (secret 0x42 * 32,
# compressed: mhRETykpmXeTpXYq25x8ZsXZQ2YhejbqHj). From epoch 4 on a NAMESPACE_PREORDER pays its
# fee in STX; this is what it pays from. Pass it as GENESIS=.../genesis_stx.py to run.sh.
MINER = 'mhRETykpmXeTpXYq25x8ZsXZQ2YhejbqHj'
MICRO_STX_PER_STX = 10 ** 6

GENESIS_BLOCK_STAGES = [{
    'history': [],
    'rows': [{
        'address': MINER,
        'type': 'STACKS',
        'value': 1000000 * MICRO_STX_PER_STX,
        'vesting': {},           # nothing vests later
        'vesting_total': 0,
        'lock_send': 0,          # may send from the first block
        'receive_whitelisted': True,
        'metadata': '',
    }],
}]
GENESIS_BLOCK = GENESIS_BLOCK_STAGES[-1]
GENESIS_BLOCK_PATCHES = {}
