//! The container image's runtime stage, run for real.
//!
//! `deploy/Dockerfile`'s last stage is read and carried out on a root
//! filesystem made from Debian's packages the way its base image is made:
//! `FROM debian:<suite>-slim` is `mmdebstrap --variant=minbase <suite>` with
//! the slim image's dpkg path excludes. Its `RUN` steps run inside that root,
//! its `COPY` steps copy from the project (and the `atlas` binary where it
//! copies the build stage's), and its `USER`, `ENV`, `WORKDIR`, `ENTRYPOINT`,
//! `CMD` and `STOPSIGNAL` make the command line and how it is stopped.
//!
//! `image_root_filesystem_starts_the_node` first runs `ldd` on the binary in
//! that root (a library the image lacks fails the test, naming it), then
//! starts the entry point as the image's user, PID 1 of its own PID, mount,
//! network, UTS and IPC namespaces (only loopback: the node's Electrum servers
//! are unreachable and nothing leaves the machine), asks `GET /v1/status` over
//! that loopback, stops the node with the image's stop signal as `docker stop`
//! would (10 s, then it counts as a failure) and checks what the node wrote in
//! its data_dir belongs to the image's user.
//!
//! `image_built_by_docker_starts_the_node` does the same through a Docker
//! engine of its own (Debian's `docker.io`, a private `dockerd` with its own
//! data root, no bridge, no iptables): the same Debian root is `docker
//! import`ed under the runtime stage's `FROM` name, the runtime stage is
//! built by `docker build` with only its `COPY --from=<build stage>` source
//! replaced by the prebuilt binary, and run with `--network none`.
//!
//! The binary is `$ATLAS_BIN`, or else `cargo build --release --locked -p
//! atlas-node --bin atlas` from the workspace root. The Debian root is cached
//! under the target directory (`system-image/`), keyed by the mmdebstrap
//! command line, and the runtime stage's steps before its first `COPY
//! --from` are cached after it, keyed by their text and the files they copy.
//!
//! Needs root and, from Debian: mmdebstrap, util-linux (unshare, nsenter,
//! setpriv), coreutils (chroot, timeout), bash, iproute2 (ip), procps (kill),
//! tar, and docker.io for the second test. A missing tool fails the test with
//! what to install, never skips it.

mod checks;
mod docker;
mod dockerfile;
mod host;
mod project;
mod rootfs;
mod sandbox;

use std::fs;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::common::root;
use checks::{
    api_address, check_status, http_get, missing_libraries, missing_message, owned_files,
    toml_string, wait_for_status,
};
use docker::Dockerd;
use dockerfile::{check_copy_from, parse_copy, runtime_stage, slim_suite, stage_config};
use host::tail;
use project::{atlas_binary, cache_dir, require_root};
use rootfs::{account, base_rootfs, build_root, cache_lock, copy_tree};
use sandbox::{Guard, pid1_of, sandbox, send_signal, spawn_logged, wait_for};

const DOCKERFILE: &str = "deploy/Dockerfile";
/// How long `docker stop` waits after the stop signal before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the node may take to answer its first `/v1/status`.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// The host name the node's UTS namespace gets.
const HOSTNAME: &str = "atlas-image-test";

// ---------------------------------------------------------------- the tests

