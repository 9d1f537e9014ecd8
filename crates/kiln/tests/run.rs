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

#[test]
fn init_reaps_orphans_and_forwards_signals() {
    let t = busybox();
    // 100 children that orphan a grandchild each; PID 1 must reap them.
    let out = t.ok(&[
        "run", "--rm", "--init", "busybox", "sh", "-c",
        "for i in $(seq 1 100); do (sleep 0.05 &); done; sleep 1; ps -o stat | grep -c '^Z' || true",
    ]);
    assert_eq!(out.trim(), "0", "zombies left: {out}");
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
    t.ok(&["rm", "web"]);
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
    let out = t.ok(&["create", "busybox", "true"]);
    let id = out.trim();
    t.ok(&["start", "-a", id]);
    t.ok(&["rm", id]);
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
        "bomb() { bomb | bomb & }; bomb; sleep 2; echo survived",
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
