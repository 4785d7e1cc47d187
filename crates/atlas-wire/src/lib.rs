//! The wire encoding: the protobuf messages of `proto/atlas.proto`, written out
//! with prost's derive (no protoc needed), and their mapping to the core's types.
//! Decoding validates everything: hash lengths, peer ids, addresses, inventories.

use bytes::Bytes;
use libp2p_identity::PeerId;
use multiaddr::Multiaddr;
use prost::Message;

use atlas_core::inventory::{InventoryError, RangeSet};
use atlas_core::zonefile::{Hash160, MAX_ZONEFILE_BYTES};
use atlas_core::{ChainView, DeltaView, PeerRecord, Protocol, Request, Response};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    #[error("protobuf: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("inventory: {0}")]
    Inventory(#[from] InventoryError),
    #[error("bad {what}: {detail}")]
    Invalid { what: &'static str, detail: String },
    #[error("frame of {size} bytes exceeds the {limit}-byte limit of {protocol}")]
    TooLarge {
        protocol: &'static str,
        size: u64,
        limit: usize,
    },
}

fn invalid(what: &'static str, detail: impl ToString) -> WireError {
    WireError::Invalid {
        what,
        detail: detail.to_string(),
    }
}

/// Frame size limits, (request, response), checked before a body is read.
pub fn limits(protocol: Protocol) -> (usize, usize) {
    match protocol {
        Protocol::Peers => (64 << 10, 64 << 10),
        Protocol::Inventory => (1 << 20, 4 << 20),
        Protocol::Zonefiles => (8 << 10, (4 << 20) + (512 << 10)),
        Protocol::Push => (256 << 10, 1 << 10),
    }
}

pub fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Peers => "/atlas/peers/1",
        Protocol::Inventory => "/atlas/inv/1",
        Protocol::Zonefiles => "/atlas/zonefiles/1",
        Protocol::Push => "/atlas/push/1",
    }
}

pub fn protocol_from_name(name: &str) -> Option<Protocol> {
    Protocol::ALL
        .into_iter()
        .find(|p| protocol_name(*p) == name)
}