#[test]
fn image_root_filesystem_starts_the_node() {
    require_root();
    let stage = runtime_stage();
    let binary = atlas_binary();
    let work = tempfile::Builder::new()
        .prefix("atlas-image-")
        .tempdir_in(cache_dir())
        .unwrap();
    let root = work.path().join("rootfs");
    let image = build_root(&stage, binary, &root);
    let account = account(&root, image.user.as_deref());
    let argv = image.argv();
    let env = image.run_env(&account);
    println!(
        "image user {:?} ({}:{}), entry point {argv:?}",
        image.user, account.uid, account.gid
    );

    // The libraries the binary links, as the loader in the image finds them.
    let ldd = sandbox(
        &root,
        true,
        &account,
        &env,
        "/",
        &["ldd".into(), image.binary_path()],
    )
    .output()
    .expect("run ldd in the image's root");
    let missing = missing_libraries(&ldd);
    if !missing.is_empty() {
        // Show what starting it as the image does says.
        let log = work.path().join("first-start.log");
        let mut child = spawn_logged(
            sandbox(&root, true, &account, &env, &image.workdir, &argv),
            &log,
        );
        let status = match wait_for(&mut child, STOP_TIMEOUT) {
            Some(s) => s.to_string(),
            None => format!("still running after {STOP_TIMEOUT:?}"),
        };
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "{}",
            missing_message(
                &stage,
                &image,
                binary,
                &missing,
                &format!(
                    "starting it as the image does ({status}) printed:\n{}",
                    tail(&log)
                )
            )
        );
    }

    // The entry point, as the image's user, PID 1 of its own namespaces.
    let log = work.path().join("node.log");
    let mut node = Guard(spawn_logged(
        sandbox(&root, true, &account, &env, &image.workdir, &argv),
        &log,
    ));
    let pid = pid1_of(&mut node.0, &log);
    let config = image.config_path();
    let config_text = fs::read_to_string(root.join(config.trim_start_matches('/')))
        .unwrap_or_else(|e| panic!("the entry point's config {config} is not in the image: {e}"));
    let (host, port) = api_address(&config_text, &config);
    let status = wait_for_status(pid, &host, port, &mut node.0, &log);
    println!("GET /v1/status from the image's root: {status}");

    // `docker stop`: the image's stop signal to PID 1, then 10 s.
    let signal = image.stop_signal();
    let started = Instant::now();
    send_signal(pid, &signal);
    let exit = wait_for(&mut node.0, STOP_TIMEOUT);
    assert!(
        exit.is_some(),
        "the node, PID 1 as in a container, was still running {STOP_TIMEOUT:?} after SIG{signal} \
         (the image's stop signal{}); `docker stop` would kill it. It stops on SIGINT: the runtime \
         stage needs `STOPSIGNAL SIGINT`.\n{}",
        if image.stop_signal.is_none() {
            ", docker's default: no STOPSIGNAL in the runtime stage"
        } else {
            ""
        },
        tail(&log)
    );
    let exit = exit.unwrap();
    assert!(
        exit.success(),
        "the node exited with {exit} on SIG{signal}:\n{}",
        tail(&log)
    );
    println!("stopped by SIG{signal} in {:?}", started.elapsed());

    // Its state went to its data_dir, owned by the image's user.
    let data_dir = toml_string(&config_text, None, "data_dir")
        .unwrap_or_else(|| panic!("no data_dir in {config}"));
    let held = owned_files(&root.join(data_dir.trim_start_matches('/')));
    assert!(
        !held.is_empty(),
        "the node wrote nothing in its data_dir {data_dir}:\n{}",
        tail(&log)
    );
    for (path, uid) in &held {
        assert_eq!(
            *uid,
            account.uid,
            "{} in the data_dir belongs to uid {uid}, not the image's user",
            path.display()
        );
    }
}

