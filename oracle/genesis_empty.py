# A test-mode genesis block with nothing in it: no token accounts, no history, no patches.
# run.sh hands its path to the indexer as BLOCKSTACK_GENESIS_BLOCK_PATH (the default); the
# indexer loads it with imp.load_source and reads the three names below.
GENESIS_BLOCK_STAGES = [{'history': [], 'rows': []}]
GENESIS_BLOCK = GENESIS_BLOCK_STAGES[-1]
GENESIS_BLOCK_PATCHES = {}
