//! The store against real redb files.

use super::*;

#[test]
fn refuses_bytes_that_do_not_match_their_hash() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("atlas.redb"), 10).unwrap();
    let good = Bytes::from_static(b"$ORIGIN a.id\n");
    let h = Hash160::of(&good);
    let err = store
        .put_zonefiles(&[(h, good.clone()), (h, Bytes::from_static(b"evil"))])
        .unwrap_err();
    assert!(matches!(err, StoreError::HashMismatch { .. }));
    assert_eq!(
        store.zonefile_count().unwrap(),
        0,
        "nothing of the batch was written"
    );
    store.put_zonefiles(&[(h, good.clone())]).unwrap();
    assert_eq!(store.get_zonefile(&h).unwrap(), Some(good));
}

#[test]
fn pending_inbox_is_bounded_and_fifo() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("atlas.redb"), 3).unwrap();
    let files: Vec<Vec<u8>> = (0..5).map(|i| format!("zone {i}").into_bytes()).collect();
    for f in &files {
        assert_eq!(
            store
                .stash_pending(&Hash160::of(f), f, "ip:10.0.0.1")
                .unwrap(),
            Stashed::Added
        );
    }
    assert_eq!(store.pending_count(), 3);
    let hashes: Vec<Hash160> = files.iter().map(|f| Hash160::of(f)).collect();
    let taken = store.take_pending(&hashes).unwrap();
    let kept: Vec<Hash160> = taken.iter().map(|(h, _)| *h).collect();
    assert_eq!(kept, hashes[2..].to_vec(), "the two oldest were evicted");
    assert_eq!(store.pending_count(), 0);
}

#[test]
fn the_held_index_is_built_for_a_store_without_it_and_kept_in_step() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("atlas.redb");
    let files: Vec<(Hash160, Bytes)> = (0..50)
        .map(|i| {
            let b = Bytes::from(format!("$ORIGIN n{i}.id\n"));
            (Hash160::of(&b), b)
        })
        .collect();
    let mut hashes: Vec<Hash160> = files.iter().map(|(h, _)| *h).collect();
    hashes.sort();
    Store::open(&path, 3)
        .unwrap()
        .put_zonefiles(&files)
        .unwrap();
    for damage in [
        "a store from before the index",
        "files written by an older version",
    ] {
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            if damage.starts_with("a store") {
                txn.delete_table(HELD).unwrap();
            } else {
                txn.open_table(HELD)
                    .unwrap()
                    .remove(hashes[7].0.as_slice())
                    .unwrap();
            }
            txn.commit().unwrap();
        }
        let store = Store::open(&path, 3).unwrap();
        assert_eq!(store.held_hashes().unwrap(), hashes, "{damage}");
        assert!(store.has_zonefile(&hashes[7]).unwrap(), "{damage}");
        assert_eq!(store.zonefile_count().unwrap(), 50, "{damage}");
    }
    // A file gone bad on disk leaves the index when it is dropped.
    let h = hashes[3];
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(ZONEFILES)
            .unwrap()
            .insert(h.0.as_slice(), &b"flipped"[..])
            .unwrap();
        txn.commit().unwrap();
    }
    let store = Store::open(&path, 3).unwrap();
    assert_eq!(store.get_zonefile(&h).unwrap(), None);
    assert_eq!(store.drop_corrupt().unwrap(), vec![h]);
    assert!(!store.has_zonefile(&h).unwrap());
    assert_eq!(store.held_hashes().unwrap().len(), 49);
    drop(store);
    assert_eq!(Store::open(&path, 3).unwrap().zonefile_count().unwrap(), 49);
}

#[test]
fn announcements_rewrite_from_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("atlas.redb");
    let h = |i: u8| Hash160([i; 20]);
    {
        let store = Store::open(&path, 3).unwrap();
        store.set_announcements(0, &[h(1), h(2), h(3)]).unwrap();
        store.set_announcements(1, &[h(9)]).unwrap();
    }
    let store = Store::open(&path, 3).unwrap();
    assert_eq!(store.announcements().unwrap(), vec![h(1), h(9)]);
}
