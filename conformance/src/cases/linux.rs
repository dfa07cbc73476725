//! config-linux.md: namespaces, user namespace mappings, devices, default
//! filesystems, sysctl, rootfsPropagation, masked/readonly paths, cgroups;
//! config.md mounts.

use crate::ensure;
use crate::harness::{
    cgroup_dirs, ctx, host, ns_inode, pid_alive, wait_until, CaseResult, Env, Outcome,
};
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};
use std::time::Duration;

const EROFS: i64 = 30;

/// The last mount on `point` (the one a path lookup sees).
fn mount_at<'a>(r: &'a Value, point: &str) -> Option<&'a Value> {
    r["mounts"]
        .as_array()?
        .iter()
        .rev()
        .find(|m| m["mount_point"] == point)
}

fn has_opt(list: &Value, opt: &str) -> bool {
    list.as_str().unwrap_or("").split(',').any(|o| o == opt)
}

/// The /proc/<pid>/ns name of a spec namespace type.
fn proc_ns(kind: &str) -> &str {
    match kind {
        "network" => "net",
        "mount" => "mnt",
        other => other,
    }
}

fn new_namespace(env: &Env, kind: &str) -> CaseResult {
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    if let Some(list) = b.config["linux"]["namespaces"].as_array_mut() {
        if !list.iter().any(|n| n["type"] == kind) {
            list.push(json!({"type": kind}));
        }
    }
    let r = env.report(&b, &id)?;
    let name = proc_ns(kind);
    let host = ns_inode("self", name);
    ensure!(host.is_some(), "host has no /proc/self/ns/{name}");
    ensure!(
        r["ns"][name].as_u64() != host,
        "{kind} namespace inode {} is the host's",
        r["ns"][name]
    );
    Ok(Outcome::Pass)
}

pub fn new_pid(env: &Env) -> CaseResult {
    new_namespace(env, "pid")
}
pub fn new_network(env: &Env) -> CaseResult {
    new_namespace(env, "network")
}
pub fn new_ipc(env: &Env) -> CaseResult {
    new_namespace(env, "ipc")
}
pub fn new_uts(env: &Env) -> CaseResult {
    new_namespace(env, "uts")
}
pub fn new_mount(env: &Env) -> CaseResult {
    new_namespace(env, "mount")
}
pub fn new_cgroup(env: &Env) -> CaseResult {
    new_namespace(env, "cgroup")
}
/// A kernel without time namespaces (before 5.6, or without
/// CONFIG_TIME_NS) cannot make one: create must fail and leave nothing.
pub fn new_time(env: &Env) -> CaseResult {
    if !crate::harness::host::time_namespace() {
        env.note("this kernel has no time namespace: it must be refused".into());
        return super::errors::broken(env, |b| {
            if let Some(list) = b.config["linux"]["namespaces"].as_array_mut() {
                list.push(json!({"type": "time"}));
            }
        });
    }
    new_namespace(env, "time")
}

pub fn inherit(env: &Env) -> CaseResult {
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    b.set_namespaces(&["mount"]);
    if let Some(o) = b.config.as_object_mut() {
        o.remove("hostname");
    }
    let r = env.report(&b, &id)?;
    for name in ["pid", "net", "ipc", "uts", "cgroup", "user", "time"] {
        let host = ns_inode("self", name);
        ensure!(
            r["ns"][name].as_u64() == host,
            "{name} namespace not listed but inode {} != host's {host:?}",
            r["ns"][name]
        );
    }
    ensure!(
        r["ns"]["mnt"].as_u64() != ns_inode("self", "mnt"),
        "mount namespace listed but shared with the host"
    );
    Ok(Outcome::Pass)
}

