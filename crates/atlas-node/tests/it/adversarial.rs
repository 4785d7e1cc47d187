//! Lying and broken peers, over real libp2p sockets: a peer that serves bytes
//! with the wrong hash is banned and the file comes from elsewhere; oversized
//! and malformed frames are refused without harming the node.

use crate::common;

use std::time::Duration;

use atlas_core::inventory::RangeSet;
use atlas_core::zonefile::Hash160;
use atlas_core::{ChainView, Request, Response};
use atlas_node::net::behaviour::{Behaviour, BehaviourEvent, Limits};
use atlas_node::net::codec::write_frame;
use atlas_node::net::{self, NodeConfig};
use atlas_node::whitelist::MemoryWhitelist;
use bytes::Bytes;
use common::*;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, noise, tcp, yamux};

fn swarm<B: NetworkBehaviour>(make: impl FnOnce(&libp2p::identity::Keypair) -> B) -> Swarm<B> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|k| make(k))
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

async fn listen<B: NetworkBehaviour>(s: &mut Swarm<B>) -> Multiaddr {
    s.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .unwrap();
    loop {
        if let SwarmEvent::NewListenAddr { address, .. } = s.select_next_some().await {
            return address;
        }
    }
}

/// A peer that speaks the Atlas protocols, claims to hold every zone file,
/// and serves garbage instead.
fn spawn_liar(mut s: Swarm<Behaviour>, whitelist: &[Hash160]) {
    // Its view is the true one (views are public): only its holdings lie.
    let claim = whitelist.len() as u64;
    let mut tip = [0u8; 20];
    let all: Vec<u8> = whitelist.iter().flat_map(|h| h.0).collect();
    tip.copy_from_slice(&<sha2::Sha256 as sha2::Digest>::digest(&all)[..20]);
    tokio::spawn(async move {
        loop {
            let SwarmEvent::Behaviour(ev) = s.select_next_some().await else {
                continue;
            };
            let (req, channel, p) = match ev {
                BehaviourEvent::Peers(request_response::Event::Message {
                    message:
                        request_response::Message::Request {
                            request: Ok(request),
                            channel,
                            ..
                        },
                    ..
                }) => (request, channel, 0),
                BehaviourEvent::Inv(request_response::Event::Message {
                    message:
                        request_response::Message::Request {
                            request: Ok(request),
                            channel,
                            ..
                        },
                    ..
                }) => (request, channel, 1),
                BehaviourEvent::Zonefiles(request_response::Event::Message {
                    message:
                        request_response::Message::Request {
                            request: Ok(request),
                            channel,
                            ..
                        },
                    ..
                }) => (request, channel, 2),
                BehaviourEvent::Push(request_response::Event::Message {
                    message:
                        request_response::Message::Request {
                            request: Ok(request),
                            channel,
                            ..
                        },
                    ..
                }) => (request, channel, 3),
                _ => continue,
            };
            let view = ChainView { length: claim, tip };
            let resp = match req {
                Request::PeerExchange { .. } => Response::Peers {
                    view,
                    peers: vec![],
                    degree: 0,
                },
                Request::Inventory { .. } => Response::Inventory {
                    view,
                    inventory: RangeSet::full(claim),
                    ancestry: vec![],
                },
                Request::InventoryDelta { .. } => Response::Ack,
                Request::GetZonefiles { hashes, .. } => Response::Zonefiles {
                    zonefiles: hashes
                        .iter()
                        .map(|h| Bytes::from(format!("forged {h}\n")))
                        .collect(),
                    missing: vec![],
                },
                Request::Push { .. } => Response::PushAck {
                    accepted: 0,
                    prune: false,
                },
            };
            let b = s.behaviour_mut();
            let target = match p {
                0 => &mut b.peers,
                1 => &mut b.inv,
                2 => &mut b.zonefiles,
                _ => &mut b.push,
            };
            let _ = target.send_response(channel, resp);
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_serving_wrong_hashes_is_banned_and_files_come_from_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let files = zonefiles(50);
    let hashes: Vec<Hash160> = files.iter().map(|(h, _)| *h).collect();
    let whitelist = MemoryWhitelist::new();
    whitelist.announce(&hashes);

    let mut liar = swarm(|k| {
        Behaviour::new(
            k,
            None,
            Limits {
                max_connections: 64,
                max_per_peer: 2,
                max_pending: 16,
                max_pending_per_ip: 16,
                max_inbound_streams: 256,
            },
            Duration::from_secs(10),
        )
    });
    let liar_addr = listen(&mut liar).await;
    let liar_id = *liar.local_peer_id();
    spawn_liar(liar, &hashes);

    // The victim knows only the liar at first.
    let mut cfg = NodeConfig::new(dir.path().join("victim"));
    cfg.core = test_core();
    cfg.seeds = vec![(liar_id, liar_addr)];
    let victim = net::spawn(cfg, Box::new(whitelist.clone())).await.unwrap();
    let v = &victim.handle;
    wait(v, "the liar is penalized", Duration::from_secs(60), |s| {
        s.penalties >= 1
    })
    .await;
    let peers = v.peers().await.unwrap();
    let liar_info = peers
        .iter()
        .find(|p| p.peer_id == liar_id.to_string())
        .unwrap();
    assert!(
        liar_info.banned,
        "a wrong-hash file bans the peer: {liar_info:?}"
    );
    assert_eq!(
        v.store.zonefile_count().unwrap(),
        0,
        "no forged bytes were stored"
    );

    // An honest holder appears; the victim fetches everything from it.
    let mut hcfg = NodeConfig::new(dir.path().join("honest"));
    hcfg.core = test_core();
    let victim_addr = v.seed_addr().unwrap();
    let mut victim_seed = victim_addr.clone();
    let Some(libp2p::multiaddr::Protocol::P2p(victim_id)) = victim_seed.pop() else {
        panic!()
    };
    hcfg.seeds = vec![(victim_id, victim_seed)];
    let honest = net::spawn(hcfg, Box::new(whitelist.clone())).await.unwrap();
    for (_, b) in &files {
        honest.handle.put_zonefile(b.clone().into()).await.unwrap();
    }
    wait(
        v,
        "victim gets every file from the honest peer",
        Duration::from_secs(120),
        |s| s.present == 50,
    )
    .await;
    for (h, b) in &files {
        assert_eq!(
            v.store.get_zonefile(h).unwrap().unwrap().as_ref(),
            b.as_slice()
        );
    }
    let scraped = scrape(v);
    assert!(metric(&scraped, "atlas_penalties_total{reason=\"wrong_hash\"}") >= 1.0);
    honest.shutdown().await;
    victim.shutdown().await;
}

/// Writes raw bytes on an Atlas protocol, bypassing our own codec's checks.
#[derive(Clone, Default)]
struct RawCodec;

impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Vec<u8>> {
        let mut v = Vec::new();
        io.read_to_end(&mut v).await?;
        Ok(v)
    }
    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Vec<u8>> {
        let mut v = Vec::new();
        io.take(8 << 20).read_to_end(&mut v).await?;
        if v.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "stream closed without a reply",
            ));
        }
        Ok(v)
    }
    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> std::io::Result<()> {
        io.write_all(&req).await?;
        io.close().await
    }
    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> std::io::Result<()> {
        io.write_all(&res).await?;
        io.close().await
    }
}