#[test]
fn image_built_by_docker_starts_the_node() {
    require_root();
    let stage = runtime_stage();
    let binary = atlas_binary();
    let suite = slim_suite(&stage.from);
    let base = {
        let _lock = cache_lock();
        base_rootfs(&suite).0
    };
    let docker = Dockerd::start();
    docker.ok(docker.cmd().arg("import").arg(&base).arg(&stage.from));

    // The runtime stage as written, but for where the binary comes from.
    let context = tempfile::tempdir().unwrap();
    let mut dockerfile = format!("# {DOCKERFILE}, its runtime stage (line {})\n", stage.line);
    dockerfile.push_str(&format!("FROM {}\n", stage.from));
    for ins in &stage.steps {
        if ins.keyword == "COPY" && parse_copy(&ins.args).from.is_some() {
            let copy = parse_copy(&ins.args);
            check_copy_from(&stage, &copy, ins);
            let bin = context.path().join(".prebuilt/atlas");
            fs::create_dir_all(bin.parent().unwrap()).unwrap();
            fs::copy(binary, &bin).unwrap();
            let mut flags = String::new();
            if let Some(c) = &copy.chown {
                flags.push_str(&format!("--chown={c} "));
            }
            if let Some(c) = &copy.chmod {
                flags.push_str(&format!("--chmod={c} "));
            }
            dockerfile.push_str(&format!("COPY {flags}.prebuilt/atlas {}\n", copy.dst));
            continue;
        }
        if ins.keyword == "COPY" {
            for src in parse_copy(&ins.args).srcs {
                let to = context.path().join(&src);
                fs::create_dir_all(to.parent().unwrap()).unwrap();
                copy_tree(&root().join(&src), &to, None, None);
            }
        }
        dockerfile.push_str(&format!("{} {}\n", ins.keyword, ins.args));
    }
    let file = context.path().join(".prebuilt/Dockerfile");
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    fs::write(&file, &dockerfile).unwrap();
    let tag = "atlas-image-test:runtime";
    docker.ok(docker
        .cmd()
        .args(["build", "--network", "host", "-t", tag, "-f"])
        .arg(&file)
        .arg(context.path()));

    let image = stage_config(&stage);
    let ldd = docker.run(
        docker
            .cmd()
            .args([
                "run",
                "--rm",
                "--network",
                "none",
                "--entrypoint",
                "ldd",
                tag,
            ])
            .arg(image.binary_path()),
    );
    let missing = missing_libraries(&ldd);
    if !missing.is_empty() {
        let first = docker.run(docker.cmd().args(["run", "--rm", "--network", "none", tag]));
        panic!(
            "{}",
            missing_message(
                &stage,
                &image,
                binary,
                &missing,
                &format!(
                    "`docker run` ({}) printed:\n{}{}",
                    first.status,
                    String::from_utf8_lossy(&first.stdout),
                    String::from_utf8_lossy(&first.stderr)
                )
            )
        );
    }

    let name = "atlas-image-test";
    docker.ok(docker.cmd().args([
        "run",
        "-d",
        "--network",
        "none",
        "--hostname",
        HOSTNAME,
        "--name",
        name,
        tag,
    ]));
    let pid: u32 = docker
        .ok(docker.cmd().args(["inspect", "-f", "{{.State.Pid}}", name]))
        .trim()
        .parse()
        .expect("the container's PID");
    let logs = || {
        let out = docker.run(docker.cmd().args(["logs", name]));
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let config = image.config_path();
    let config_text = docker.ok(docker.cmd().args([
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "cat",
        tag,
        &config,
    ]));
    let (host, port) = api_address(&config_text, &config);
    let deadline = Instant::now() + START_TIMEOUT;
    let status = loop {
        match http_get(pid, &host, port, "/v1/status") {
            Ok(r) => break check_status(&r),
            Err(e) => {
                let running =
                    docker.ok(docker
                        .cmd()
                        .args(["inspect", "-f", "{{.State.Running}}", name]));
                assert!(
                    running.trim() == "true",
                    "the container stopped before answering:\n{}",
                    logs()
                );
                assert!(
                    Instant::now() < deadline,
                    "no answer on {host}:{port} within {START_TIMEOUT:?} ({e}):\n{}",
                    logs()
                );
                sleep(Duration::from_millis(250));
            }
        }
    };
    println!("GET /v1/status from the docker container: {status}");

    let started = Instant::now();
    docker.ok(docker
        .cmd()
        .args(["stop", "-t", &STOP_TIMEOUT.as_secs().to_string(), name]));
    let took = started.elapsed();
    let code = docker.ok(docker
        .cmd()
        .args(["inspect", "-f", "{{.State.ExitCode}}", name]));
    assert!(
        took < STOP_TIMEOUT && code.trim() == "0",
        "`docker stop` took {took:?} and the node exited with {}: it did not stop on the image's \
         stop signal SIG{} (it stops on SIGINT: the runtime stage needs `STOPSIGNAL SIGINT`).\n{}",
        code.trim(),
        image.stop_signal(),
        logs()
    );
    println!("docker stop: {took:?}, exit code 0");

    let data_dir = toml_string(&config_text, None, "data_dir").expect("data_dir");
    let owners = docker.ok(docker.cmd().args([
        "run",
        "--rm",
        "--network",
        "none",
        "--volumes-from",
        name,
        "--entrypoint",
        "find",
        tag,
        &data_dir,
        "-mindepth",
        "1",
        "-printf",
        "%U %p\\n",
    ]));
    assert!(
        !owners.trim().is_empty(),
        "the node wrote nothing in its volume {data_dir}:\n{}",
        logs()
    );
    let uid = docker.ok(docker.cmd().args([
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "id",
        tag,
        "-u",
    ]));
    for line in owners.lines() {
        assert!(
            line.starts_with(&format!("{} ", uid.trim())),
            "not the image user's (uid {}): {line}",
            uid.trim()
        );
    }
    docker.ok(docker.cmd().args(["rm", "-v", name]));
}
