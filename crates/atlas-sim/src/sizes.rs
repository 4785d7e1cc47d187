//! Zone-file sizes as they occur on chain: (bytes, how many) over the
//! 1644 real BNS zone files in `crates/atlas-testkit/data/bns/zonefiles.jsonl`. Mostly
//! ~135 bytes, with a few multi-kilobyte outliers up to 34,776 bytes.

use rand::Rng;

const CORPUS_SIZES: &[(u32, u32)] = &[
    (77, 3),
    (80, 1),
    (81, 1),
    (97, 1),
    (126, 1),
    (127, 7),
    (128, 20),
    (129, 34),
    (130, 60),
    (131, 79),
    (132, 130),
    (133, 192),
    (134, 219),
    (135, 187),
    (136, 168),
    (137, 134),
    (138, 77),
    (139, 69),
    (140, 63),
    (141, 44),
    (142, 27),
    (143, 24),
    (144, 7),
    (145, 9),
    (146, 11),
    (147, 3),
    (148, 2),
    (149, 6),
    (150, 3),
    (151, 2),
    (152, 2),
    (153, 1),
    (155, 1),
    (156, 1),
    (161, 1),
    (191, 1),
    (312, 2),
    (313, 1),
    (317, 2),
    (318, 1),
    (319, 1),
    (321, 1),
    (322, 1),
    (323, 2),
    (326, 2),
    (330, 1),
    (332, 1),
    (333, 1),
    (344, 1),
    (386, 1),
    (387, 1),
    (399, 1),
    (466, 1),
    (472, 3),
    (477, 3),
    (482, 4),
    (486, 1),
    (487, 3),
    (492, 6),
    (497, 3),
    (633, 1),
    (656, 1),
    (716, 1),
    (732, 1),
    (1232, 1),
    (2043, 1),
    (3998, 1),
    (34762, 1),
    (34776, 1),
];

/// A size drawn like the corpus.
pub fn draw(rng: &mut impl Rng) -> usize {
    let total: u32 = CORPUS_SIZES.iter().map(|(_, n)| n).sum();
    let mut pick = rng.random_range(0..total);
    for (size, n) in CORPUS_SIZES {
        if pick < *n {
            return *size as usize;
        }
        pick -= n;
    }
    unreachable!("pick is below the total")
}