/// A host process in a new namespace of `flag` (`unshare --ipc` ...), killed at cleanup.
fn namespace_holder(env: &Env, flag: &str, ns: &str) -> Result<String, String> {
    let child = ctx(
        Command::new("unshare")
            .args([flag, "sleep", "1000"])
            .stdin(Stdio::null())
            .spawn(),
        "spawn unshare",
    )?;
    let pid = child.id().to_string();
    let holder = std::sync::Arc::new(std::sync::Mutex::new(child));
    let h = holder.clone();
    env.on_cleanup(move || {
        if let Ok(mut c) = h.lock() {
            let _ = c.kill();
            let _ = c.wait();
        }
    });
    let host = ns_inode("self", ns);
    ensure!(
        wait_until(Duration::from_secs(10), || ns_inode(&pid, ns)
            .is_some_and(|i| Some(i) != host)),
        "unshare {flag} never entered a new namespace"
    );
    Ok(pid)
}

/// A named network namespace (`ip netns add`), deleted at cleanup.
pub fn named_netns(env: &Env) -> Result<String, String> {
    let name = format!("rrunconf-{}-{}", std::process::id(), env.runtime.name);
    let st = ctx(
        Command::new("ip").args(["netns", "add", &name]).status(),
        "ip netns add",
    )?;
    ensure!(st.success(), "ip netns add {name} failed");
    let n = name.clone();
    env.on_cleanup(move || {
        let _ = Command::new("ip").args(["netns", "del", &n]).status();
    });
    Ok(format!("/var/run/netns/{name}"))
}

pub fn join_by_path(env: &Env) -> CaseResult {
    let netns = named_netns(env)?;
    let holder = namespace_holder(env, "--ipc", "ipc")?;
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    let ipc_path = format!("/proc/{holder}/ns/ipc");
    b.config["linux"]["namespaces"] = json!([
        {"type": "pid"}, {"type": "uts"}, {"type": "mount"},
        {"type": "network", "path": netns}, {"type": "ipc", "path": ipc_path}
    ]);
    let r = env.report(&b, &id)?;
    let net_ino = ctx(fs::metadata(&netns), "stat netns")?.ino();
    ensure!(
        r["ns"]["net"] == net_ino,
        "network ns inode {} != {netns}'s {net_ino}",
        r["ns"]["net"]
    );
    let ipc_ino = ns_inode(&holder, "ipc");
    ensure!(
        r["ns"]["ipc"].as_u64() == ipc_ino,
        "ipc ns inode {} != {ipc_path}'s {ipc_ino:?}",
        r["ns"]["ipc"]
    );
    let _ = env.cli(&["delete", "--force", &id]);
    ensure!(
        fs::metadata(&netns).is_ok_and(|m| m.ino() == net_ino),
        "{netns} was removed or replaced by the container's delete"
    );
    ensure!(
        pid_alive(holder.parse().unwrap_or(0)),
        "the ipc namespace holder {holder} died with the container"
    );
    Ok(Outcome::Pass)
}

pub fn user_mappings(env: &Env) -> CaseResult {
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    if let Some(list) = b.config["linux"]["namespaces"].as_array_mut() {
        list.push(json!({"type": "user"}));
    }
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    b.set_args(&["/checker", "report"]);
    let r = env.report(&b, &id)?;
    let norm = |v: &Value| {
        v.as_str()
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    ensure!(
        norm(&r["uid_map"]) == "0 100000 65536",
        "uid_map inside is {:?}",
        r["uid_map"]
    );
    ensure!(
        norm(&r["gid_map"]) == "0 200000 65536",
        "gid_map inside is {:?}",
        r["gid_map"]
    );
    ensure!(
        r["uid"][0] == 0 && r["gid"][0] == 0,
        "uid {} gid {} inside, want 0",
        r["uid"],
        r["gid"]
    );
    ensure!(
        r["ns"]["user"].as_u64() != ns_inode("self", "user"),
        "user namespace is the host's"
    );
    Ok(Outcome::Pass)
}

fn dev<'a>(r: &'a Value, path: &str) -> Option<&'a Value> {
    r["dev"].as_array()?.iter().find(|d| d["path"] == path)
}

