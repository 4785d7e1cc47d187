//! What the tests check: the libraries the binary lacks, the config's API
//! address and data_dir, `GET /v1/status`, who owns the node's files.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::dockerfile::{ImageConfig, Stage};
use super::host::tail;
use super::{DOCKERFILE, START_TIMEOUT};
use crate::common::host_tool;

/// Lines of `ldd` that say something is not found: libraries the image
/// lacks, or symbol versions its libc lacks.
pub(super) fn missing_libraries(ldd: &Output) -> Vec<String> {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&ldd.stdout),
        String::from_utf8_lossy(&ldd.stderr)
    );
    if text.contains("not a dynamic executable") || text.contains("statically linked") {
        return Vec::new();
    }
    assert!(
        ldd.status.success() || text.contains("not found"),
        "ldd failed in the image ({}):\n{text}",
        ldd.status
    );
    text.lines()
        .filter(|l| l.contains("not found"))
        .map(|l| l.trim().split(" => ").next().unwrap().trim().to_string())
        .collect()
}

pub(super) fn missing_message(
    stage: &Stage,
    image: &ImageConfig,
    binary: &Path,
    missing: &[String],
    start: &str,
) -> String {
    // Which Debian package has each library, from the host that built it.
    let host = Command::new("ldd")
        .arg(binary)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let named: Vec<String> = missing
        .iter()
        .map(|lib| {
            let package = host
                .lines()
                .find_map(|l| {
                    l.trim()
                        .strip_prefix(lib.as_str())?
                        .trim()
                        .strip_prefix("=> ")
                })
                .and_then(|p| p.split_whitespace().next())
                .and_then(|p| {
                    let name = Path::new(p).file_name()?.to_string_lossy().into_owned();
                    let out = Command::new("dpkg")
                        .args(["-S", &format!("*/{name}")])
                        .output()
                        .ok()?;
                    let text = String::from_utf8_lossy(&out.stdout).into_owned();
                    Some(text.lines().next()?.split(':').next()?.to_string())
                });
            match package {
                Some(p) => format!("{lib} (Debian package {p})"),
                None => lib.clone(),
            }
        })
        .collect();
    format!(
        "the image cannot start the node: {} (copied to {} by {DOCKERFILE}) needs what {} (mmdebstrap --variant=minbase) \
         does not have and the runtime stage does not install:\n  {}\n{start}\nThe binary the image runs must not link them \
         (the atlas binary links no font library), or the runtime stage must install them.",
        binary.display(),
        image.binary_path(),
        stage.from,
        named.join("\n  ")
    )
}

/// A TOML string: top-level (`section` None) or in `[section]`.
pub(super) fn toml_string(text: &str, section: Option<&str>, key: &str) -> Option<String> {
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(s) = line.strip_prefix('[') {
            current = Some(s.trim_end_matches(']').trim().to_string());
            continue;
        }
        if current.as_deref() != section {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if k.trim() == key {
            let v = v.trim();
            let v = v.strip_prefix('"')?;
            return Some(v[..v.find('"')?].to_string());
        }
    }
    None
}

/// Where to reach the API from inside the node's network namespace.
pub(super) fn api_address(config: &str, path: &str) -> (String, u16) {
    let listen = toml_string(config, Some("api"), "listen")
        .unwrap_or_else(|| panic!("no [api] listen in {path}"));
    let (host, port) = listen
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("[api] listen = {listen:?}"));
    let host = match host.trim_matches(['[', ']']) {
        "0.0.0.0" | "127.0.0.1" | "localhost" => "127.0.0.1",
        "::" | "::1" => "::1",
        other => {
            panic!("[api] listen = {listen:?} in {path}: {other} is not reachable over loopback")
        }
    };
    (
        host.to_string(),
        port.parse()
            .unwrap_or_else(|_| panic!("[api] listen = {listen:?}")),
    )
}

pub(super) struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// GET over loopback inside the network namespace of process `pid`.
pub(super) fn http_get(pid: u32, host: &str, port: u16, path: &str) -> Result<Response, String> {
    const GET: &str = r#"exec 3<>"/dev/tcp/$1/$2" || exit 1
printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$3" "$1:$2" >&3
cat <&3"#;
    let out = Command::new(host_tool("nsenter", "util-linux"))
        .args(["--target", &pid.to_string(), "--net", "--"])
        .arg(host_tool("timeout", "coreutils"))
        .arg("5")
        .arg(host_tool("bash", "bash"))
        .args(["-c", GET, "bash", host, &port.to_string(), path])
        .stdin(Stdio::null())
        .output()
        .expect("run nsenter");
    let raw = out.stdout;
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Err(format!(
            "no HTTP answer ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    };
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP status line: {head}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&data[..eol])
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}

/// 200, JSON, and the node's status: a peer id and a working store.
pub(super) fn check_status(r: &Response) -> Value {
    let body = String::from_utf8_lossy(&r.body);
    assert_eq!(
        r.status, 200,
        "GET /v1/status answered {}: {body}",
        r.status
    );
    let content_type = r
        .headers
        .iter()
        .find(|(k, _)| k == "content-type")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    assert!(
        content_type.starts_with("application/json"),
        "GET /v1/status: content-type {content_type:?}"
    );
    let status: Value = serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("GET /v1/status is not JSON ({e}): {body}"));
    assert!(
        status["peer_id"].as_str().is_some_and(|p| !p.is_empty()),
        "no peer_id in /v1/status: {status}"
    );
    assert_eq!(
        status["store"]["state"], "ok",
        "the store in the image's data_dir does not work: {status}"
    );
    status
}

pub(super) fn wait_for_status(
    pid: u32,
    host: &str,
    port: u16,
    node: &mut Child,
    log: &Path,
) -> Value {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        match http_get(pid, host, port, "/v1/status") {
            Ok(r) => return check_status(&r),
            Err(e) => {
                if let Ok(Some(status)) = node.try_wait() {
                    panic!(
                        "the node exited ({status}) before answering on {host}:{port}:\n{}",
                        tail(log)
                    );
                }
                assert!(
                    Instant::now() < deadline,
                    "no answer on {host}:{port} within {START_TIMEOUT:?} ({e}):\n{}",
                    tail(log)
                );
                sleep(Duration::from_millis(250));
            }
        }
    }
}

/// Every file under `dir` and its owner.
pub(super) fn owned_files(dir: &Path) -> Vec<(PathBuf, u32)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d)
            .unwrap_or_else(|e| panic!("{}: {e}", d.display()))
            .flatten()
        {
            let meta = fs::symlink_metadata(e.path()).unwrap();
            out.push((e.path(), meta.uid()));
            if meta.is_dir() {
                stack.push(e.path());
            }
        }
    }
    out
}
