//! The root filesystem: debian:<suite>-slim's, made by mmdebstrap and
//! cached with the runtime stage's first steps, and the image's accounts.

use std::collections::hash_map::DefaultHasher;
use std::fs::{self, File};
use std::hash::{Hash, Hasher};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use super::HOSTNAME;
use super::dockerfile::{Effects, ImageConfig, Stage, apply, parse_copy, slim_suite};
use super::project::cache_dir;
use crate::common::{host_tool, ok};

/// What debian:<suite>-slim leaves out of every package (its
/// /etc/dpkg/dpkg.cfg.d/docker), given to mmdebstrap as dpkg options.
const SLIM_DPKG_OPTS: &[&str] = &[
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/groff/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/linda/*",
    "path-exclude=/usr/share/lintian/overrides/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/man/*",
];

/// Held while the cache is read or written: the tests, and test processes
/// run side by side, share it.
pub(super) fn cache_lock() -> File {
    let lock = File::create(cache_dir().join(".lock")).unwrap();
    lock.lock().expect("lock the image cache");
    lock
}

/// A tarball and the key it was made with, written after it.
fn cached(name: &str, key: &str) -> (PathBuf, bool) {
    let tar = cache_dir().join(format!("{name}.tar"));
    let fresh = tar.is_file()
        && fs::read_to_string(cache_dir().join(format!("{name}.key"))).is_ok_and(|k| k == key);
    (tar, fresh)
}

fn store(name: &str, key: &str, made: &Path) {
    fs::rename(made, cache_dir().join(format!("{name}.tar"))).unwrap();
    fs::write(cache_dir().join(format!("{name}.key")), key).unwrap();
}

/// debian:<suite>-slim's root filesystem, as a tarball: (path, its key).
pub(super) fn base_rootfs(suite: &str) -> (PathBuf, String) {
    let mmdebstrap = host_tool("mmdebstrap", "mmdebstrap");
    let mut args: Vec<String> = vec!["--variant=minbase".into(), "--format=tar".into()];
    args.extend(SLIM_DPKG_OPTS.iter().map(|o| format!("--dpkgopt={o}")));
    args.push(suite.to_string());
    let key = format!("mmdebstrap {}\n", args.join(" "));
    let (tar, fresh) = cached(&format!("debian-{suite}-slim"), &key);
    if fresh {
        return (tar, key);
    }
    let made = cache_dir().join(format!("debian-{suite}-slim.tar.part"));
    let _ = fs::remove_file(&made);
    let started = Instant::now();
    let out = Command::new(mmdebstrap)
        .args(&args)
        .arg(&made)
        .stdin(Stdio::null())
        .output()
        .expect("run mmdebstrap");
    assert!(
        out.status.success(),
        "mmdebstrap {} failed ({}): Debian's mirror must be reachable.\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "made debian:{suite}-slim's root with mmdebstrap in {:?}",
        started.elapsed()
    );
    store(&format!("debian-{suite}-slim"), &key, &made);
    (tar, key)
}

fn untar(tar: &Path, root: &Path) {
    fs::create_dir_all(root).unwrap();
    ok(Command::new(host_tool("tar", "tar"))
        .arg("-C")
        .arg(root)
        .args(["--numeric-owner", "-xpf"])
        .arg(tar));
}

/// The runtime stage carried out on a fresh copy of its base at `root`.
pub(super) fn build_root(stage: &Stage, binary: &Path, root: &Path) -> ImageConfig {
    let suite = slim_suite(&stage.from);
    let fx = Effects { root, binary };
    let mut cfg = ImageConfig {
        workdir: "/".into(),
        ..Default::default()
    };
    // The steps that do not need the binary, cached as a layer.
    let split = stage
        .steps
        .iter()
        .position(|i| i.keyword == "COPY" && parse_copy(&i.args).from.is_some())
        .unwrap_or(stage.steps.len());
    {
        let _lock = cache_lock();
        let (base, base_key) = base_rootfs(&suite);
        let mut key = base_key;
        for ins in &stage.steps[..split] {
            key.push_str(&format!("{} {}\n", ins.keyword, ins.args));
            if ins.keyword == "COPY" {
                for src in parse_copy(&ins.args).srcs {
                    key.push_str(&format!(
                        "  {src}: {:016x}\n",
                        tree_hash(&crate::common::root().join(&src))
                    ));
                }
            }
        }
        let (layer, fresh) = cached("runtime-stage", &key);
        if fresh {
            untar(&layer, root);
            for ins in &stage.steps[..split] {
                apply(ins, stage, &mut cfg, None);
            }
        } else {
            untar(&base, root);
            for ins in &stage.steps[..split] {
                apply(ins, stage, &mut cfg, Some(&fx));
            }
            let made = cache_dir().join("runtime-stage.tar.part");
            ok(Command::new(host_tool("tar", "tar"))
                .arg("-C")
                .arg(root)
                .args(["--numeric-owner", "-cf"])
                .arg(&made)
                .arg("."));
            store("runtime-stage", &key, &made);
        }
    }
    for ins in &stage.steps[split..] {
        apply(ins, stage, &mut cfg, Some(&fx));
    }
    // What Docker gives every container.
    let hosts = root.join("etc/hosts");
    if !hosts.exists() {
        fs::write(&hosts, format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{HOSTNAME}\n")).unwrap();
    }
    cfg
}

fn tree_hash(path: &Path) -> u64 {
    let mut h = DefaultHasher::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        p.hash(&mut h);
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = fs::read_dir(&p)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            entries.sort();
            stack.extend(entries);
        } else {
            fs::read(&p)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
                .hash(&mut h);
            fs::metadata(&p).unwrap().permissions().mode().hash(&mut h);
        }
    }
    h.finish()
}

/// COPY: a file or a directory's contents, owned by root unless told.
pub(super) fn copy_tree(from: &Path, to: &Path, owner: Option<(u32, u32)>, mode: Option<u32>) {
    let meta =
        fs::symlink_metadata(from).unwrap_or_else(|e| panic!("COPY {}: {e}", from.display()));
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    let (uid, gid) = owner.unwrap_or((0, 0));
    if meta.is_dir() {
        fs::create_dir_all(to).unwrap();
        for e in fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            copy_tree(&e.path(), &to.join(e.file_name()), owner, mode);
        }
    } else if meta.file_type().is_symlink() {
        let _ = fs::remove_file(to);
        std::os::unix::fs::symlink(fs::read_link(from).unwrap(), to).unwrap();
        std::os::unix::fs::lchown(to, Some(uid), Some(gid)).unwrap();
        return;
    } else {
        fs::copy(from, to)
            .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
    }
    std::os::unix::fs::chown(to, Some(uid), Some(gid)).unwrap();
    if let Some(m) = mode {
        fs::set_permissions(to, fs::Permissions::from_mode(m)).unwrap();
    }
}

#[derive(Debug)]
pub(super) struct Account {
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) home: String,
    pub(super) groups: Vec<u32>,
}

/// `USER` as Docker resolves it, against the root's /etc/passwd and /etc/group.
pub(super) fn account(root: &Path, spec: Option<&str>) -> Account {
    let table = |f: &str| -> Vec<Vec<String>> {
        fs::read_to_string(root.join("etc").join(f))
            .unwrap_or_default()
            .lines()
            .map(|l| l.split(':').map(str::to_string).collect())
            .collect()
    };
    let (passwd, group) = (table("passwd"), table("group"));
    let spec = spec.unwrap_or("root");
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entry = passwd
        .iter()
        .find(|p| p.len() >= 6 && (p[0] == user || p[2] == user));
    let (uid, mut gid, home, name) = match (entry, user.parse::<u32>()) {
        (Some(p), _) => (
            p[2].parse().unwrap(),
            p[3].parse().unwrap(),
            p[5].clone(),
            Some(p[0].clone()),
        ),
        (None, Ok(uid)) => (uid, 0, "/".to_string(), None),
        (None, Err(_)) => panic!("USER {spec}: no user {user} in the image's /etc/passwd"),
    };
    if let Some(g) = grp {
        gid = match group.iter().find(|e| e.len() >= 3 && e[0] == g) {
            Some(e) => e[2].parse().unwrap(),
            None => g
                .parse()
                .unwrap_or_else(|_| panic!("USER {spec}: no group {g} in the image's /etc/group")),
        };
    }
    let mut groups = vec![gid];
    if let (None, Some(name)) = (grp, &name) {
        for e in &group {
            if e.len() >= 4 && e[3].split(',').any(|m| m == name) {
                let g: u32 = e[2].parse().unwrap();
                if !groups.contains(&g) {
                    groups.push(g);
                }
            }
        }
    }
    Account {
        uid,
        gid,
        home,
        groups,
    }
}
