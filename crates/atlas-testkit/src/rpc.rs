//! A bitcoind-compatible JSON-RPC server over the regtest chain: the subset
//! ElectrumX calls (as read from its sources), with basic auth, so a
//! real ElectrumX can index the chain. Quirks honoured: batches answer in
//! order, every answer has both `result` and `error`, and the content type is
//! exactly `application/json`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use bitcoin::consensus::encode::serialize_hex;
use bitcoin::{BlockHash, Txid};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::regtest::RegtestChain;

#[derive(Clone)]
struct RpcState {
    chain: Arc<Mutex<RegtestChain>>,
    auth: String,
}

/// Serves `chain` on `listen`; requests must carry basic auth `user:pass`.
pub async fn serve(
    listen: SocketAddr,
    chain: Arc<Mutex<RegtestChain>>,
    user: &str,
    pass: &str,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    );
    let app = Router::new()
        .route("/", post(handle))
        .with_state(RpcState { chain, auth });
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("bitcoind RPC server stopped: {e}");
        }
    });
    Ok((addr, task))
}

async fn handle(State(s): State<RpcState>, headers: HeaderMap, body: Bytes) -> Response {
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == s.auth);
    if !authorized {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let reply = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(calls)) => Value::Array(calls.iter().map(|c| call(&s.chain, c)).collect()),
        Ok(single) => call(&s.chain, &single),
        Err(e) => {
            json!({"result": null, "error": {"code": -32700, "message": e.to_string()}, "id": null})
        }
    };
    (
        [(header::CONTENT_TYPE, "application/json")],
        reply.to_string(),
    )
        .into_response()
}

fn call(chain: &Mutex<RegtestChain>, req: &Value) -> Value {
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let method = req.get("method").and_then(Value::as_str).unwrap_or("");
    let empty = Vec::new();
    let params = req
        .get("params")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let chain = chain.lock().expect("chain lock");
    match dispatch(&chain, method, params) {
        Ok(result) => json!({"result": result, "error": null, "id": id}),
        Err((code, message)) => {
            json!({"result": null, "error": {"code": code, "message": message}, "id": id})
        }
    }
}

type RpcResult = Result<Value, (i64, String)>;

fn param<'a>(params: &'a [Value], i: usize, method: &str) -> Result<&'a Value, (i64, String)> {
    params
        .get(i)
        .ok_or((-8, format!("{method}: missing parameter {i}")))
}

fn dispatch(chain: &RegtestChain, method: &str, params: &[Value]) -> RpcResult {
    let height = chain.height() as u64;
    match method {
        "getblockcount" => Ok(json!(height)),
        "getbestblockhash" => Ok(json!(chain.tip_hash().to_string())),
        "getblockhash" => {
            let h = param(params, 0, method)?
                .as_u64()
                .ok_or((-8, "height must be an integer".into()))?;
            chain
                .block(h as usize)
                .map(|b| json!(b.block_hash().to_string()))
                .ok_or((-8, "Block height out of range".into()))
        }
        "getblock" => {
            let hash: BlockHash = param(params, 0, method)?
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or((-8, "blockhash must be hex".into()))?;
            let block = (0..=chain.height())
                .filter_map(|h| chain.block(h))
                .find(|b| b.block_hash() == hash)
                .ok_or((-5, "Block not found".into()))?;
            Ok(json!(serialize_hex(block)))
        }
        "getrawtransaction" => {
            let txid: Txid = param(params, 0, method)?
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or((-8, "txid must be hex".into()))?;
            let verbose = params
                .get(1)
                .is_some_and(|v| v.as_bool() == Some(true) || v.as_u64().is_some_and(|n| n > 0));
            let (tx, h, _) = chain
                .find_tx(&txid)
                .ok_or((-5, "No such mempool or blockchain transaction".into()))?;
            let hex = serialize_hex(tx);
            if !verbose {
                return Ok(json!(hex));
            }
            let block = chain.block(h).expect("found in a block");
            Ok(json!({
                "hex": hex,
                "txid": txid.to_string(),
                "hash": tx.compute_wtxid().to_string(),
                "size": hex.len() / 2,
                "blockhash": block.block_hash().to_string(),
                "confirmations": height - h as u64 + 1,
                "time": block.header.time,
                "blocktime": block.header.time,
                "vout": tx.output.iter().enumerate().map(|(n, o)| json!({
                    "n": n,
                    "value": o.value.to_btc(),
                    "scriptPubKey": {"hex": o.script_pubkey.to_hex_string()},
                })).collect::<Vec<_>>(),
            }))
        }
        "getnetworkinfo" => Ok(json!({
            "version": 310000,
            "subversion": "/atlas-regtest:0.1.0/",
            "protocolversion": 70016,
            "relayfee": 0.00001,
            "incrementalfee": 0.00001,
            "connections": 0,
            "networkactive": true,
            "warnings": "",
        })),
        "getindexinfo" => Ok(json!({
            "txindex": {"synced": true, "best_block_height": height},
            "txospenderindex": {"synced": true, "best_block_height": height},
        })),
        "getblockchaininfo" => Ok(json!({
            "chain": "regtest",
            "blocks": height,
            "headers": height,
            "bestblockhash": chain.tip_hash().to_string(),
            "initialblockdownload": false,
            "pruned": false,
        })),
        "getrawmempool" => Ok(json!([])),
        "getmempoolinfo" => Ok(json!({
            "loaded": true, "size": 0, "bytes": 0,
            "mempoolminfee": 0.00001, "minrelaytxfee": 0.00001, "incrementalrelayfee": 0.00001,
        })),
        "estimatesmartfee" => Ok(
            json!({"feerate": 0.0001, "blocks": params.first().and_then(Value::as_u64).unwrap_or(2)}),
        ),
        other => Err((-32601, format!("Method not found: {other}"))),
    }
}
