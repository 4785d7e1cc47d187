//! The bitcoind-compatible JSON-RPC server: the transport rules ElectrumX
//! depends on, checked over a real TCP connection.

use std::sync::{Arc, Mutex};

use atlas_testkit::regtest::RegtestChain;
use atlas_testkit::rpc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn post(addr: std::net::SocketAddr, auth: Option<&str>, body: &str) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = auth
        .map(|a| {
            use base64::Engine;
            format!(
                "Authorization: Basic {}\r\n",
                base64::engine::general_purpose::STANDARD.encode(a)
            )
        })
        .unwrap_or_default();
    let req = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let ctype = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("content-type:"))
        .map(|l| l.split_once(':').unwrap().1.trim().to_string())
        .unwrap_or_default();
    (status, ctype, body.to_string())
}

#[tokio::test]
async fn auth_batches_and_errors_follow_what_electrumx_expects() {
    let mut chain = RegtestChain::new();
    chain.mine_empty(3);
    let tip = chain.tip_hash().to_string();
    let chain = Arc::new(Mutex::new(chain));
    let (addr, _task) = rpc::serve("127.0.0.1:0".parse().unwrap(), chain, "atlas", "atlas")
        .await
        .unwrap();

    let (status, _, _) = post(
        addr,
        Some("atlas:wrong"),
        r#"{"method":"getblockcount","id":1}"#,
    )
    .await;
    assert_eq!(status, 401);
    let (status, _, _) = post(addr, None, r#"{"method":"getblockcount","id":1}"#).await;
    assert_eq!(status, 401);

    let (status, ctype, body) = post(
        addr,
        Some("atlas:atlas"),
        r#"{"method":"getblockcount","id":1}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        ctype, "application/json",
        "exactly, or ElectrumX retries forever"
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["result"], 3);
    assert!(
        v.get("error").is_some_and(|e| e.is_null()),
        "error: null is required"
    );

    let batch = r#"[{"method":"getblockhash","params":[3],"id":7},{"method":"getblockhash","params":[0],"id":8},{"method":"nosuch","id":9},{"method":"getblock","params":["00","false"],"id":10}]"#;
    let (_, _, body) = post(addr, Some("atlas:atlas"), batch).await;
    let v: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(v.len(), 4, "one answer per call, in order");
    assert_eq!(v[0]["result"], tip);
    assert_eq!(
        v[1]["result"], "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",
        "regtest genesis"
    );
    assert_eq!(v[2]["error"]["code"], -32601);
    assert!(v[3]["error"]["code"].is_i64());

    let (_, _, body) = post(addr, Some("atlas:atlas"), r#"{"method":"getblock","params":["0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",false],"id":2}"#).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["result"].as_str().unwrap().len(),
        285 * 2,
        "the 285-byte regtest genesis block"
    );
    let (_, _, body) = post(
        addr,
        Some("atlas:atlas"),
        r#"{"method":"getindexinfo","id":3}"#,
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["result"]["txindex"].is_object() && v["result"]["txospenderindex"].is_object());
    let (_, _, body) = post(
        addr,
        Some("atlas:atlas"),
        r#"{"method":"getnetworkinfo","id":4}"#,
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["result"]["version"].as_u64().unwrap() >= 310000);
}
