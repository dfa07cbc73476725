//! Security-relevant behaviour: mount targets stay in the rootfs
//! (CVE-2021-30465), no host fd leaks (CVE-2024-21626) and --preserve-fds,
//! the terminal. The `security.<cve>` cases are in the `security_*`
//! modules.

use crate::ensure;
use crate::harness::{ctx, parse_report, CallOpts, CaseResult, Env, Outcome};
use serde_json::{json, Value};
use std::fs;
use std::os::unix::io::AsRawFd;
use std::time::Duration;

pub fn mount_symlink_escape(env: &Env) -> CaseResult {
    let host_dir = std::path::PathBuf::from(format!(
        "/tmp/rrunconf-escape-{}-{}",
        std::process::id(),
        env.runtime.name
    ));
    ctx(fs::create_dir_all(&host_dir), "mkdir host target")?;
    ctx(
        fs::write(host_dir.join("marker"), "host"),
        "write host marker",
    )?;
    let cleanup_dir = host_dir.clone();
    env.on_cleanup(move || {
        let _ = fs::remove_dir_all(&cleanup_dir);
    });
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    // An absolute symlink in the rootfs: it must resolve inside the rootfs, not on the host.
    ctx(
        std::os::unix::fs::symlink(&host_dir, b.rootfs().join("escape")),
        "symlink rootfs/escape",
    )?;
    b.add_mount(json!({"destination": "/escape/sub", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    let out = {
        b.write()?;
        env.run(&b, &id)
    };
    let entries: Vec<String> = fs::read_dir(&host_dir)
        .map(|it| {
            it.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    ensure!(
        entries == ["marker"],
        "the host dir behind the symlink was changed: {entries:?}"
    );
    let host_mounts = crate::harness::host_mounts_under(&host_dir);
    ensure!(
        host_mounts.is_empty(),
        "a mount landed on the host: {host_mounts:?}"
    );
    if out.code != 0 {
        // Refusing the symlinked destination is safe too.
        env.note(format!("run refused the destination: {}", out.summary()));
        return Ok(Outcome::Pass);
    }
    let r = parse_report(&out.stdout)?;
    let inside = format!("{}/sub", host_dir.display());
    let mounted = r["mounts"].as_array().is_some_and(|m| {
        m.iter()
            .any(|m| m["mount_point"] == inside.as_str() || m["mount_point"] == "/escape/sub")
    });
    ensure!(
        mounted,
        "the tmpfs is not mounted inside the container at {inside}"
    );
    Ok(Outcome::Pass)
}

pub fn terminal(env: &Env) -> CaseResult {
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    b.config["process"]["terminal"] = json!(true);
    b.write()?;
    let sock = env.work.join("console.sock");
    let rx = ctx(
        crate::console::receive_master(&sock),
        "listen on console socket",
    )?;
    let created = env.cli(&[
        "create",
        "--bundle",
        &b.dir_str(),
        "--console-socket",
        &sock.display().to_string(),
        &id,
    ]);
    ensure!(
        created.code == 0,
        "create --console-socket: {}",
        created.summary()
    );
    let master = rx
        .recv_timeout(Duration::from_secs(20))
        .map_err(|_| "no pty master received on the console socket".to_string())??;
    env.start(&id)?;
    let text = crate::console::read_all(master, Duration::from_secs(20));
    let r = parse_report(&text)?;
    ensure!(
        r["isatty"] == json!([true, true, true]),
        "stdio isatty {} want all true",
        r["isatty"]
    );
    let console = r["dev"]
        .as_array()
        .and_then(|d| d.iter().find(|e| e["path"] == "/dev/console"))
        .cloned()
        .unwrap_or(Value::Null);
    ensure!(
        console["kind"] == "c" && console["major"] == 136,
        "/dev/console is {console}, want the pty (char 136:N)"
    );
    let fd0 = r["fds"]["0"].as_str().unwrap_or("");
    ensure!(
        fd0.starts_with("/dev/pts/") || fd0 == "/dev/console",
        "fd 0 is {fd0:?}, want the pty"
    );
    Ok(Outcome::Pass)
}

pub fn preserve_fds(env: &Env) -> CaseResult {
    let marker = env.work.join("preserved.txt");
    ctx(fs::write(&marker, "preserved-fd-marker\n"), "write marker")?;
    let file = ctx(fs::File::open(&marker), "open marker")?;
    for preserve in [true, false] {
        let id = env.id(if preserve { "with" } else { "without" });
        let mut b = env.bundle(&id)?;
        b.set_args(&["/checker", "report", "read:/proc/self/fd/3"]);
        b.write()?;
        let mut args = vec!["run", "--bundle"];
        let dir = b.dir_str();
        args.push(&dir);
        if preserve {
            args.extend(["--preserve-fds", "1"]);
        }
        args.push(&id);
        // fd 3 is the one to pass; fd 4 is a leaked host fd that must not arrive.
        let out = env.cli_opts(
            &args,
            CallOpts {
                fds: vec![(file.as_raw_fd(), 3), (file.as_raw_fd(), 4)],
            },
        );
        ensure!(
            out.code == 0,
            "run (preserve={preserve}): {}",
            out.summary()
        );
        let r = parse_report(&out.stdout)?;
        let mut fds: Vec<String> = r["fds"]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        fds.sort();
        let want: Vec<&str> = if preserve {
            vec!["0", "1", "2", "3"]
        } else {
            vec!["0", "1", "2"]
        };
        ensure!(
            fds == want,
            "fds in the container (preserve={preserve}): {}, want {want:?}",
            r["fds"]
        );
        if preserve {
            ensure!(
                r["files"]["/proc/self/fd/3"] == "preserved-fd-marker\n",
                "fd 3 reads {}",
                r["files"]["/proc/self/fd/3"]
            );
        }
    }
    Ok(Outcome::Pass)
}
