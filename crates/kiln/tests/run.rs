//! `kiln run` and the container life cycle on the real kernel, as root:
//! the busybox fixture image (made without kiln by
//! `scripts/fixtures/base-images.sh`) loaded into a private store.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::TestStore;

fn fixtures() -> &'static PathBuf {
    static CACHE: OnceLock<PathBuf> = OnceLock::new();
    CACHE.get_or_init(|| {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/fixtures/base-images.sh");
        let out = Command::new("bash").arg(script).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

fn busybox() -> TestStore {
    let t = TestStore::new();
    let archive = fixtures().join("busybox.oci-archive.tar");
    t.ok(&["load", "-i", archive.to_str().unwrap()]);
    t
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Nothing of the container is left: no record, directory, mount, cgroup.
fn assert_nothing_left(t: &TestStore, id: &str) {
    assert!(
        !t.root().join("containers").join(id).exists(),
        "container directory left"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(id), "a mount of {id} is left");
    for controller in ["pids", "memory", "cpu", "devices", "freezer", "unified"] {
        let p = Path::new("/sys/fs/cgroup")
            .join(controller)
            .join("kiln")
            .join(id);
        assert!(!p.exists(), "cgroup {} left", p.display());
    }
    let ps = t.ok(&["ps", "-a", "-q", "--no-trunc"]);
    assert!(!ps.contains(id), "{ps}");
    // No veth, no address (the kernel deletes a veth with its namespace,
    // asynchronously: give it a moment).
    let veth = Path::new("/sys/class/net").join(format!("kv{}", &id[..12]));
    let deadline = Instant::now() + Duration::from_secs(2);
    while veth.exists() {
        assert!(Instant::now() < deadline, "{} left", veth.display());
        std::thread::sleep(Duration::from_millis(20));
    }
    let ipam = std::fs::read_to_string("/run/kiln-tests/network/ipam.json").unwrap_or_default();
    assert!(!ipam.contains(id), "address of {id} not released: {ipam}");
}

#[test]
fn exit_codes_are_dockers() {
    let t = busybox();
    assert_eq!(code(&t.output(&["run", "--rm", "busybox", "true"])), 0);
    assert_eq!(
        code(&t.output(&["run", "--rm", "busybox", "sh", "-c", "exit 3"])),
        3
    );
    let out = t.output(&["run", "--rm", "busybox", "no-such-command"]);
    assert_eq!(code(&out), 127, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("executable file not found"),
        "{}",
        stderr(&out)
    );
    let out = t.output(&["run", "--rm", "busybox", "/etc/passwd"]);
    assert_eq!(code(&out), 126, "{}", stderr(&out));
    let out = t.output(&["run", "--rm", "no-such-image"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    let out = t.output(&["run", "--rm", "--cap-add", "NOT_A_CAP", "busybox", "true"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    // A signal: 128 + its number (under the init: PID 1 itself cannot be
    // killed from inside).
    let out = t.output(&["run", "--rm", "--init", "busybox", "sh", "-c", "kill -9 $$"]);
    assert_eq!(code(&out), 137);
    assert_eq!(t.ok(&["ps", "-a", "-q"]), "", "--rm left containers");
}

#[test]
fn entrypoint_and_cmd_combine_as_docker() {
    let t = busybox();
    t.ok(&["run", "--name", "base", "busybox", "true"]);
    t.ok(&[
        "commit",
        "-c",
        r#"ENTRYPOINT ["echo", "ep"]"#,
        "-c",
        r#"CMD ["default"]"#,
        "base",
        "ep:1",
    ]);
    assert_eq!(t.ok(&["run", "--rm", "ep:1"]), "ep default\n");
    assert_eq!(t.ok(&["run", "--rm", "ep:1", "a", "b"]), "ep a b\n");
    // --entrypoint drops the image's CMD.
    assert_eq!(t.ok(&["run", "--rm", "--entrypoint", "echo", "ep:1"]), "\n");
    assert_eq!(
        t.ok(&["run", "--rm", "--entrypoint", "echo", "ep:1", "x"]),
        "x\n"
    );
    assert_eq!(
        t.ok(&["run", "--rm", "--entrypoint", "", "ep:1", "echo", "y"]),
        "y\n"
    );
    let out = t.output(&["run", "--rm", "--entrypoint", "", "ep:1"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("no command specified"),
        "{}",
        stderr(&out)
    );
    // Shell-form CMD as a build stores it.
    t.ok(&[
        "commit",
        "-c",
        "CMD echo shell form $HOME",
        "base",
        "shell:1",
    ]);
    assert_eq!(t.ok(&["run", "--rm", "shell:1"]), "shell form /root\n");
}

#[test]
fn environment_user_and_workdir() {
    let t = busybox();
    let envfile = t.dir.path().join("env");
    std::fs::write(&envfile, "# comment\nFROM_FILE=1\nB=file\n").unwrap();
    let env = t.ok(&[
        "run",
        "--rm",
        "-e",
        "A=x",
        "-e",
        "B=flag",
        "--env-file",
        envfile.to_str().unwrap(),
        "-h",
        "myhost",
        "busybox",
        "env",
    ]);
    let lines: Vec<&str> = env.lines().collect();
    assert!(
        lines.contains(&"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        "{env}"
    );
    assert!(lines.contains(&"HOSTNAME=myhost"), "{env}");
    assert!(
        lines.contains(&"A=x") && lines.contains(&"FROM_FILE=1"),
        "{env}"
    );
    assert!(
        lines.contains(&"B=flag"),
        "-e comes after --env-file: {env}"
    );
    assert!(lines.contains(&"HOME=/root"), "{env}");
    assert_eq!(
        t.ok(&["run", "--rm", "-h", "myhost", "busybox", "hostname"]),
        "myhost\n"
    );
    // Generated /etc files: hostname, --add-host, --dns (only written, no
    // traffic).
    let out = t.ok(&[
        "run", "--rm", "-h", "h2", "--add-host", "db:10.1.2.3", "--dns", "192.0.2.53", "busybox", "sh", "-c",
        "cat /etc/hostname; grep -c h2 /etc/hosts; grep db /etc/hosts; grep nameserver /etc/resolv.conf",
    ]);
    assert_eq!(out, "h2\n1\n10.1.2.3\tdb\nnameserver 192.0.2.53\n");
    assert_eq!(
        code(&t.output(&["run", "--rm", "--add-host", "nocolon", "busybox", "true"])),
        125
    );

    // OpenShift's random uid: not in passwd, group root, HOME=/.
    let out = t.ok(&[
        "run",
        "--rm",
        "-u",
        "1000123:0",
        "busybox",
        "sh",
        "-c",
        "id -u; id -g; echo $HOME; touch /tmp/x",
    ]);
    assert_eq!(out, "1000123\n0\n/\n");
    let out = t.ok(&[
        "run",
        "--rm",
        "-u",
        "nobody",
        "busybox",
        "sh",
        "-c",
        "id -un; cat /proc/self/status | grep CapEff",
    ]);
    assert!(out.starts_with("nobody\n"), "{out}");
    assert!(
        out.contains("0000000000000000"),
        "a non-root user keeps no capabilities: {out}"
    );
    for bad in ["4294967296", "2147483648:0", "nosuchuser"] {
        let out = t.output(&["run", "--rm", "-u", bad, "busybox", "id", "-u"]);
        assert_eq!(code(&out), 125, "{bad}: {}", stdout(&out));
        assert!(!stdout(&out).contains('0'), "{bad} ran as root");
    }
    // The working directory is created.
    assert_eq!(
        t.ok(&["run", "--rm", "-w", "/new/dir", "busybox", "pwd"]),
        "/new/dir\n"
    );
}

/// kiln's executor loads the seccomp filter (compiled once, kept in
/// `cache/seccomp/`) after libcontainer dropped the capabilities, keeping
/// `CAP_SYS_ADMIN`/`CAP_SETPCAP` only for the load: every process must
/// still start with exactly its capability sets, under one filter.
#[test]
fn seccomp_filter_with_exactly_the_containers_capabilities() {
    let t = busybox();
    let status = |extra: &[&str]| -> String {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[
            "busybox",
            "grep",
            "-E",
            "^(CapPrm|CapEff|CapBnd|CapInh|CapAmb|NoNewPrivs|Seccomp):",
            "/proc/self/status",
        ]);
        t.ok(&args).split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let line = |prm: &str, eff: &str, bnd: &str, nnp: u8| {
        format!(
            "CapInh: 0000000000000000 CapPrm: {prm} CapEff: {eff} CapBnd: {bnd} \
             CapAmb: 0000000000000000 NoNewPrivs: {nnp} Seccomp: 2"
        )
    };
    let docker = "00000000a80425fb";
    let none = "0000000000000000";
    assert_eq!(status(&[]), line(docker, docker, docker, 0));
    assert_eq!(status(&["-u", "1000"]), line(none, none, docker, 0));
    assert_eq!(status(&["--cap-drop", "ALL"]), line(none, none, none, 0));
    // Without CAP_SETPCAP (bit 8) of its own.
    let no_setpcap = "00000000a80424fb";
    assert_eq!(
        status(&["--cap-drop", "SETPCAP"]),
        line(no_setpcap, no_setpcap, no_setpcap, 0)
    );
    let sys_admin = "00000000a82425fb";
    assert_eq!(
        status(&["--cap-add", "SYS_ADMIN"]),
        line(sys_admin, sys_admin, sys_admin, 0)
    );
    assert_eq!(
        status(&["--security-opt", "no-new-privileges"]),
        line(docker, docker, docker, 1)
    );
    // The filter holds for a user who dropped everything, and SYS_ADMIN's
    // calls stay refused without it.
    let out = t.output(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        "1000",
        "busybox",
        "unshare",
        "-U",
        "true",
    ]);
    assert_ne!(code(&out), 0);
    // One compiled program per profile (on this host): Docker's for the
    // default capabilities (also without SETPCAP, which widens nothing),
    // for SYS_ADMIN added, for none.
    let cached = std::fs::read_dir(t.root().join("cache/seccomp"))
        .unwrap()
        .count();
    assert_eq!(cached, 3);
}

#[test]
fn init_reaps_orphans_and_forwards_signals() {
    let t = busybox();
    // 100 children that orphan a grandchild each; PID 1 must reap them.
    let out = t.ok(&[
        "run", "--rm", "--init", "busybox", "sh", "-c",
        "for i in $(seq 1 100); do (sleep 0.05 &); done; sleep 1; ps -o stat | grep -c '^Z' || true",
    ]);
    assert_eq!(out.trim(), "0", "zombies left: {out}");
    // PID 1 has the init's name, as docker-init has Docker's.
    let comm = t.ok(&["run", "--rm", "--init", "busybox", "cat", "/proc/1/comm"]);
    assert_eq!(comm.trim(), "kiln-init");
    // The init's exit status is the child's.
    assert_eq!(
        code(&t.output(&["run", "--rm", "--init", "busybox", "sh", "-c", "exit 7"])),
        7
    );
    // A shell that ignores SIGTERM: stop waits the timeout, then SIGKILL.
    let id = t.ok(&[
        "run",
        "-d",
        "--init",
        "busybox",
        "sh",
        "-c",
        "trap '' TERM; while true; do sleep 0.1; done",
    ]);
    let id = id.trim();
    let start = Instant::now();
    t.ok(&["stop", "-t", "2", id]);
    let took = start.elapsed();
    assert!(took >= Duration::from_secs(2), "stop took {took:?}");
    assert!(took < Duration::from_secs(8), "stop took {took:?}");
    assert_eq!(
        t.ok(&["inspect", "--format", "{{.State.ExitCode}}", id]),
        "137\n"
    );
    // A shell that handles SIGTERM ends at once, through the init.
    let id2 = t.ok(&[
        "run",
        "-d",
        "--init",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 0' TERM; while true; do sleep 0.1; done",
    ]);
    let start = Instant::now();
    t.ok(&["stop", "-t", "10", id2.trim()]);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(
        t.ok(&["inspect", "--format", "{{.State.ExitCode}}", id2.trim()]),
        "0\n"
    );
    t.ok(&["rm", id, id2.trim()]);
}

#[test]
fn detached_logs_stop_and_rm() {
    let t = busybox();
    let id = t.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done",
    ]);
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64);
    let ps = t.ok(&["ps", "--format", "{{.Names}} {{.State}}"]);
    assert_eq!(ps, "web running\n");
    // The output reaches the log.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = t.output(&["logs", "web"]);
        if stdout(&out) == "out\n" && stderr(&out) == "err\n" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "logs: {:?} {:?}",
            stdout(&out),
            stderr(&out)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let running = t.output(&["rm", "web"]);
    assert_ne!(code(&running), 0, "rm of a running container must fail");
    t.ok(&["stop", "web"]);
    let logs = t.ok(&["logs", "-t", "--tail", "1", "web"]);
    assert!(logs.ends_with(" bye\n") && logs.starts_with("20"), "{logs}");
    assert_eq!(t.ok(&["wait", "web"]), "0\n");
    assert_eq!(t.ok(&["ps", "-q"]), "");
    assert!(t
        .ok(&["ps", "-a", "--format", "{{.Status}}"])
        .starts_with("Exited (0)"));
    // restart runs it again, logging on.
    t.ok(&["restart", "-t", "5", "web"]);
    assert_eq!(
        t.ok(&["ps", "--format", "{{.Names}} {{.State}}"]),
        "web running\n"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while t.ok(&["logs", "web"]).matches("out\n").count() < 2 {
        assert!(
            Instant::now() < deadline,
            "no output from the restarted container"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    t.ok(&["rm", "-f", "web"]);
    assert_nothing_left(&t, &id);
}

#[test]
fn ps_is_right_after_the_monitor_is_killed() {
    let t = busybox();
    let id = t.ok(&["run", "-d", "busybox", "sleep", "1000"]);
    let id = id.trim();
    let monitor: i32 = t
        .ok(&["inspect", "--format", "{{.State.MonitorPid}}", id])
        .trim()
        .parse()
        .unwrap();
    let pid: i32 = t
        .ok(&["inspect", "--format", "{{.State.Pid}}", id])
        .trim()
        .parse()
        .unwrap();
    assert!(monitor > 0 && pid > 0);
    Command::new("kill")
        .args(["-9", &monitor.to_string()])
        .status()
        .unwrap();
    // The container outlives its monitor, and shows so.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(t.ok(&["ps", "--format", "{{.State}}"]), "running\n");
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(t.ok(&["ps", "-q"]), "");
    let status = t.ok(&["ps", "-a", "--format", "{{.State}} {{.Status}}"]);
    assert!(status.starts_with("exited Exited (137)"), "{status}");
    t.ok(&["rm", id]);
    assert_nothing_left(&t, id);
}

/// `inspect NAME` takes a container before an image, as Docker does: a
/// container named like the start of an image id is the container (CI
/// once inspected the image `c1…` for the container `c1`); `--type`
/// chooses one kind, `image inspect` images only.
#[test]
fn inspect_prefers_a_container_to_an_image_id_prefix() {
    let t = busybox();
    let id = t.ok(&["images", "-q", "busybox"]).trim().to_string();
    let prefix = &id[..2];
    t.ok(&["create", "--name", prefix, "busybox", "true"]);
    let name = format!("/{prefix}\n");
    assert_eq!(t.ok(&["inspect", "--format", "{{.Name}}", prefix]), name);
    assert_eq!(
        t.ok(&[
            "inspect",
            "--type",
            "container",
            "--format",
            "{{.Name}}",
            prefix
        ]),
        name
    );
    for args in [
        vec!["inspect", "--type", "image", "--format", "{{.Id}}", prefix],
        vec!["image", "inspect", "--format", "{{.Id}}", prefix],
    ] {
        let out = t.ok(&args);
        assert!(out.starts_with(&format!("sha256:{id}")), "{args:?}: {out}");
    }
    let out = t.output(&["inspect", "--type", "container", "busybox"]);
    assert_ne!(code(&out), 0, "busybox is no container");
    t.ok(&["rm", prefix]);
}

#[test]
fn commit_makes_an_image_with_the_change() {
    let t = busybox();
    t.ok(&[
        "run",
        "--name",
        "cc",
        "busybox",
        "sh",
        "-c",
        "echo made > /made; rm /etc/group",
    ]);
    assert_eq!(t.ok(&["diff", "cc"]), "C /etc\nD /etc/group\nA /made\n");
    let id = t.ok(&[
        "commit",
        "-m",
        "by hand",
        "-c",
        "CMD [\"cat\", \"/made\"]",
        "cc",
        "made:1",
    ]);
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(t.ok(&["run", "--rm", "made:1"]), "made\n");
    let out = t.output(&["run", "--rm", "made:1", "ls", "/etc/group"]);
    assert_ne!(code(&out), 0, "the deletion is in the image");
    assert!(t.ok(&["history", "made:1"]).contains("by hand"));
    // The image a container uses is not deleted.
    t.ok(&["run", "--name", "user", "made:1", "true"]);
    let out = t.output(&["rmi", "made:1"]);
    assert_ne!(code(&out), 0, "{}", stdout(&out));
    t.ok(&["rm", "user", "cc"]);
    t.ok(&["rmi", "made:1"]);
}

#[test]
fn rm_leaves_nothing_behind() {
    let t = busybox();
    t.ok(&["run", "--rm", "--name", "gone", "busybox", "true"]);
    assert_eq!(
        std::fs::read_dir(t.root().join("containers"))
            .unwrap()
            .count(),
        0
    );
    // Many in a row leave nothing either (no mounts, cgroups, files).
    for _ in 0..20 {
        t.ok(&["run", "--rm", "busybox", "true"]);
    }
    assert_eq!(
        std::fs::read_dir(t.root().join("containers"))
            .unwrap()
            .count(),
        0
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(t.root().to_str().unwrap()), "mounts left");
    let out = t.ok(&["create", "busybox", "true"]);
    let id = out.trim();
    t.ok(&["start", "-a", id]);
    t.ok(&["rm", id]);
    assert_nothing_left(&t, id);
    // Detached with a published port, removed by force while running.
    let id = t.ok(&[
        "run",
        "-d",
        "-p",
        "127.0.0.1::80",
        "busybox",
        "sleep",
        "100",
    ]);
    let id = id.trim();
    let ipam = std::fs::read_to_string("/run/kiln-tests/network/ipam.json").unwrap();
    assert!(ipam.contains(id), "{ipam}");
    t.ok(&["rm", "-f", id]);
    assert_nothing_left(&t, id);
}

#[test]
fn isolation_defaults() {
    let t = busybox();
    // Only stdio is open in the container's process (with and without init).
    for init in [false, true] {
        let mut args = vec!["run", "--rm"];
        if init {
            args.push("--init");
        }
        // `; true` keeps sh from exec'ing ls in its place.
        args.extend(["busybox", "sh", "-c", "ls /proc/$$/fd; true"]);
        assert_eq!(t.ok(&args), "0\n1\n2\n", "init={init}");
    }
    // A working directory through a leaked descriptor cannot reach the
    // host (runc's CVE-2024-21626): refused, never a host path.
    for n in 3..32 {
        let w = format!("/proc/self/fd/{n}");
        let out = t.output(&[
            "run",
            "--rm",
            "-w",
            &w,
            "busybox",
            "sh",
            "-c",
            "pwd; ls ..; true",
        ]);
        assert_eq!(code(&out), 125, "{w}: {}", stdout(&out));
    }
    let out = t.output(&["run", "--rm", "busybox", "cat", "/proc/kcore"]);
    assert_ne!(code(&out), 0);
    let out = t.output(&[
        "run", "--rm", "busybox", "mount", "-t", "tmpfs", "t", "/mnt",
    ]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("ermission denied"),
        "{}",
        stderr(&out)
    );
    let out = t.output(&["run", "--rm", "busybox", "unshare", "-U", "true"]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("Operation not permitted"),
        "{}",
        stderr(&out)
    );
    // The default capabilities, and /sys read-only.
    let caps = t.ok(&[
        "run",
        "--rm",
        "busybox",
        "grep",
        "CapBnd",
        "/proc/self/status",
    ]);
    assert_eq!(
        caps.split_whitespace().nth(1),
        Some("00000000a80425fb"),
        "{caps}"
    );
    let out = t.output(&["run", "--rm", "busybox", "touch", "/sys/x"]);
    assert_ne!(code(&out), 0);
    // The container's own cgroup, read-only, at /sys/fs/cgroup.
    let out = t.ok(&[
        "run",
        "--rm",
        "--pids-limit",
        "40",
        "busybox",
        "sh",
        "-c",
        "cat /sys/fs/cgroup/pids/pids.max; touch /sys/fs/cgroup/pids/x || echo ro",
    ]);
    assert_eq!(out, "40\nro\n");
    // --read-only.
    let out = t.output(&["run", "--rm", "--read-only", "busybox", "touch", "/x"]);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("Read-only"), "{}", stderr(&out));
    // seccomp=unconfined with SYS_ADMIN lets unshare through.
    t.ok(&[
        "run",
        "--rm",
        "--cap-add",
        "SYS_ADMIN",
        "--security-opt",
        "seccomp=unconfined",
        "busybox",
        "unshare",
        "-m",
        "true",
    ]);
    // The store is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(t.root()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

#[test]
fn a_fork_bomb_stops_at_the_pids_limit() {
    let t = busybox();
    let mut cmd = t.cmd();
    cmd.args([
        "run",
        "--rm",
        "--pids-limit",
        "30",
        "busybox",
        "sh",
        "-c",
        // The sleep is started first: busybox sh exits on a fork it
        // cannot make, and the bomb may take the last pids before the main
        // shell forks again (seen once on a loaded machine).
        "sleep 2 & s=$!; bomb() { bomb | bomb & }; bomb; wait $s; echo survived",
    ]);
    let out = cmd.output().unwrap();
    assert!(stdout(&out).contains("survived"), "{}", stderr(&out));
    assert!(stderr(&out).contains("can't fork"), "{}", stderr(&out));
}

#[test]
fn stdin_and_mounts() {
    let t = busybox();
    let out = t.ok_stdin(
        &["run", "--rm", "-i", "busybox", "sh", "-c", "cat; exit 0"],
        b"through stdin\n".to_vec(),
    );
    assert_eq!(out, "through stdin\n");
    let host = t.dir.path().join("shared");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("f"), "host file").unwrap();
    let v = format!("{}:/data:ro", host.display());
    assert_eq!(
        t.ok(&["run", "--rm", "-v", &v, "busybox", "cat", "/data/f"]),
        "host file"
    );
    let out = t.output(&["run", "--rm", "-v", &v, "busybox", "touch", "/data/g"]);
    assert_ne!(code(&out), 0);
    let m = format!("type=bind,source={},target=/rw", host.display());
    t.ok(&[
        "run",
        "--rm",
        "--mount",
        &m,
        "busybox",
        "sh",
        "-c",
        "echo c > /rw/new",
    ]);
    assert_eq!(std::fs::read_to_string(host.join("new")).unwrap(), "c\n");
    let out = t.ok(&[
        "run",
        "--rm",
        "--tmpfs",
        "/scratch",
        "busybox",
        "sh",
        "-c",
        "grep /scratch /proc/mounts | cut -d' ' -f3",
    ]);
    assert_eq!(out, "tmpfs\n");
}

#[test]
fn exec_joins_the_container_with_its_restrictions() {
    let t = busybox();
    let id = t.ok(&[
        "run",
        "-d",
        "--name",
        "ex",
        "busybox",
        "sh",
        "-c",
        "echo $$ > /pid; sleep 1000",
    ]);
    let id = id.trim();
    let out = t.ok(&[
        "exec",
        "ex",
        "sh",
        "-c",
        "cat /pid; hostname; ls /proc/$$/fd; true",
    ]);
    assert_eq!(out, format!("1\n{}\n0\n1\n2\n", &id[..12]));
    let out = t.ok(&[
        "exec",
        "-u",
        "nobody",
        "-w",
        "/tmp",
        "-e",
        "X=1",
        "ex",
        "sh",
        "-c",
        "id -un; pwd; echo $X",
    ]);
    assert_eq!(out, "nobody\n/tmp\n1\n");
    assert_eq!(code(&t.output(&["exec", "ex", "sh", "-c", "exit 4"])), 4);
    assert_eq!(code(&t.output(&["exec", "ex", "no-such-command"])), 127);
    // The container's seccomp filter holds for exec'd processes too.
    let out = t.output(&["exec", "ex", "unshare", "-U", "true"]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("Operation not permitted"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        t.ok_stdin(&["exec", "-i", "ex", "cat"], b"piped\n".to_vec()),
        "piped\n"
    );
    t.ok(&["exec", "-d", "ex", "touch", "/detached"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while code(&t.output(&["exec", "ex", "ls", "/detached"])) != 0 {
        assert!(Instant::now() < deadline, "exec -d did not run");
        std::thread::sleep(Duration::from_millis(50));
    }
    t.ok(&["rm", "-f", "ex"]);
    assert_ne!(code(&t.output(&["exec", "ex", "true"])), 0);
    assert_nothing_left(&t, id);
}

#[test]
fn the_host_binary_is_out_of_reach() {
    let t = busybox();
    let bin = std::fs::read(env!("CARGO_BIN_EXE_kiln")).unwrap();
    let before = common::sha256_hex(&bin);
    for extra in [&[][..], &["--privileged"][..]] {
        let mut args = vec!["run", "--rm", "--init"];
        args.extend_from_slice(extra);
        args.extend([
            "busybox", "sh", "-c",
            "readlink /proc/1/exe; echo x >> /proc/1/exe && echo wrote-init; echo x >> /proc/self/exe && echo wrote-self; true",
        ]);
        let out = t.output(&args);
        let text = stdout(&out);
        assert!(!text.contains("wrote-init"), "{extra:?}: {text}");
        // Never the host path of kiln.
        assert!(!text.contains("target/"), "{extra:?}: {text}");
    }
    let after = common::sha256_hex(&std::fs::read(env!("CARGO_BIN_EXE_kiln")).unwrap());
    assert_eq!(before, after);
}

#[test]
fn cp_both_ways_stays_inside_the_container() {
    let t = busybox();
    t.ok(&[
        "run",
        "--name",
        "cpc",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /d/sub; echo a > /d/sub/f; ln -s ../../../../.. /d/up; echo hi > /file",
    ]);
    let out = t.dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    t.ok(&["cp", "cpc:/file", out.join("file").to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(out.join("file")).unwrap(), "hi\n");
    t.ok(&["cp", "cpc:/d", out.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(out.join("d/sub/f")).unwrap(), "a\n");
    // The symlink is copied as a link, not followed.
    assert!(std::fs::symlink_metadata(out.join("d/up"))
        .unwrap()
        .file_type()
        .is_symlink());
    // A path through a symlink that climbs out resolves in the container.
    t.ok(&[
        "cp",
        "cpc:/d/up/etc/passwd",
        out.join("passwd").to_str().unwrap(),
    ]);
    let theirs = t.ok(&["run", "--rm", "busybox", "cat", "/etc/passwd"]);
    assert_eq!(std::fs::read_to_string(out.join("passwd")).unwrap(), theirs);
    // Into the container, also through the climbing link.
    let name = format!("kiln-cp-{}", std::process::id());
    let host = t.dir.path().join(&name);
    std::fs::create_dir_all(host.join("in")).unwrap();
    std::fs::write(host.join("in/z"), "z").unwrap();
    std::fs::write(t.dir.path().join("hostfile"), "host").unwrap();
    t.ok(&[
        "cp",
        t.dir.path().join("hostfile").to_str().unwrap(),
        "cpc:/d/",
    ]);
    t.ok(&["cp", host.to_str().unwrap(), "cpc:/d/up/tmp/"]);
    assert!(
        !Path::new("/tmp").join(&name).exists(),
        "cp wrote on the host"
    );
    let listing = t.ok(&["diff", "cpc"]);
    assert!(listing.contains("A /d/hostfile"), "{listing}");
    assert!(
        listing.contains(&format!("A /tmp/{name}/in/z")),
        "{listing}"
    );
    t.ok(&["rm", "cpc"]);
}

#[test]
fn an_external_runtime_runs_the_same_bundle() {
    let t = busybox();
    let runc = ["/usr/sbin/runc", "/usr/bin/runc"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("runc is installed by scripts/install-deps.sh");
    let out = t.output(&[
        "run",
        "--rm",
        "--runtime",
        runc,
        "busybox",
        "sh",
        "-c",
        "echo via runc; exit 5",
    ]);
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    assert_eq!(stdout(&out), "via runc\n");
    let out = t.output(&[
        "run",
        "--rm",
        "--runtime",
        runc,
        "busybox",
        "no-such-command",
    ]);
    assert_eq!(code(&out), 127, "{}", stderr(&out));
    let id = t.ok(&["run", "-d", "--runtime", runc, "busybox", "sleep", "100"]);
    let id = id.trim();
    assert_eq!(t.ok(&["ps", "--format", "{{.State}}"]), "running\n");
    t.ok(&["stop", "-t", "1", id]);
    assert_eq!(
        t.ok(&["inspect", "--format", "{{.State.ExitCode}}", id]),
        "137\n"
    );
    t.ok(&["rm", id]);
    assert_nothing_left(&t, id);
}

#[test]
fn images_with_hostile_proc_sys_dev_are_refused_or_contained() {
    let t = busybox();
    let rootfs = fixtures().join("busybox.rootfs.tar");
    let tag = std::process::id();
    for (i, setup) in [
        "rm -rf proc && ln -s /tmp/kiln-hostile-TAG-proc proc",
        "rm -rf sys && ln -s /tmp/kiln-hostile-TAG-sys sys",
        "rm -rf dev && ln -s /tmp/kiln-hostile-TAG-dev dev",
        "mkdir -p dev && ln -sf /etc/passwd dev/null",
    ]
    .iter()
    .enumerate()
    {
        let dir = t.dir.path().join(format!("evil{i}"));
        std::fs::create_dir(&dir).unwrap();
        let setup = setup.replace("TAG", &tag.to_string());
        let script = format!(
            "set -e; cd {d}; tar -xf {r}; {setup}; tar -cf ../evil{i}.tar .",
            d = dir.display(),
            r = rootfs.display()
        );
        let st = Command::new("sh").args(["-c", &script]).status().unwrap();
        assert!(st.success());
        let tar = t.dir.path().join(format!("evil{i}.tar"));
        let name = format!("evil{i}");
        t.ok(&["import", tar.to_str().unwrap(), &name]);
        let out = t.output(&[
            "run",
            "--rm",
            &name,
            "sh",
            "-c",
            "echo x > /dev/null; cat /etc/passwd | head -1",
        ]);
        if code(&out) == 0 {
            // Contained: the write went to the real /dev/null.
            assert_eq!(stdout(&out), "root:x:0:0:root:/root:/bin/sh\n", "{setup}");
        } else {
            assert_eq!(code(&out), 125, "{setup}: {}", stderr(&out));
        }
        for d in ["proc", "sys", "dev"] {
            let host = format!("/tmp/kiln-hostile-{tag}-{d}");
            assert!(
                !Path::new(&host).exists(),
                "{setup}: {host} was created on the host"
            );
        }
    }
}

#[test]
fn logs_follow_until_the_container_ends() {
    let t = busybox();
    t.ok(&[
        "run",
        "-d",
        "--name",
        "lf",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo line$i; sleep 0.3; done",
    ]);
    let start = Instant::now();
    let out = t.ok(&["logs", "-f", "lf"]);
    assert_eq!(out, "line1\nline2\nline3\n");
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(t.ok(&["logs", "--tail", "2", "lf"]), "line2\nline3\n");
    t.ok(&["rm", "lf"]);
}

/// GET / from 127.0.0.1:port, retried while the server starts.
fn http_get(port: u16) -> String {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body)
        })();
        match attempt {
            Ok(b) if b.contains("200 OK") => return b,
            other => assert!(Instant::now() < deadline, "GET :{port}: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

const HTTPD: &str = "mkdir -p /www && echo hello from $(hostname) > /www/index.html && exec httpd -f -p 8080 -h /www";

#[test]
fn bridge_network_addresses_and_files() {
    let t = busybox();
    let out = t.ok(&[
        "run",
        "--rm",
        "--hostname",
        "web1",
        "--add-host",
        "db:192.0.2.7",
        "--add-host",
        "gw:host-gateway",
        "--dns",
        "192.0.2.53",
        "busybox",
        "sh",
        "-c",
        "ip -4 -o addr show eth0; ip route; cat /etc/hosts /etc/resolv.conf",
    ]);
    let addr = out
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .unwrap_or_else(|| panic!("no address on eth0: {out}"))
        .split('/')
        .next()
        .unwrap()
        .to_string();
    assert!(addr.starts_with("10.213."), "{out}");
    assert!(out.contains("default via 10.213.0.1"), "{out}");
    assert!(out.contains(&format!("{addr}\tweb1\n")), "{out}");
    assert!(out.contains("192.0.2.7\tdb\n"), "{out}");
    assert!(out.contains("10.213.0.1\tgw\n"), "{out}");
    assert!(out.contains("nameserver 192.0.2.53\n"), "{out}");
    // none: loopback only, and up.
    let out = t.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "ip -o link; ping -c1 -W1 127.0.0.1 >/dev/null && echo lo-ok",
    ]);
    assert_eq!(
        out.lines().filter(|l| l.contains(": ")).count(),
        1,
        "only lo: {out}"
    );
    assert!(out.contains(": lo:") && out.ends_with("lo-ok\n"), "{out}");
    let out = t.output(&["run", "--rm", "--network", "nosuch", "busybox", "true"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("network nosuch not found"),
        "{}",
        stderr(&out)
    );
    // Two containers talk over the bridge.
    t.ok(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--hostname",
        "srv",
        "busybox",
        "sh",
        "-c",
        HTTPD,
    ]);
    let inspect = t.ok(&[
        "inspect",
        "--format",
        "{{.NetworkSettings.IPAddress}}",
        "srv",
    ]);
    let ip = inspect.trim();
    assert!(ip.starts_with("10.213."), "{inspect}");
    let url = format!("http://{ip}:8080/");
    let got = t.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        &format!("for i in $(seq 50); do wget -qO- {url} && exit 0; sleep 0.1; done; exit 1"),
    ]);
    assert_eq!(got, "hello from srv\n");
    let srv_id = t.ok(&["inspect", "--format", "{{.Id}}", "srv"]);
    t.ok(&["rm", "-f", "srv"]);
    // Its address is given back. (Whether the next container gets that
    // very address depends on the other tests running on the shared test
    // bridge at the same moment: the lowest-free rule is the IPAM's unit
    // test.)
    let ipam = std::fs::read_to_string("/run/kiln-tests/network/ipam.json").unwrap();
    assert!(
        !ipam.contains(srv_id.trim()),
        "{ip} of srv not released: {ipam}"
    );
}

#[test]
fn published_ports_reach_the_container() {
    let t = busybox();
    // A random host port for the container's 8080, and `kiln port`.
    t.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--hostname",
        "web",
        "-p",
        "8080",
        "busybox",
        "sh",
        "-c",
        HTTPD,
    ]);
    let p = t.ok(&["port", "web", "8080/tcp"]);
    let first = p.lines().next().unwrap();
    assert!(first.starts_with("0.0.0.0:"), "{p}");
    let port: u16 = first.rsplit(':').next().unwrap().parse().unwrap();
    assert!(http_get(port).contains("hello from web"));
    let all = t.ok(&["port", "web"]);
    assert!(
        all.starts_with(&format!("8080/tcp -> 0.0.0.0:{port}")),
        "{all}"
    );
    let ps = t.ok(&["ps", "--format", "{{.Ports}}"]);
    assert!(ps.contains(&format!("0.0.0.0:{port}->8080/tcp")), "{ps}");
    let out = t.output(&["port", "web", "9999"]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("No public port '9999/tcp' published for web"),
        "{}",
        stderr(&out)
    );
    // A fixed host port on 127.0.0.1; the same port again is refused.
    let fixed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spec = format!("127.0.0.1:{fixed}:8080");
    t.ok(&[
        "run",
        "-d",
        "--name",
        "fixed",
        "--hostname",
        "fixed",
        "-p",
        &spec,
        "busybox",
        "sh",
        "-c",
        HTTPD,
    ]);
    assert!(http_get(fixed).contains("hello from fixed"));
    let out = t.output(&[
        "run", "-d", "--name", "clash", "-p", &spec, "busybox", "sh", "-c", HTTPD,
    ]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&fixed.to_string()),
        "{}",
        stderr(&out)
    );
    t.ok(&["rm", "-f", "web", "fixed", "clash"]);
    // Released with the container.
    std::net::TcpListener::bind(("127.0.0.1", fixed)).expect("port still bound after rm -f");
    // -P publishes the image's EXPOSE.
    t.ok(&["run", "--name", "base", "busybox", "true"]);
    t.ok(&["commit", "-c", "EXPOSE 8080/tcp", "base", "exposed:1"]);
    t.ok(&[
        "run",
        "-d",
        "--name",
        "all",
        "--hostname",
        "all",
        "-P",
        "exposed:1",
        "sh",
        "-c",
        HTTPD,
    ]);
    let p = t.ok(&["port", "all", "8080"]);
    let port: u16 = p
        .lines()
        .next()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(http_get(port).contains("hello from all"));
    let ports = t.ok(&[
        "inspect",
        "--format",
        "{{json .NetworkSettings.Ports}}",
        "all",
    ]);
    assert!(
        ports.contains(&format!("\"HostPort\":\"{port}\"")),
        "{ports}"
    );
    t.ok(&["rm", "-f", "all", "base"]);
}

#[test]
fn commit_pauses_a_running_container_and_thaws_it() {
    let t = busybox();
    t.ok(&[
        "run",
        "-d",
        "--name",
        "busy",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo $i > /count; usleep 2000; done",
    ]);
    // The loop truncates then writes: read again when it caught it between.
    let read = || {
        for _ in 0..50 {
            let text = t.ok(&["exec", "busy", "cat", "/count"]);
            if let Ok(n) = text.trim().parse::<u64>() {
                return n;
            }
        }
        0
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while read() == 0 {
        assert!(Instant::now() < deadline, "the loop never wrote");
    }
    // Without the freeze, this races the loop's truncate-and-write of
    // /count ("shrank while being read"); frozen, it never does.
    for _ in 0..3 {
        let id = t.ok(&["commit", "busy", "snap:1"]);
        assert!(id.starts_with("sha256:"), "{id}");
    }
    // Thawed afterwards: the loop goes on.
    let before = read();
    std::thread::sleep(Duration::from_millis(100));
    assert!(read() > before, "the container stayed frozen after commit");
    t.ok(&["kill", "busy"]);
    t.ok(&["commit", "--pause=false", "busy", "snap:2"]);
    t.ok(&["rm", "-f", "busy"]);
    // The freeze can catch the loop between its truncate and its write, so
    // the committed /count is a number or empty; it must be there.
    let count = t.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "snap:1",
        "cat",
        "/count",
    ]);
    let count = count.trim();
    assert!(
        count.is_empty() || count.parse::<u64>().is_ok_and(|n| n > 0),
        "/count in the committed image: {count:?}"
    );
}

#[test]
fn keyctl_is_refused() {
    // A static program calling keyctl(2) directly: busybox has no keyctl.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("k.c");
    std::fs::write(
        &src,
        "#include <errno.h>\n#include <stdio.h>\n#include <unistd.h>\n#include <sys/syscall.h>\n\
         int main(void){long r=syscall(SYS_keyctl,0/*GET_KEYRING_ID*/,-3/*SESSION*/,1);\
         if(r<0&&errno==EPERM){puts(\"EPERM\");return 0;}printf(\"r=%ld errno=%d\\n\",r,errno);return 1;}\n",
    )
    .unwrap();
    let bin = dir.path().join("k");
    let cc = Command::new("cc")
        .args(["-static", "-O1", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .expect("cc is installed by scripts/install-deps.sh");
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let t = busybox();
    let v = format!("{}:/k:ro", bin.display());
    let out = t.output(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &v,
        "busybox",
        "/k",
    ]);
    assert_eq!(stdout(&out), "EPERM\n", "{}", stderr(&out));
    assert_eq!(code(&out), 0);
}

#[test]
fn attach_only_the_streams_asked_for() {
    let t = busybox();
    let out = t.output(&[
        "run",
        "-a",
        "stderr",
        "--name",
        "a1",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert_eq!(stderr(&out), "err\n");
    // The log has both.
    let logs = t.output(&["logs", "a1"]);
    assert_eq!(stdout(&logs), "out\n");
    assert_eq!(stderr(&logs), "err\n");
    let out = t.output(&[
        "run",
        "-a",
        "STDOUT",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2",
    ]);
    assert_eq!(
        (stdout(&out).as_str(), stderr(&out).as_str()),
        ("out\n", "")
    );
    let out = t.output(&["run", "-d", "-a", "stdout", "busybox", "true"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("conflicting options"),
        "{}",
        stderr(&out)
    );
}
