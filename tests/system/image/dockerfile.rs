//! Reading deploy/Dockerfile: its instructions, its runtime stage, what
//! COPY and ENV say, and carrying the stage's steps out on a root.

use std::fs;
use std::path::Path;
use std::process::Stdio;

use super::rootfs::{Account, account, copy_tree};
use super::sandbox::sandbox;
use super::{DOCKERFILE, HOSTNAME};
use crate::common::root;

/// Docker's PATH for a container whose image sets none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Clone, Debug)]
pub(super) struct Instruction {
    line: usize,
    pub(super) keyword: String,
    pub(super) args: String,
}

/// The Dockerfile's instructions: comments dropped, continued lines joined.
fn instructions(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        let (body, continues) = match raw.trim_end().strip_suffix('\\') {
            Some(b) => (b, true),
            None => (raw.trim_end(), false),
        };
        match &mut current {
            Some((_, acc)) => acc.push_str(body),
            None => current = Some((i + 1, body.trim_start().to_string())),
        }
        if !continues {
            let (line, full) = current.take().unwrap();
            out.push(instruction(line, &full));
        }
    }
    if let Some((line, full)) = current {
        out.push(instruction(line, &full));
    }
    out
}

fn instruction(line: usize, text: &str) -> Instruction {
    let (keyword, args) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    Instruction {
        line,
        keyword: keyword.to_ascii_uppercase(),
        args: args.trim().to_string(),
    }
}

pub(super) struct Stage {
    /// The image the runtime stage starts from.
    pub(super) from: String,
    pub(super) line: usize,
    pub(super) steps: Vec<Instruction>,
    /// The names of the stages before it.
    earlier: Vec<String>,
}

/// The last stage of deploy/Dockerfile: the image that runs.
pub(super) fn runtime_stage() -> Stage {
    let text = fs::read_to_string(root().join(DOCKERFILE)).unwrap();
    let all = instructions(&text);
    let froms: Vec<usize> = all
        .iter()
        .enumerate()
        .filter(|(_, i)| i.keyword == "FROM")
        .map(|(n, _)| n)
        .collect();
    let last = *froms.last().expect("a FROM in the Dockerfile");
    let mut earlier = Vec::new();
    for &n in &froms[..froms.len() - 1] {
        let words: Vec<&str> = all[n].args.split_whitespace().collect();
        if let Some(p) = words.iter().position(|w| w.eq_ignore_ascii_case("as")) {
            earlier.push(words[p + 1].to_string());
        }
        earlier.push(froms.iter().position(|&f| f == n).unwrap().to_string());
    }
    let words: Vec<&str> = all[last]
        .args
        .split_whitespace()
        .filter(|w| !w.starts_with("--"))
        .collect();
    Stage {
        from: words[0].to_string(),
        line: all[last].line,
        steps: all[last + 1..].to_vec(),
        earlier,
    }
}

/// `debian:<suite>-slim`: the one kind of base this test can make.
pub(super) fn slim_suite(from: &str) -> String {
    from.strip_prefix("debian:")
        .and_then(|t| t.strip_suffix("-slim"))
        .unwrap_or_else(|| {
            panic!("the runtime stage is FROM {from}; this test makes debian:<suite>-slim only (mmdebstrap --variant=minbase <suite>)")
        })
        .to_string()
}

fn exec_or_shell(args: &str) -> (Vec<String>, bool) {
    if args.starts_with('[') {
        let v: Vec<String> = serde_json::from_str(args)
            .unwrap_or_else(|e| panic!("not a JSON array of strings: {args}: {e}"));
        (v, false)
    } else {
        (vec!["/bin/sh".into(), "-c".into(), args.to_string()], true)
    }
}

pub(super) struct Copy {
    pub(super) from: Option<String>,
    pub(super) chown: Option<String>,
    pub(super) chmod: Option<String>,
    pub(super) srcs: Vec<String>,
    pub(super) dst: String,
}

pub(super) fn parse_copy(args: &str) -> Copy {
    let mut copy = Copy {
        from: None,
        chown: None,
        chmod: None,
        srcs: Vec::new(),
        dst: String::new(),
    };
    let mut rest = args.trim();
    while let Some(flag) = rest.strip_prefix("--") {
        let (word, tail) = flag.split_once(char::is_whitespace).unwrap_or((flag, ""));
        match word.split_once('=') {
            Some(("from", v)) => copy.from = Some(v.to_string()),
            Some(("chown", v)) => copy.chown = Some(v.to_string()),
            Some(("chmod", v)) => copy.chmod = Some(v.to_string()),
            None if word == "link" => {}
            _ => panic!("COPY --{word}: this test does not carry it out"),
        }
        rest = tail.trim_start();
    }
    let mut paths = if rest.starts_with('[') {
        exec_or_shell(rest).0
    } else {
        rest.split_whitespace().map(str::to_string).collect()
    };
    copy.dst = paths.pop().expect("COPY's destination");
    copy.srcs = paths;
    assert!(!copy.srcs.is_empty(), "COPY {args}: no source");
    copy
}