async fn raw_request(
    s: &mut Swarm<request_response::Behaviour<RawCodec>>,
    peer: PeerId,
    addr: &Multiaddr,
    bytes: Vec<u8>,
) -> Result<Vec<u8>, String> {
    let id = s
        .behaviour_mut()
        .send_request_with_addresses(&peer, bytes, vec![addr.clone()]);
    loop {
        match s.select_next_some().await {
            SwarmEvent::Behaviour(request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            }) if request_id == id => return Ok(response),
            SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                request_id,
                error,
                ..
            }) if request_id == id => {
                return Err(error.to_string());
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_frames_are_refused_and_the_node_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let files = zonefiles(3);
    let whitelist = MemoryWhitelist::new();
    whitelist.announce(&files.iter().map(|(h, _)| *h).collect::<Vec<_>>());
    let mut cfg = NodeConfig::new(dir.path().join("node"));
    cfg.core = test_core();
    let node = net::spawn(cfg, Box::new(whitelist)).await.unwrap();
    let h = &node.handle;
    for (_, b) in &files {
        h.put_zonefile(b.clone().into()).await.unwrap();
    }
    wait(h, "listening", Duration::from_secs(10), |s| {
        !s.listen_addrs.is_empty()
    })
    .await;
    let mut addr = h.seed_addr().unwrap();
    addr.pop();
    let tcp_addr: Multiaddr = h
        .status
        .borrow()
        .listen_addrs
        .iter()
        .find(|a| a.contains("/tcp/"))
        .unwrap()
        .parse()
        .unwrap();

    let mut client = swarm(|_| {
        request_response::Behaviour::<RawCodec>::new(
            [(
                StreamProtocol::new("/atlas/zonefiles/1"),
                ProtocolSupport::Outbound,
            )],
            request_response::Config::default().with_request_timeout(Duration::from_secs(10)),
        )
    });

    // A frame header claiming 100 MB: refused before any body is read.
    let mut huge = Vec::new();
    let mut v: u64 = 100 << 20;
    while v >= 0x80 {
        huge.push((v as u8) | 0x80);
        v >>= 7;
    }
    huge.push(v as u8);
    huge.extend_from_slice(&[0u8; 64]);
    assert!(
        raw_request(&mut client, h.peer_id, &tcp_addr, huge)
            .await
            .is_err()
    );

    // A well-framed body that is not protobuf.
    let mut junk = Vec::new();
    write_frame(&mut junk, &[0xff; 40]).await.unwrap();
    assert!(
        raw_request(&mut client, h.peer_id, &tcp_addr, junk)
            .await
            .is_err()
    );

    // A valid request still gets a valid answer: this client never asked to
    // be a neighbour, so the answer is "busy" (only neighbours fetch).
    let req = atlas_wire::encode_request(&Request::GetZonefiles {
        hashes: vec![files[0].0, Hash160([9; 20])],
        graft: false,
    });
    let mut framed = Vec::new();
    write_frame(&mut framed, &req).await.unwrap();
    let reply = raw_request(&mut client, h.peer_id, &tcp_addr, framed)
        .await
        .expect("node still serves");
    let body = atlas_node::net::codec::read_frame(
        &mut futures::io::Cursor::new(reply),
        1 << 23,
        atlas_core::Protocol::Zonefiles,
    )
    .await
    .unwrap();
    assert_eq!(
        atlas_wire::decode_response(atlas_core::Protocol::Zonefiles, &body).unwrap(),
        Response::Busy
    );
    wait(
        h,
        "both bad frames penalized",
        Duration::from_secs(10),
        |s| s.penalties >= 2,
    )
    .await;
    node.shutdown().await;
}