#[derive(Clone, PartialEq, Message)]
pub struct PbChainView {
    #[prost(uint64, tag = "1")]
    pub length: u64,
    #[prost(bytes = "vec", tag = "2")]
    pub tip: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PbPeerRecord {
    #[prost(bytes = "vec", tag = "1")]
    pub peer_id: Vec<u8>,
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub addrs: Vec<Vec<u8>>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PeerExchangeRequest {
    #[prost(message, optional, tag = "1")]
    pub view: Option<PbChainView>,
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub listen_addrs: Vec<Vec<u8>>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PeerExchangeResponse {
    #[prost(message, optional, tag = "1")]
    pub view: Option<PbChainView>,
    #[prost(message, repeated, tag = "2")]
    pub peers: Vec<PbPeerRecord>,
    #[prost(uint32, tag = "3")]
    pub degree: u32,
}

#[derive(Clone, PartialEq, Message)]
pub struct InventoryRequest {
    #[prost(message, optional, tag = "1")]
    pub view: Option<PbChainView>,
    #[prost(bool, tag = "2")]
    pub delta: bool,
    #[prost(bytes = "vec", tag = "3")]
    pub added: Vec<u8>,
    /// As `InventoryResponse.ancestry`: after the sender's whitelist rolled back.
    #[prost(bytes = "vec", repeated, tag = "4")]
    pub ancestry: Vec<Vec<u8>>,
    /// In a delta instead of `view`: "the same as yours", the sender's
    /// length and the first 4 bytes of its tip.
    #[prost(uint64, tag = "5")]
    pub matching_length: u64,
    #[prost(bytes = "vec", tag = "6")]
    pub matching_tip: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct InventoryResponse {
    #[prost(message, optional, tag = "1")]
    pub view: Option<PbChainView>,
    #[prost(bool, tag = "2")]
    pub ack: bool,
    #[prost(bytes = "vec", tag = "3")]
    pub inventory: Vec<u8>,
    /// Tag 4 means "busy" in every response that can carry it.
    #[prost(bool, tag = "4")]
    pub busy: bool,
    /// Digests of the sender's whitelist at lengths len - 2^i (20 bytes each).
    #[prost(bytes = "vec", repeated, tag = "5")]
    pub ancestry: Vec<Vec<u8>>,
}

#[derive(Clone, PartialEq, Message)]
pub struct GetZonefilesRequest {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub hashes: Vec<Vec<u8>>,
    #[prost(bool, tag = "2")]
    pub graft: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct GetZonefilesResponse {
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub zonefiles: Vec<Bytes>,
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub missing: Vec<Vec<u8>>,
    #[prost(bool, tag = "4")]
    pub busy: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct PushRequest {
    #[prost(message, optional, tag = "1")]
    pub view: Option<PbChainView>,
    #[prost(bytes = "bytes", repeated, tag = "2")]
    pub zonefiles: Vec<Bytes>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PushResponse {
    #[prost(uint32, tag = "1")]
    pub accepted: u32,
    #[prost(bool, tag = "2")]
    pub prune: bool,
}

fn view_to(v: &ChainView) -> Option<PbChainView> {
    Some(PbChainView {
        length: v.length,
        tip: v.tip.to_vec(),
    })
}

/// At most one digest per bit of a 64-bit length, each 20 bytes.
fn ancestry_from(digests: Vec<Vec<u8>>) -> Result<Vec<[u8; 20]>, WireError> {
    if digests.len() > 64 {
        return Err(invalid(
            "ancestry",
            format!("{} digests, at most 64", digests.len()),
        ));
    }
    digests
        .into_iter()
        .map(|d| {
            <[u8; 20]>::try_from(d.as_slice())
                .map_err(|_| invalid("ancestry digest", format!("{} bytes, not 20", d.len())))
        })
        .collect()
}

fn view_from(v: Option<PbChainView>) -> Result<ChainView, WireError> {
    let v = v.ok_or_else(|| invalid("view", "missing"))?;
    let tip = v
        .tip
        .as_slice()
        .try_into()
        .map_err(|_| invalid("view tip", format!("{} bytes, not 20", v.tip.len())))?;
    Ok(ChainView {
        length: v.length,
        tip,
    })
}

fn addrs_to(addrs: &[Multiaddr]) -> Vec<Vec<u8>> {
    addrs.iter().map(|a| a.to_vec()).collect()
}

fn addrs_from(raw: Vec<Vec<u8>>) -> Result<Vec<Multiaddr>, WireError> {
    if raw.len() > 16 {
        return Err(invalid(
            "addresses",
            format!("{} given, at most 16", raw.len()),
        ));
    }
    raw.into_iter()
        .map(|b| Multiaddr::try_from(b).map_err(|e| invalid("multiaddr", e)))
        .collect()
}

fn hashes_from(raw: Vec<Vec<u8>>) -> Result<Vec<Hash160>, WireError> {
    raw.iter()
        .map(|b| Hash160::from_slice(b).map_err(|e| invalid("hash", e)))
        .collect()
}

fn files_checked(files: Vec<Bytes>) -> Result<Vec<Bytes>, WireError> {
    if let Some(f) = files.iter().find(|f| f.len() > MAX_ZONEFILE_BYTES) {
        return Err(invalid("zone file", format!("{} bytes", f.len())));
    }
    Ok(files)
}

pub fn encode_request(req: &Request) -> Vec<u8> {
    match req {
        Request::PeerExchange { view, listen_addrs } => PeerExchangeRequest {
            view: view_to(view),
            listen_addrs: addrs_to(listen_addrs),
        }
        .encode_to_vec(),
        Request::Inventory { view, ancestry } => InventoryRequest {
            view: view_to(view),
            delta: false,
            added: Vec::new(),
            ancestry: ancestry.iter().map(|d| d.to_vec()).collect(),
            matching_length: 0,
            matching_tip: Vec::new(),
        }
        .encode_to_vec(),
        Request::InventoryDelta { view, added } => {
            let (view, matching_length, matching_tip) = match view {
                DeltaView::Full(v) => (view_to(v), 0, Vec::new()),
                DeltaView::Matching { length, tip_prefix } => (None, *length, tip_prefix.to_vec()),
            };
            InventoryRequest {
                view,
                delta: true,
                added: added.encode(),
                ancestry: Vec::new(),
                matching_length,
                matching_tip,
            }
            .encode_to_vec()
        }
        Request::GetZonefiles { hashes, graft } => GetZonefilesRequest {
            hashes: hashes.iter().map(|h| h.0.to_vec()).collect(),
            graft: *graft,
        }
        .encode_to_vec(),
        Request::Push { view, zonefiles } => PushRequest {
            view: view_to(view),
            zonefiles: zonefiles.clone(),
        }
        .encode_to_vec(),
    }
}

/// Bytes `encode_request` would produce, plus the varint frame header;
/// computed without copying payloads (the simulator's accounting).
pub fn request_len(req: &Request) -> usize {
    let body = match req {
        Request::GetZonefiles { hashes, graft } => {
            hashes.len() * (2 + 20) + 2 * usize::from(*graft)
        }
        Request::Push { view, zonefiles } => {
            PushRequest {
                view: view_to(view),
                zonefiles: Vec::new(),
            }
            .encoded_len()
                + files_len(zonefiles)
        }
        // Small messages: encoding them is cheap.
        other => encode_request(other).len(),
    };
    framed(body)
}

/// Bytes `encode_response` would produce, plus the frame header.
pub fn response_len(resp: &Response) -> usize {
    let body = match resp {
        Response::Zonefiles { zonefiles, missing } => files_len(zonefiles) + missing.len() * 22,
        other => encode_response(other).len(),
    };
    framed(body)
}

/// A repeated `bytes` field's encoding: tag, length, payload per entry.
fn files_len(files: &[bytes::Bytes]) -> usize {
    files
        .iter()
        .map(|f| 1 + prost::encoding::encoded_len_varint(f.len() as u64) + f.len())
        .sum()
}

fn framed(body: usize) -> usize {
    prost::encoding::encoded_len_varint(body as u64) + body
}

pub fn decode_request(protocol: Protocol, bytes: &[u8]) -> Result<Request, WireError> {
    Ok(match protocol {
        Protocol::Peers => {
            let m = PeerExchangeRequest::decode(bytes)?;
            Request::PeerExchange {
                view: view_from(m.view)?,
                listen_addrs: addrs_from(m.listen_addrs)?,
            }
        }
        Protocol::Inventory => {
            let m = InventoryRequest::decode(bytes)?;
            if m.delta {
                let view = match (m.view, m.matching_tip.len()) {
                    (None, 4) => DeltaView::Matching {
                        length: m.matching_length,
                        tip_prefix: m.matching_tip[..].try_into().expect("4 bytes"),
                    },
                    (view, _) => DeltaView::Full(view_from(view)?),
                };
                Request::InventoryDelta {
                    view,
                    added: RangeSet::decode(&m.added)?,
                }
            } else {
                Request::Inventory {
                    view: view_from(m.view)?,
                    ancestry: ancestry_from(m.ancestry)?,
                }
            }
        }
        Protocol::Zonefiles => {
            let m = GetZonefilesRequest::decode(bytes)?;
            if m.hashes.len() > 100 {
                return Err(invalid(
                    "request",
                    format!("{} hashes, at most 100", m.hashes.len()),
                ));
            }
            Request::GetZonefiles {
                hashes: hashes_from(m.hashes)?,
                graft: m.graft,
            }
        }
        Protocol::Push => {
            let m = PushRequest::decode(bytes)?;
            Request::Push {
                view: view_from(m.view)?,
                zonefiles: files_checked(m.zonefiles)?,
            }
        }
    })
}

pub fn encode_response(resp: &Response) -> Vec<u8> {
    match resp {
        Response::Peers {
            view,
            peers,
            degree,
        } => PeerExchangeResponse {
            view: view_to(view),
            peers: peers
                .iter()
                .map(|r| PbPeerRecord {
                    peer_id: r.peer.to_bytes(),
                    addrs: addrs_to(&r.addrs),
                })
                .collect(),
            degree: *degree,
        }
        .encode_to_vec(),
        Response::Inventory {
            view,
            inventory,
            ancestry,
        } => InventoryResponse {
            view: view_to(view),
            ack: false,
            inventory: inventory.encode(),
            busy: false,
            ancestry: ancestry.iter().map(|d| d.to_vec()).collect(),
        }
        .encode_to_vec(),
        Response::Ack => InventoryResponse {
            view: None,
            ack: true,
            inventory: Vec::new(),
            busy: false,
            ancestry: Vec::new(),
        }
        .encode_to_vec(),
        // Only field 4, so it decodes as "busy" under either protocol.
        Response::Busy => InventoryResponse {
            view: None,
            ack: false,
            inventory: Vec::new(),
            busy: true,
            ancestry: Vec::new(),
        }
        .encode_to_vec(),
        Response::Zonefiles { zonefiles, missing } => GetZonefilesResponse {
            zonefiles: zonefiles.clone(),
            missing: missing.iter().map(|h| h.0.to_vec()).collect(),
            busy: false,
        }
        .encode_to_vec(),
        Response::PushAck { accepted, prune } => PushResponse {
            accepted: *accepted,
            prune: *prune,
        }
        .encode_to_vec(),
    }
}

pub fn decode_response(protocol: Protocol, bytes: &[u8]) -> Result<Response, WireError> {
    Ok(match protocol {
        Protocol::Peers => {
            let m = PeerExchangeResponse::decode(bytes)?;
            if m.peers.len() > 128 {
                return Err(invalid(
                    "peer list",
                    format!("{} peers, at most 128", m.peers.len()),
                ));
            }
            let peers = m
                .peers
                .into_iter()
                .map(|r| {
                    Ok(PeerRecord {
                        peer: PeerId::from_bytes(&r.peer_id).map_err(|e| invalid("peer id", e))?,
                        addrs: addrs_from(r.addrs)?,
                    })
                })
                .collect::<Result<Vec<_>, WireError>>()?;
            // A sample cannot be larger than what it samples; 0 is "the sample is all".
            let degree = m.degree.max(peers.len() as u32);
            Response::Peers {
                view: view_from(m.view)?,
                peers,
                degree,
            }
        }
        Protocol::Inventory => {
            let m = InventoryResponse::decode(bytes)?;
            if m.busy {
                Response::Busy
            } else if m.ack {
                Response::Ack
            } else {
                Response::Inventory {
                    view: view_from(m.view)?,
                    inventory: RangeSet::decode(&m.inventory)?,
                    ancestry: ancestry_from(m.ancestry)?,
                }
            }
        }
        Protocol::Zonefiles => {
            let m = GetZonefilesResponse::decode(bytes)?;
            if m.busy {
                Response::Busy
            } else {
                Response::Zonefiles {
                    zonefiles: files_checked(m.zonefiles)?,
                    missing: hashes_from(m.missing)?,
                }
            }
        }
        Protocol::Push => {
            let m = PushResponse::decode(bytes)?;
            Response::PushAck {
                accepted: m.accepted,
                prune: m.prune,
            }
        }
    })
}

#[cfg(test)]
mod tests;