pub(super) fn check_copy_from(stage: &Stage, copy: &Copy, ins: &Instruction) {
    let from = copy.from.as_deref().unwrap();
    assert!(
        stage.earlier.iter().any(|s| s == from),
        "{DOCKERFILE}:{}: COPY --from={from}: not a stage of the Dockerfile",
        ins.line
    );
    assert!(
        copy.srcs.len() == 1
            && Path::new(&copy.srcs[0])
                .file_name()
                .is_some_and(|n| n == "atlas"),
        "{DOCKERFILE}:{}: the runtime stage copies {:?} from stage {from}; this test supplies only the atlas binary",
        ins.line,
        copy.srcs
    );
}

/// What the image runs with, as the runtime stage's instructions set it.
#[derive(Clone, Debug, Default)]
pub(super) struct ImageConfig {
    pub(super) env: Vec<(String, String)>,
    pub(super) user: Option<String>,
    pub(super) workdir: String,
    pub(super) entrypoint: Option<(Vec<String>, bool)>,
    pub(super) cmd: Option<Vec<String>>,
    pub(super) stop_signal: Option<String>,
    /// Where the binary copied from the build stage lands.
    pub(super) binary: Option<String>,
}

impl ImageConfig {
    pub(super) fn argv(&self) -> Vec<String> {
        let argv = match (&self.entrypoint, &self.cmd) {
            (Some((e, true)), _) => e.clone(),
            (Some((e, false)), c) => e.iter().chain(c.iter().flatten()).cloned().collect(),
            (None, Some(c)) => c.clone(),
            (None, None) => panic!("the runtime stage has no ENTRYPOINT or CMD"),
        };
        assert!(!argv.is_empty(), "an empty entry point");
        argv
    }

    pub(super) fn binary_path(&self) -> String {
        self.binary
            .clone()
            .expect("the runtime stage copies no binary from the build stage")
    }

    /// The file given to `--config` on the entry point's command line.
    pub(super) fn config_path(&self) -> String {
        let argv = self.argv();
        let at = argv
            .iter()
            .position(|a| a == "--config")
            .expect("the entry point has no --config");
        let path = argv.get(at + 1).expect("--config without a path").clone();
        if path.starts_with('/') {
            path
        } else {
            format!("{}/{path}", self.workdir.trim_end_matches('/'))
        }
    }

    /// The signal `docker stop` sends: STOPSIGNAL, else SIGTERM; without "SIG".
    pub(super) fn stop_signal(&self) -> String {
        let s = self
            .stop_signal
            .clone()
            .unwrap_or_else(|| "SIGTERM".into())
            .to_ascii_uppercase();
        s.strip_prefix("SIG").map(str::to_string).unwrap_or(s)
    }

    /// The environment a container of the image starts with.
    pub(super) fn run_env(&self, account: &Account) -> Vec<(String, String)> {
        let mut env = vec![
            ("PATH".to_string(), DEFAULT_PATH.to_string()),
            ("HOSTNAME".into(), HOSTNAME.into()),
        ];
        for (k, v) in &self.env {
            env.retain(|(e, _)| e != k);
            env.push((k.clone(), v.clone()));
        }
        if !env.iter().any(|(k, _)| k == "HOME") {
            env.push(("HOME".into(), account.home.clone()));
        }
        env
    }
}

/// The runtime stage's settings, without carrying out its steps.
pub(super) fn stage_config(stage: &Stage) -> ImageConfig {
    let mut cfg = ImageConfig {
        workdir: "/".into(),
        ..Default::default()
    };
    for ins in &stage.steps {
        apply(ins, stage, &mut cfg, None);
    }
    cfg
}

/// Where a step's side effects go: the root, the binary to copy in.
pub(super) struct Effects<'a> {
    pub(super) root: &'a Path,
    pub(super) binary: &'a Path,
}

