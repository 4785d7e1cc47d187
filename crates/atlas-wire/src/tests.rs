#[test]
fn computed_lengths_match_the_encodings() {
    use atlas_core::inventory::RangeSet;
    let view = ChainView {
        length: 7,
        tip: [3; 20],
    };
    let files = vec![
        Bytes::from_static(b"$ORIGIN a.id\n"),
        Bytes::from(vec![b'x'; 300]),
    ];
    let h = Hash160([9; 20]);
    let requests = [
        Request::PeerExchange {
            view,
            listen_addrs: vec!["/ip4/1.2.3.4/tcp/6264".parse().unwrap()],
        },
        Request::Inventory {
            view,
            ancestry: vec![[3; 20]],
        },
        Request::InventoryDelta {
            view: DeltaView::Full(view),
            added: RangeSet::full(40),
        },
        Request::InventoryDelta {
            view: DeltaView::Matching {
                length: 40,
                tip_prefix: [7, 8, 9, 10],
            },
            added: RangeSet::full(40),
        },
        Request::GetZonefiles {
            hashes: vec![h; 3],
            graft: false,
        },
        Request::GetZonefiles {
            hashes: vec![h; 2],
            graft: true,
        },
        Request::Push {
            view,
            zonefiles: files.clone(),
        },
    ];
    for r in &requests {
        let body = encode_request(r).len();
        assert_eq!(
            request_len(r),
            body + prost::encoding::encoded_len_varint(body as u64),
            "{r:?}"
        );
    }
    let responses = [
        Response::Zonefiles {
            zonefiles: files,
            missing: vec![h; 2],
        },
        Response::Ack,
        Response::PushAck {
            accepted: 3,
            prune: false,
        },
        Response::PushAck {
            accepted: 0,
            prune: true,
        },
        Response::Busy,
    ];
    for r in &responses {
        let body = encode_response(r).len();
        assert_eq!(
            response_len(r),
            body + prost::encoding::encoded_len_varint(body as u64),
            "{r:?}"
        );
    }
}

use super::*;

#[test]
fn requests_round_trip() {
    let view = ChainView {
        length: 42,
        tip: [7; 20],
    };
    let reqs = vec![
        Request::PeerExchange {
            view,
            listen_addrs: vec!["/ip4/127.0.0.1/tcp/1".parse().unwrap()],
        },
        Request::Inventory {
            view,
            ancestry: vec![],
        },
        Request::InventoryDelta {
            view: DeltaView::Full(view),
            added: RangeSet::full(9),
        },
        Request::GetZonefiles {
            hashes: vec![Hash160([1; 20])],
            graft: true,
        },
        Request::Push {
            view,
            zonefiles: vec![Bytes::from_static(b"$ORIGIN x\n")],
        },
    ];
    for r in reqs {
        let back = decode_request(r.protocol(), &encode_request(&r)).unwrap();
        assert_eq!(back, r);
    }
}

#[test]
fn responses_round_trip() {
    let view = ChainView::default();
    let cases = vec![
        (
            Protocol::Peers,
            Response::Peers {
                view,
                peers: vec![PeerRecord {
                    peer: PeerId::random(),
                    addrs: vec![],
                }],
                degree: 17,
            },
        ),
        (
            Protocol::Inventory,
            Response::Inventory {
                view,
                inventory: RangeSet::full(3),
                ancestry: vec![[7; 20], [8; 20]],
            },
        ),
        (Protocol::Inventory, Response::Ack),
        (
            Protocol::Zonefiles,
            Response::Zonefiles {
                zonefiles: vec![Bytes::from_static(b"z")],
                missing: vec![Hash160([2; 20])],
            },
        ),
        (
            Protocol::Push,
            Response::PushAck {
                accepted: 3,
                prune: false,
            },
        ),
        (
            Protocol::Push,
            Response::PushAck {
                accepted: 0,
                prune: true,
            },
        ),
        (Protocol::Inventory, Response::Busy),
        (Protocol::Zonefiles, Response::Busy),
    ];
    for (p, r) in cases {
        assert_eq!(decode_response(p, &encode_response(&r)).unwrap(), r);
    }
}

#[test]
fn a_degree_below_the_sample_is_the_sample_size() {
    let peers: Vec<PeerRecord> = (0..3)
        .map(|_| PeerRecord {
            peer: PeerId::random(),
            addrs: vec![],
        })
        .collect();
    // 0 is what a peer that predates the field sends.
    for sent in [0, 2] {
        let r = Response::Peers {
            view: ChainView::default(),
            peers: peers.clone(),
            degree: sent,
        };
        match decode_response(Protocol::Peers, &encode_response(&r)).unwrap() {
            Response::Peers { degree, .. } => assert_eq!(degree, 3),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    for p in Protocol::ALL {
        assert!(decode_request(p, &[0xff, 0xff, 0xff]).is_err());
        assert!(decode_response(p, &[0x0a, 0x05, 1]).is_err());
    }
    let bad_hash = GetZonefilesRequest {
        hashes: vec![vec![1, 2, 3]],
        graft: false,
    }
    .encode_to_vec();
    assert!(decode_request(Protocol::Zonefiles, &bad_hash).is_err());
}
