//! A minimal HTTP/1.1 client for the CLI and tests: one request per
//! connection, which is all `atlas status` and `atlas zonefile` need.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("URL must look like http://host:port[/path], got `{0}`")]
    Url(String),
    #[error("connecting to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("talking to {0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0} did not answer within {1:?}")]
    Timeout(String, Duration),
    #[error("malformed HTTP response from {0}")]
    Malformed(String),
}

#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Splits `http://host:port/path` into (`host:port`, `/path`).
fn split_url(url: &str) -> Result<(String, String), ClientError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| ClientError::Url(url.to_string()))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if host.is_empty() {
        return Err(ClientError::Url(url.to_string()));
    }
    Ok((host.to_string(), path.to_string()))
}

pub async fn request(
    method: &str,
    url: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<HttpResponse, ClientError> {
    let (host, path) = split_url(url)?;
    let work = async {
        let mut s = TcpStream::connect(&host)
            .await
            .map_err(|e| ClientError::Connect(host.clone(), e))?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let io = |e| ClientError::Io(host.clone(), e);
        s.write_all(head.as_bytes()).await.map_err(io)?;
        s.write_all(body).await.map_err(io)?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.map_err(io)?;
        parse(&host, &raw)
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| ClientError::Timeout(host_of(url), timeout))?
}

fn host_of(url: &str) -> String {
    split_url(url).map(|(h, _)| h).unwrap_or_default()
}

fn parse(host: &str, raw: &[u8]) -> Result<HttpResponse, ClientError> {
    let bad = || ClientError::Malformed(host.to_string());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(bad)?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| bad())?;
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(bad)?;
    let mut body = raw[split + 4..].to_vec();
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if chunked {
        body = dechunk(&body).ok_or_else(bad)?;
    }
    Ok(HttpResponse { status, body })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_str = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_str.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

pub async fn get(url: &str) -> Result<HttpResponse, ClientError> {
    request("GET", url, &[], Duration::from_secs(30)).await
}

pub async fn post(url: &str, body: &[u8]) -> Result<HttpResponse, ClientError> {
    request("POST", url, body, Duration::from_secs(30)).await
}
