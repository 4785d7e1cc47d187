//! Framing for the request-response protocols: one unsigned-varint-length-
//! prefixed protobuf message each way per stream. The length is checked
//! against the protocol's limit before the body is read.

use std::io;
use std::sync::Arc;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response;

use crate::metrics::Metrics;
use atlas_core::{Protocol, Request, Response};
use atlas_wire as wire;

/// An inbound request that could not be read. libp2p does not report codec
/// errors on inbound streams to the behaviour, so the codec hands the
/// rejection up as a value: the event loop penalizes the sender and drops the
/// stream without answering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected(pub String);

/// What travels through request-response as a request.
pub type InboundRequest = Result<Request, Rejected>;

#[derive(Clone)]
pub struct AtlasCodec {
    metrics: Option<Arc<Metrics>>,
}

impl AtlasCodec {
    pub fn new(metrics: Option<Arc<Metrics>>) -> Self {
        AtlasCodec { metrics }
    }

    fn count(&self, direction: &'static str, p: Protocol, bytes: usize) {
        if let Some(m) = &self.metrics {
            m.count_frame(direction, p.label(), bytes);
        }
    }
}

fn protocol_of(p: &StreamProtocol) -> io::Result<Protocol> {
    wire::protocol_from_name(p.as_ref())
        .ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "unknown atlas protocol"))
}

fn invalid(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Reads one frame, refusing lengths over `limit` before allocating.
pub async fn read_frame<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    limit: usize,
    protocol: Protocol,
) -> io::Result<Vec<u8>> {
    let mut len: u64 = 0;
    let mut byte = [0u8; 1];
    for i in 0..10 {
        io.read_exact(&mut byte).await?;
        len |= u64::from(byte[0] & 0x7f) << (7 * i);
        if byte[0] & 0x80 == 0 {
            if len > limit as u64 {
                return Err(invalid(wire::WireError::TooLarge {
                    protocol: wire::protocol_name(protocol),
                    size: len,
                    limit,
                }));
            }
            let mut buf = vec![0u8; len as usize];
            io.read_exact(&mut buf).await?;
            return Ok(buf);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "frame length varint is too long",
    ))
}

pub async fn write_frame<T: AsyncWrite + Unpin + Send>(io: &mut T, body: &[u8]) -> io::Result<()> {
    let mut header = Vec::with_capacity(10);
    let mut v = body.len() as u64;
    while v >= 0x80 {
        header.push((v as u8) | 0x80);
        v >>= 7;
    }
    header.push(v as u8);
    io.write_all(&header).await?;
    io.write_all(body).await?;
    io.flush().await
}

impl request_response::Codec for AtlasCodec {
    type Protocol = StreamProtocol;
    type Request = InboundRequest;
    type Response = Response;

    async fn read_request<T>(
        &mut self,
        protocol: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<InboundRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let p = protocol_of(protocol)?;
        let buf = match read_frame(io, wire::limits(p).0, p).await {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return Ok(Err(Rejected(e.to_string())));
            }
            Err(e) => return Err(e),
        };
        self.count("in", p, buf.len());
        Ok(wire::decode_request(p, &buf).map_err(|e| Rejected(e.to_string())))
    }

    async fn read_response<T>(
        &mut self,
        protocol: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        let p = protocol_of(protocol)?;
        let buf = read_frame(io, wire::limits(p).1, p).await?;
        self.count("in", p, buf.len());
        wire::decode_response(p, &buf).map_err(invalid)
    }

    async fn write_request<T>(
        &mut self,
        protocol: &StreamProtocol,
        io: &mut T,
        req: InboundRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let p = protocol_of(protocol)?;
        let req = req.map_err(|r| io::Error::new(io::ErrorKind::InvalidInput, r.0))?;
        let body = wire::encode_request(&req);
        self.count("out", p, body.len());
        write_frame(io, &body).await?;
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        protocol: &StreamProtocol,
        io: &mut T,
        res: Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let p = protocol_of(protocol)?;
        let body = wire::encode_response(&res);
        self.count("out", p, body.len());
        write_frame(io, &body).await?;
        io.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_prefix_is_leb128() {
        futures::executor::block_on(async {
            let mut out = Vec::new();
            write_frame(&mut out, &[0u8; 300]).await.unwrap();
            assert_eq!(&out[..2], &[0xac, 0x02]);
            let mut r = futures::io::Cursor::new(out);
            let back = read_frame(&mut r, 300, Protocol::Peers).await.unwrap();
            assert_eq!(back.len(), 300);
        });
    }

    #[test]
    fn oversized_frame_is_refused_before_reading() {
        futures::executor::block_on(async {
            let mut out = Vec::new();
            write_frame(&mut out, &[0u8; 301]).await.unwrap();
            let mut r = futures::io::Cursor::new(out);
            let err = read_frame(&mut r, 300, Protocol::Peers).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            assert!(err.to_string().contains("exceeds"), "{err}");
        });
    }
}