pub fn device_entry(env: &Env) -> CaseResult {
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    b.config["linux"]["devices"] = json!([
        {"path": "/dev/rrun-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 1000, "gid": 1001},
        {"path": "/dev/rrun-fifo", "type": "p", "fileMode": 0o600, "uid": 0, "gid": 0}
    ]);
    let r = env.report(&b, &id)?;
    let d = dev(&r, "/dev/rrun-null").ok_or("/dev/rrun-null missing")?;
    let want =
        json!({"kind": "c", "major": 1, "minor": 3, "mode": 0o640, "uid": 1000, "gid": 1001});
    for key in ["kind", "major", "minor", "mode", "uid", "gid"] {
        ensure!(
            d[key] == want[key],
            "/dev/rrun-null {key} is {}, want {}",
            d[key],
            want[key]
        );
    }
    let f = dev(&r, "/dev/rrun-fifo").ok_or("/dev/rrun-fifo missing")?;
    ensure!(
        f["kind"] == "p" && f["mode"] == 0o600,
        "/dev/rrun-fifo is {f}, want a 0600 fifo"
    );
    Ok(Outcome::Pass)
}

pub fn default_devices(env: &Env) -> CaseResult {
    let id = env.id("c");
    let b = env.bundle(&id)?;
    let r = env.report(&b, &id)?;
    for (path, major, minor) in [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ] {
        let d = dev(&r, path).ok_or_else(|| format!("{path} missing"))?;
        ensure!(
            d["kind"] == "c" && d["major"] == major && d["minor"] == minor,
            "{path} is {d}, want char {major}:{minor}"
        );
    }
    let ptmx = dev(&r, "/dev/ptmx").ok_or("/dev/ptmx missing")?;
    let ok = ptmx["link"] == "pts/ptmx"
        || ptmx["link"] == "/dev/pts/ptmx"
        || (ptmx["kind"] == "c" && ptmx["major"] == 5 && ptmx["minor"] == 2);
    ensure!(ok, "/dev/ptmx is {ptmx}, want a link to pts/ptmx");
    for (path, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        let d = dev(&r, path).ok_or_else(|| format!("{path} missing"))?;
        ensure!(
            d["kind"] == "l" && d["link"] == target,
            "{path} is {d}, want a symlink to {target}"
        );
    }
    Ok(Outcome::Pass)
}

pub fn default_filesystems(env: &Env) -> CaseResult {
    let id = env.id("c");
    let b = env.bundle(&id)?;
    let r = env.report(&b, &id)?;
    for (point, fstype) in [
        ("/proc", "proc"),
        ("/sys", "sysfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
    ] {
        let m = mount_at(&r, point).ok_or_else(|| format!("nothing mounted on {point}"))?;
        ensure!(
            m["fstype"] == fstype,
            "{point} is {}, want {fstype}",
            m["fstype"]
        );
    }
    Ok(Outcome::Pass)
}

pub fn mount_flags(env: &Env) -> CaseResult {
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    b.add_mount(
        json!({"destination": "/mnt/flags", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "noexec", "relatime", "mode=750", "size=1m"]}),
    );
    b.add_mount(
        json!({"destination": "/mnt/rotmp", "type": "tmpfs", "source": "tmpfs", "options": ["ro"]}),
    );
    b.set_args(&["/checker", "report", "path:/mnt/rotmp", "path:/mnt/flags"]);
    let r = env.report(&b, &id)?;
    let m = mount_at(&r, "/mnt/flags").ok_or("nothing mounted on /mnt/flags")?;
    ensure!(
        m["fstype"] == "tmpfs",
        "/mnt/flags is {}, want tmpfs",
        m["fstype"]
    );
    for opt in ["rw", "nosuid", "nodev", "noexec", "relatime"] {
        ensure!(
            has_opt(&m["options"], opt),
            "/mnt/flags options {} lack {opt}",
            m["options"]
        );
    }
    for opt in ["mode=750", "size=1024k"] {
        ensure!(
            has_opt(&m["super_options"], opt),
            "/mnt/flags tmpfs options {} lack {opt}",
            m["super_options"]
        );
    }
    let ro = mount_at(&r, "/mnt/rotmp").ok_or("nothing mounted on /mnt/rotmp")?;
    ensure!(
        has_opt(&ro["options"], "ro"),
        "/mnt/rotmp options {} lack ro",
        ro["options"]
    );
    ensure!(
        r["paths"]["/mnt/rotmp"]["write_errno"] == EROFS,
        "/mnt/rotmp is not EROFS: {}",
        r["paths"]["/mnt/rotmp"]
    );
    ensure!(
        r["paths"]["/mnt/flags"]["writable"] == true,
        "/mnt/flags is not writable: {}",
        r["paths"]["/mnt/flags"]
    );
    Ok(Outcome::Pass)
}

pub fn mount_bind(env: &Env) -> CaseResult {
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    let host = env.work.join("bind-source");
    ctx(fs::create_dir_all(&host), "mkdir bind source")?;
    ctx(
        fs::write(host.join("hello"), "hello from the host\n"),
        "write bind source file",
    )?;
    b.add_mount(json!({"destination": "/mnt/bind", "type": "bind", "source": host.display().to_string(), "options": ["rbind", "ro"]}));
    b.set_args(&[
        "/checker",
        "report",
        "read:/mnt/bind/hello",
        "path:/mnt/bind/hello",
    ]);
    let r = env.report(&b, &id)?;
    ensure!(
        r["files"]["/mnt/bind/hello"] == "hello from the host\n",
        "/mnt/bind/hello reads {}",
        r["files"]["/mnt/bind/hello"]
    );
    ensure!(
        r["paths"]["/mnt/bind/hello"]["write_errno"] == EROFS,
        "ro bind is writable: {}",
        r["paths"]["/mnt/bind/hello"]
    );
    let _ = env.cli(&["delete", "--force", &id]);
    ensure!(
        host.join("hello").is_file(),
        "the bind source was removed by the container's delete"
    );
    Ok(Outcome::Pass)
}

pub fn mount_order(env: &Env) -> CaseResult {
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    b.add_mount(json!({"destination": "/mnt/order", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    b.add_mount(json!({"destination": "/mnt/order/inner", "type": "tmpfs", "source": "tmpfs", "options": ["size=2m"]}));
    let r = env.report(&b, &id)?;
    let outer = mount_at(&r, "/mnt/order").ok_or("nothing mounted on /mnt/order")?;
    let inner = mount_at(&r, "/mnt/order/inner").ok_or("nothing mounted on /mnt/order/inner")?;
    ensure!(
        inner["parent"] == outer["id"],
        "/mnt/order/inner (parent {}) is not mounted on /mnt/order (id {}): wrong order",
        inner["parent"],
        outer["id"]
    );
    Ok(Outcome::Pass)
}

pub fn sysctl(env: &Env) -> CaseResult {
    let host_before = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap_or_default();
    let want = if host_before.trim() == "1" { "0" } else { "1" };
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": want, "kernel.msgmax": "12345"});
    b.set_args(&[
        "/checker",
        "report",
        "sysctl:net.ipv4.ip_forward",
        "sysctl:kernel.msgmax",
    ]);
    let r = env.report(&b, &id)?;
    ensure!(
        r["sysctl"]["net.ipv4.ip_forward"] == want,
        "net.ipv4.ip_forward inside is {}, want {want}",
        r["sysctl"]["net.ipv4.ip_forward"]
    );
    ensure!(
        r["sysctl"]["kernel.msgmax"] == "12345",
        "kernel.msgmax inside is {}, want 12345",
        r["sysctl"]["kernel.msgmax"]
    );
    let host_after = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap_or_default();
    ensure!(
        host_after == host_before,
        "the host's net.ipv4.ip_forward changed ({} -> {})",
        host_before.trim(),
        host_after.trim()
    );
    Ok(Outcome::Pass)
}

pub fn rootfs_propagation(env: &Env) -> CaseResult {
    let mut wrong = Vec::new();
    for prop in ["shared", "slave", "private", "unbindable"] {
        let id = env.id(prop);
        let mut b = env.bundle(&id)?;
        b.config["linux"]["rootfsPropagation"] = json!(prop);
        let r = match env.report(&b, &id) {
            Ok(r) => r,
            Err(e) => {
                wrong.push(format!("{prop}: {}", crate::harness::truncate(&e, 160)));
                continue;
            }
        };
        let root = mount_at(&r, "/").ok_or("no / mount")?;
        let optional = root["optional"].as_str().unwrap_or("");
        let shared = optional.contains("shared:");
        let ok = match prop {
            "shared" => shared,
            "unbindable" => optional.contains("unbindable"),
            _ => !shared,
        };
        if !ok {
            wrong.push(format!("{prop}: / has propagation {optional:?}"));
        }
    }
    ensure!(wrong.is_empty(), "rootfsPropagation {}", wrong.join("; "));
    Ok(Outcome::Pass)
}

pub fn masked_paths(env: &Env) -> CaseResult {
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    ctx(
        fs::write(b.rootfs().join("etc/secret"), "secret\n"),
        "write etc/secret",
    )?;
    ctx(
        fs::create_dir_all(b.rootfs().join("home/secret-dir")),
        "mkdir home/secret-dir",
    )?;
    ctx(
        fs::write(b.rootfs().join("home/secret-dir/f"), "x"),
        "write home/secret-dir/f",
    )?;
    b.config["linux"]["maskedPaths"] = json!([
        "/proc/kcore",
        "/sys/firmware",
        "/etc/secret",
        "/home/secret-dir",
        "/proc/rrun-does-not-exist"
    ]);
    b.set_args(&[
        "/checker",
        "report",
        "path:/proc/kcore",
        "path:/sys/firmware",
        "path:/etc/secret",
        "path:/home/secret-dir",
    ]);
    let r = env.report(&b, &id)?;
    for p in [
        "/proc/kcore",
        "/sys/firmware",
        "/etc/secret",
        "/home/secret-dir",
    ] {
        let probe = &r["paths"][p];
        // Masked: reads give nothing (file on /dev/null, dir on an empty tmpfs).
        ensure!(
            probe["exists"] == false || probe["empty"] == true || probe["readable"] == false,
            "masked {p} still shows content: {probe}"
        );
    }
    Ok(Outcome::Pass)
}

pub fn readonly_paths(env: &Env) -> CaseResult {
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    b.config["root"]["readonly"] = json!(false);
    ctx(
        fs::create_dir_all(b.rootfs().join("home/ro-dir")),
        "mkdir home/ro-dir",
    )?;
    b.config["linux"]["readonlyPaths"] =
        json!(["/proc/sys", "/proc/sysrq-trigger", "/home/ro-dir"]);
    b.set_args(&[
        "/checker",
        "report",
        "path:/home/ro-dir",
        "path:/home",
        "path:/proc/sys/kernel/domainname",
        "path:/proc/sysrq-trigger",
    ]);
    let r = env.report(&b, &id)?;
    let mut listed = vec!["/home/ro-dir", "/proc/sys/kernel/domainname"];
    // Kernels without CONFIG_MAGIC_SYSRQ have no /proc/sysrq-trigger.
    if std::path::Path::new("/proc/sysrq-trigger").exists() {
        listed.push("/proc/sysrq-trigger");
    }
    for p in listed {
        ensure!(
            r["paths"][p]["write_errno"] == EROFS,
            "readonly path {p} is not EROFS: {}",
            r["paths"][p]
        );
    }
    ensure!(
        r["paths"]["/home"]["writable"] == true,
        "/home (not listed) is not writable: {}",
        r["paths"]["/home"]
    );
    Ok(Outcome::Pass)
}

fn read_trim(path: &std::path::Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The container is in its absolute cgroupsPath (every hierarchy's
/// cgroup.procs, or its one cgroup on a unified host), with its memory
/// and pids limits (v1's memory.limit_in_bytes, memory.max on cgroup v2),
/// read on the host and inside; delete removes the cgroup.
pub fn cgroup_resources(env: &Env) -> CaseResult {
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    let limit: u64 = 64 << 20;
    b.config["linux"]["resources"]["memory"] = json!({"limit": limit});
    b.config["linux"]["resources"]["pids"] = json!({"limit": 99});
    let limit_file = if host::unified() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    let inside = |ctrl: &str, file: &str| format!("{}/{file}", host::inside_dir(ctrl));
    let (inside_mem_file, inside_pids_file) =
        (inside("memory", limit_file), inside("pids", "pids.max"));
    let script =
        format!("/checker report read:{inside_mem_file} read:{inside_pids_file}; exec sleep 1000");
    b.set_args(&["sh", "-c", &script]);
    b.write()?;
    let created = env.create(&b, &id)?;
    env.start(&id)?;
    let pid = env.state(&id)?["pid"].as_i64().unwrap_or(0).to_string();
    let rel = env.cgroups_path(&id);
    let host = |ctrl: &str, file: &str| crate::harness::cgroup_file(&rel, ctrl, file);
    let mem = read_trim(&host("memory", limit_file));
    ensure!(
        mem == limit.to_string(),
        "host {} is {mem:?}, want {limit}",
        host("memory", limit_file).display()
    );
    let pids = read_trim(&host("pids", "pids.max"));
    ensure!(
        pids == "99",
        "host {} is {pids:?}, want 99",
        host("pids", "pids.max").display()
    );
    for ctrl in ["memory", "pids"] {
        let procs = fs::read_to_string(host(ctrl, "cgroup.procs")).unwrap_or_default();
        ensure!(
            procs.lines().any(|l| l == pid),
            "container pid {pid} not in {}",
            host(ctrl, "cgroup.procs").display()
        );
    }
    let r = created.wait_report()?;
    let inside_mem = r["files"][&inside_mem_file]
        .as_str()
        .unwrap_or("")
        .trim()
        .to_string();
    ensure!(
        inside_mem == limit.to_string(),
        "{inside_mem_file} inside is {inside_mem:?}, want {limit}"
    );
    let inside_pids = r["files"][&inside_pids_file]
        .as_str()
        .unwrap_or("")
        .trim()
        .to_string();
    ensure!(
        inside_pids == "99",
        "pids.max inside is {inside_pids:?}, want 99"
    );
    let kill = env.cli(&["kill", &id, "KILL"]);
    ensure!(kill.code == 0, "kill: {}", kill.summary());
    env.wait_status(&id, "stopped")?;
    let del = env.cli(&["delete", &id]);
    ensure!(del.code == 0, "delete: {}", del.summary());
    let left: Vec<String> = cgroup_dirs(&rel)
        .into_iter()
        .filter(|d| d.exists())
        .map(|d| d.display().to_string())
        .collect();
    ensure!(left.is_empty(), "cgroup dirs left after delete: {left:?}");
    Ok(Outcome::Pass)
}

pub fn mount_label(_env: &Env) -> CaseResult {
    let selinux = fs::read_to_string("/proc/filesystems")
        .unwrap_or_default()
        .contains("selinuxfs");
    if !selinux {
        return Ok(Outcome::Skip(
            "no SELinux on this host: mountLabel cannot be observed".into(),
        ));
    }
    Ok(Outcome::Skip("mountLabel check not written yet".into()))
}