/// One instruction: the image's settings always, its effect on the root
/// filesystem when `effects` is given.
pub(super) fn apply(
    ins: &Instruction,
    stage: &Stage,
    cfg: &mut ImageConfig,
    effects: Option<&Effects>,
) {
    let at = format!("{DOCKERFILE}:{}", ins.line);
    let no_vars = || {
        assert!(
            !ins.args.contains('$'),
            "{at}: {} {}: this test does not substitute variables",
            ins.keyword,
            ins.args
        )
    };
    match ins.keyword.as_str() {
        "RUN" => {
            let (argv, _) = exec_or_shell(&ins.args);
            if let Some(fx) = effects {
                let account = account(fx.root, cfg.user.as_deref());
                let mut env = cfg.run_env(&account);
                env.retain(|(k, _)| k != "HOSTNAME");
                let out = sandbox(fx.root, false, &account, &env, &cfg.workdir, &argv)
                    .stdin(Stdio::null())
                    .output()
                    .expect("run a RUN step");
                assert!(
                    out.status.success(),
                    "{at}: RUN {} failed in the image's root ({}):\n{}{}",
                    ins.args,
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        "COPY" => {
            no_vars();
            let copy = parse_copy(&ins.args);
            let dst = if copy.dst.starts_with('/') {
                copy.dst.clone()
            } else {
                format!("{}/{}", cfg.workdir.trim_end_matches('/'), copy.dst)
            };
            let into_dir = dst.ends_with('/') || copy.srcs.len() > 1;
            if copy.from.is_some() {
                check_copy_from(stage, &copy, ins);
                cfg.binary = Some(if into_dir {
                    format!("{}/atlas", dst.trim_end_matches('/'))
                } else {
                    dst.clone()
                });
            }
            let Some(fx) = effects else { return };
            let owner = copy.chown.as_deref().map(|c| {
                let a = account(fx.root, Some(c));
                (a.uid, a.gid)
            });
            let mode = copy
                .chmod
                .as_deref()
                .map(|m| u32::from_str_radix(m, 8).unwrap_or_else(|_| panic!("{at}: --chmod={m}")));
            for src in &copy.srcs {
                let from = match &copy.from {
                    Some(_) => fx.binary.to_path_buf(),
                    None => {
                        assert!(
                            !src.contains(['*', '?', '[']),
                            "{at}: COPY {src}: this test does not expand patterns"
                        );
                        root().join(src)
                    }
                };
                let target = fx.root.join(dst.trim_start_matches('/'));
                let target = if (into_dir || target.is_dir()) && !from.is_dir() {
                    target.join(Path::new(src).file_name().unwrap())
                } else {
                    target
                };
                copy_tree(&from, &target, owner, mode);
            }
        }
        "ENV" => {
            no_vars();
            for (k, v) in parse_env(&ins.args) {
                cfg.env.retain(|(e, _)| *e != k);
                cfg.env.push((k, v));
            }
        }
        "WORKDIR" => {
            no_vars();
            let dir = if ins.args.starts_with('/') {
                ins.args.clone()
            } else {
                format!("{}/{}", cfg.workdir.trim_end_matches('/'), ins.args)
            };
            if let Some(fx) = effects {
                fs::create_dir_all(fx.root.join(dir.trim_start_matches('/'))).unwrap();
            }
            cfg.workdir = dir;
        }
        "USER" => {
            no_vars();
            cfg.user = Some(ins.args.clone());
        }
        "ENTRYPOINT" => {
            cfg.entrypoint = Some(exec_or_shell(&ins.args));
            cfg.cmd = None;
        }
        "CMD" => cfg.cmd = Some(exec_or_shell(&ins.args).0),
        "STOPSIGNAL" => cfg.stop_signal = Some(ins.args.clone()),
        "VOLUME" => {
            let dirs = if ins.args.starts_with('[') {
                exec_or_shell(&ins.args).0
            } else {
                ins.args.split_whitespace().map(str::to_string).collect()
            };
            if let Some(fx) = effects {
                for d in dirs {
                    fs::create_dir_all(fx.root.join(d.trim_start_matches('/'))).unwrap();
                }
            }
        }
        "EXPOSE" | "LABEL" | "MAINTAINER" | "HEALTHCHECK" | "ONBUILD" => {}
        other => panic!(
            "{at}: {other}: this test does not carry out that instruction; teach tests/system/image/dockerfile.rs it"
        ),
    }
}

fn parse_env(args: &str) -> Vec<(String, String)> {
    let first = args.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let (k, v) = args.split_once(char::is_whitespace).expect("ENV key value");
        return vec![(k.to_string(), v.trim().to_string())];
    }
    let mut out = Vec::new();
    let mut chars = args.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return out;
        }
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        let mut value = String::new();
        let mut quote = None;
        while let Some(&c) = chars.peek() {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, c) if c.is_whitespace() => break,
                (_, '\\') => {
                    chars.next();
                    if let Some(n) = chars.peek() {
                        value.push(*n);
                    }
                }
                _ => value.push(c),
            }
            chars.next();
        }
        out.push((key, value));
    }
}
