//! config-linux.md "Control groups" and its resource sections (Memory, CPU,
//! Pids, Block IO, Huge page limits, Network, Device allowlist, Unified),
//! and runc's cgroup commands: pause/resume, update, events --stats,
//! ps --format json.
//!
//! Values are read from the host's cgroup files and, through the checker,
//! from inside the container (its /sys/fs/cgroup shows its own cgroup):
//! v1's files on v1 and hybrid hosts, the unified tree's on a cgroup v2
//! host (memory.max, cpu.max, cpu.weight, io.max, cgroup.freeze...). A
//! controller this host lacks must make create fail and leave nothing.
//! Commands another issue implements are skipped (not failed) while rrun
//! still answers "not implemented yet".

use crate::ensure;
use crate::harness::{ctx, host, wait_until, CaseResult, Env, Outcome};
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A file of the container `id`'s cgroup on the host: in its v1
/// hierarchy of `controller`, or its cgroup on a unified host.
fn host_file(env: &Env, id: &str, controller: &str, file: &str) -> PathBuf {
    crate::harness::cgroup_file(&env.cgroups_path(id), controller, file)
}

/// The same file as the container sees it under its /sys/fs/cgroup.
fn inside_file(controller: &str, file: &str) -> String {
    format!("{}/{file}", host::inside_dir(controller))
}

fn read_trim(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// One expected cgroup file: hierarchy, file, and a check of its text.
struct Expect {
    controller: &'static str,
    file: &'static str,
    want: String,
    /// The file's text must contain `want` as a line (devices.list, the
    /// key/value files) rather than equal it.
    as_line: bool,
}

fn equals(controller: &'static str, file: &'static str, want: impl ToString) -> Expect {
    Expect {
        controller,
        file,
        want: want.to_string(),
        as_line: false,
    }
}

fn has_line(controller: &'static str, file: &'static str, want: impl ToString) -> Expect {
    Expect {
        controller,
        file,
        want: want.to_string(),
        as_line: true,
    }
}

fn matches(e: &Expect, text: &str) -> bool {
    if e.as_line {
        // BFQ's weight files read "500" or "default 500" by kernel version.
        let default = format!("default {}", e.want);
        text.lines()
            .any(|l| l.trim() == e.want || l.trim() == default)
    } else {
        text.trim() == e.want
    }
}

/// Create a container with `resources`, check every expected file on the
/// host (before start) and from inside (the checker's report), delete.
fn resources_case(env: &Env, resources: Value, expects: &[Expect]) -> CaseResult {
    resources_case_as(env, "c", resources, expects)
}

/// [`resources_case`] for the container id of `suffix`.
fn resources_case_as(env: &Env, suffix: &str, resources: Value, expects: &[Expect]) -> CaseResult {
    let id = env.id(suffix);
    let mut b = env.bundle(&id)?;
    b.config["linux"]["resources"] = resources;
    let mut report = String::from("/checker report");
    for e in expects {
        report.push_str(&format!(" read:{}", inside_file(e.controller, e.file)));
    }
    b.set_args(&["sh", "-c", &format!("{report}; exec sleep 1000")]);
    b.write()?;
    let created = env.create(&b, &id)?;
    for e in expects {
        let path = host_file(env, &id, e.controller, e.file);
        let text = fs::read_to_string(&path).unwrap_or_default();
        ensure!(
            matches(e, &text),
            "host {} is {:?}, want {:?}",
            path.display(),
            text.trim(),
            e.want
        );
    }
    env.start(&id)?;
    let r = created.wait_report()?;
    for e in expects {
        let key = inside_file(e.controller, e.file);
        let text = r["files"][&key].as_str().unwrap_or("");
        ensure!(
            matches(e, text),
            "inside, {key} is {:?}, want {:?}",
            text.trim(),
            e.want
        );
    }
    Ok(Outcome::Pass)
}

/// create must fail with `resources`, and leave no state and no cgroup.
fn refused_case(env: &Env, resources: Value, what: &str) -> CaseResult {
    refused_case_as(env, "c", resources, what)
}

/// [`refused_case`] for the container id of `suffix`.
fn refused_case_as(env: &Env, suffix: &str, resources: Value, what: &str) -> CaseResult {
    let id = env.id(suffix);
    let mut b = env.bundle(&id)?;
    b.config["linux"]["resources"] = resources;
    b.set_args(&["true"]);
    b.write()?;
    let out = env.cli(&["create", "--bundle", &b.dir_str(), &id]);
    ensure!(
        out.code != 0,
        "create with {what} succeeded on a host without it"
    );
    env.note(format!("{}: {}", env.runtime.name, out.error_text()));
    super::errors::nothing_left(env, &b, &id)?;
    Ok(Outcome::Pass)
}

/// Without swap accounting (no memory.memsw.*, no memory.swap.max) a
/// swap limit must be refused, and the rest applies without it. On a
/// unified host: memory.max, memory.low (reservation), memory.swap.max
/// (runc's memory+swap minus memory); swappiness and disableOOMKiller have
/// no cgroup v2 file and are left out there.
pub fn memory(env: &Env) -> CaseResult {
    let v2 = host::unified();
    let mut resources = json!({
        "devices": [{"allow": false, "access": "rwm"}],
        "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728,
                   "swappiness": 30, "disableOOMKiller": true}
    });
    let mut expects = if v2 {
        // runc takes both there and writes nothing, crun refuses them.
        env.note("cgroup v2: no swappiness or oom_kill_disable file; neither is set".into());
        if let Some(memory) = resources["memory"].as_object_mut() {
            memory.remove("swappiness");
            memory.remove("disableOOMKiller");
        }
        vec![
            equals("memory", "memory.max", 67108864),
            equals("memory", "memory.low", 33554432),
        ]
    } else {
        vec![
            equals("memory", "memory.limit_in_bytes", 67108864),
            equals("memory", "memory.soft_limit_in_bytes", 33554432),
            equals("memory", "memory.swappiness", 30),
            has_line("memory", "memory.oom_control", "oom_kill_disable 1"),
        ]
    };
    if host::swap_accounting() {
        expects.push(if v2 {
            equals("memory", "memory.swap.max", 134217728 - 67108864)
        } else {
            equals("memory", "memory.memsw.limit_in_bytes", 134217728)
        });
    } else {
        env.note("no swap accounting on this host: memory.swap must be refused".into());
        refused_case_as(
            env,
            "swap",
            resources.clone(),
            "memory.swap (no swap accounting)",
        )?;
        if let Some(memory) = resources["memory"].as_object_mut() {
            memory.remove("swap");
        }
    }
    resources_case(env, resources, &expects)
}

/// (realtimeRuntime needs an rt budget in every parent: the suite's nested
/// cgroups have none; `runtime/tests/cgroups.rs` covers it at the top level.)
/// On a unified host: cpu.weight (shares converted as runc 1.1 does) and
/// cpu.max ("quota period").
pub fn cpu(env: &Env) -> CaseResult {
    // A CPU and a memory node the cpuset root has ("0" on most machines).
    let cpus = host::first_cpuset("cpuset.cpus");
    let mems = host::first_cpuset("cpuset.mems");
    let resources = json!({
        "devices": [{"allow": false, "access": "rwm"}],
        "cpu": {"shares": 512, "quota": 50000, "period": 100000,
                "cpus": cpus, "mems": mems}
    });
    let mut expects = if host::unified() {
        vec![
            equals("cpu", "cpu.weight", host::cpu_weight_of_shares(512)),
            equals("cpu", "cpu.max", "50000 100000"),
        ]
    } else {
        vec![
            equals("cpu", "cpu.shares", 512),
            equals("cpu", "cpu.cfs_quota_us", 50000),
            equals("cpu", "cpu.cfs_period_us", 100000),
        ]
    };
    expects.push(equals("cpuset", "cpuset.cpus", cpus));
    expects.push(equals("cpuset", "cpuset.mems", mems));
    resources_case(env, resources, &expects)
}

/// cpu.burst and cpu.idle (runtime-spec 1.1+; runc 1.1.5 predates burst):
/// cpu.cfs_burst_us on v1, cpu.max.burst on a unified host; cpu.idle on
/// both.
pub fn cpu_burst_idle(env: &Env) -> CaseResult {
    let burst_file = if host::unified() {
        "cpu.max.burst"
    } else {
        "cpu.cfs_burst_us"
    };
    if !host::cgroup_file_offered("cpu", burst_file)
        || !host::cgroup_file_offered("cpu", "cpu.idle")
    {
        return Ok(Outcome::Skip(format!(
            "this kernel has no {burst_file} or cpu.idle"
        )));
    }
    let resources = json!({
        "devices": [{"allow": false, "access": "rwm"}],
        "cpu": {"quota": 50000, "period": 100000, "burst": 1000, "idle": 1}
    });
    resources_case(
        env,
        resources,
        &[
            equals("cpu", burst_file, 1000),
            equals("cpu", "cpu.idle", 1),
        ],
    )
}

/// pids.max holds the limit, and a fork bomb stops there.
pub fn pids(env: &Env) -> CaseResult {
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    let limit = 12u64;
    b.config["linux"]["resources"]["pids"] = json!({"limit": limit});
    let shared = b.share_dir("/out")?;
    // The bomb is a subshell that exits when a fork fails; after it only
    // shell builtins run (nothing can fork at the limit).
    let script = format!(
        "(while :; do sleep 1000 & done) 2>/out/err; \
         read cur < {}; echo $cur > /out/current; \
         read max < {}; echo $max > /out/max; \
         echo done > /out/done; wait",
        inside_file("pids", "pids.current"),
        inside_file("pids", "pids.max")
    );
    b.set_args(&["sh", "-c", &script]);
    b.write()?;
    env.create(&b, &id)?;
    env.start(&id)?;
    ensure!(
        wait_until(Duration::from_secs(30), || shared.join("done").exists()),
        "the fork bomb never finished (err: {:?})",
        read_trim(&shared.join("err"))
    );
    let max = read_trim(&host_file(env, &id, "pids", "pids.max"));
    ensure!(max == limit.to_string(), "host pids.max is {max:?}");
    let inside_max = read_trim(&shared.join("max"));
    ensure!(
        inside_max == limit.to_string(),
        "inside pids.max is {inside_max:?}"
    );
    let current: u64 = read_trim(&host_file(env, &id, "pids", "pids.current"))
        .parse()
        .unwrap_or(u64::MAX);
    ensure!(current <= limit, "pids.current {current} > limit {limit}");
    let events = read_trim(&host_file(env, &id, "pids", "pids.events"));
    let refused: u64 = events
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    ensure!(refused > 0, "no fork was refused: pids.events {events:?}");
    Ok(Outcome::Pass)
}

/// blkio.throttle.* on v1; io.max ("MAJ:MIN rbps=... wbps=... riops=...
/// wiops=...", one line per device) on a unified host.
pub fn blkio_throttle(env: &Env) -> CaseResult {
    let Some((major, minor)) = host::block_device() else {
        return Ok(Outcome::Skip("no block device in /sys/block".into()));
    };
    let dev = format!("{major}:{minor}");
    let rule = |rate: u64| json!([{"major": major, "minor": minor, "rate": rate}]);
    let resources = json!({
        "devices": [{"allow": false, "access": "rwm"}],
        "blockIO": {"throttleReadBpsDevice": rule(1048576), "throttleWriteBpsDevice": rule(2097152),
                    "throttleReadIOPSDevice": rule(100), "throttleWriteIOPSDevice": rule(200)}
    });
    if host::unified() {
        return resources_case(
            env,
            resources,
            &[equals(
                "io",
                "io.max",
                format!("{dev} rbps=1048576 wbps=2097152 riops=100 wiops=200"),
            )],
        );
    }
    resources_case(
        env,
        resources,
        &[
            equals(
                "blkio",
                "blkio.throttle.read_bps_device",
                format!("{dev} 1048576"),
            ),
            equals(
                "blkio",
                "blkio.throttle.write_bps_device",
                format!("{dev} 2097152"),
            ),
            equals(
                "blkio",
                "blkio.throttle.read_iops_device",
                format!("{dev} 100"),
            ),
            equals(
                "blkio",
                "blkio.throttle.write_iops_device",
                format!("{dev} 200"),
            ),
        ],
    )
}

/// CFQ's blkio.weight where the root has it, BFQ's blkio.bfq.weight
/// where a disk offers BFQ (shown only below the root), refused where the
/// host has neither (a fresh machine's none, mq-deadline, kyber). On a
/// unified host, as runc: io.bfq.weight (the weight as it is) where BFQ is
/// loaded, else io.weight (converted to 1-10000).
pub fn blkio_weight(env: &Env) -> CaseResult {
    let resources = json!({"blockIO": {"weight": 500}});
    if host::unified() {
        if host::v2_file_offered("io.bfq.weight") {
            return resources_case(env, resources, &[has_line("io", "io.bfq.weight", 500)]);
        }
        if host::v2_file_offered("io.weight") {
            let weight = host::io_weight_of_blkio(500);
            return resources_case(env, resources, &[has_line("io", "io.weight", weight)]);
        }
        return refused_case(
            env,
            resources,
            "blockIO.weight (no io.weight or io.bfq.weight)",
        );
    }
    if host::v1_root_has("blkio", "blkio.weight") {
        return resources_case(env, resources, &[equals("blkio", "blkio.weight", 500)]);
    }
    if host::blkio_weight_offered() {
        return resources_case(
            env,
            resources,
            &[has_line("blkio", "blkio.bfq.weight", "500")],
        );
    }
    refused_case(env, resources, "blockIO.weight (no CFQ/BFQ weight files)")
}

/// hugetlb: applied where the host has it (v1's hugetlb.2MB.limit_in_bytes,
/// the unified tree's hugetlb.2MB.max); refused (nothing left) where
/// neither v1 nor a delegating cgroup2 root offers it.
pub fn hugepage_limits(env: &Env) -> CaseResult {
    let resources = json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]});
    if !host::hugepage_size(2048) {
        return refused_case(env, resources, "hugepageLimits (no 2MB huge pages)");
    }
    if host::unified() {
        if host::v2_controllers().iter().any(|c| c == "hugetlb") {
            return resources_case(
                env,
                resources,
                &[equals("hugetlb", "hugetlb.2MB.max", 4194304)],
            );
        }
        return refused_case(env, resources, "hugepageLimits (no hugetlb controller)");
    }
    if host::has_v1("hugetlb") {
        return resources_case(
            env,
            resources,
            &[equals("hugetlb", "hugetlb.2MB.limit_in_bytes", 4194304)],
        );
    }
    let delegated = fs::read_to_string("/sys/fs/cgroup/unified/cgroup.subtree_control")
        .is_ok_and(|s| s.split_whitespace().any(|c| c == "hugetlb"));
    if delegated {
        return Ok(Outcome::Skip(
            "hugetlb is delegated in the hybrid cgroup2 tree: not covered by this case".into(),
        ));
    }
    refused_case(env, resources, "hugepageLimits (no hugetlb controller)")
}

pub fn network(env: &Env) -> CaseResult {
    let resources = json!({"network": {"classID": 1048577}});
    if host::has_v1("net_cls") {
        return resources_case(
            env,
            resources,
            &[equals("net_cls", "net_cls.classid", 1048577)],
        );
    }
    refused_case(env, resources, "network.classID (no net_cls controller)")
}

/// Deny all, allow one device that is not a default one: on v1 the rule
/// is in devices.list and nothing is allowed to all; on every host the
/// allowed device opens inside (/dev/loop-control: open needs no
/// capability, read is EINVAL), the default /dev/null is writable, and
/// devices given in linux.devices but not allowed (major 240, reserved
/// for local use: no driver, so a device let through would fail with
/// ENXIO) cannot be opened for reading or writing (EPERM: the devices
/// controller on v1, the eBPF device program on cgroup v2). mknod of a
/// denied device is allowed by the default rules (`m` on every device, as
/// runc adds them) but the node cannot be used either.
pub fn devices(env: &Env) -> CaseResult {
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    b.config["linux"]["resources"]["devices"] = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 237, "access": "rw"}
    ]);
    b.config["linux"]["devices"] = json!([
        {"path": "/dev/loop-control", "type": "c", "major": 10, "minor": 237, "fileMode": 384},
        {"path": "/dev/xdenied", "type": "c", "major": 240, "minor": 0, "fileMode": 384},
        {"path": "/dev/xdenied-blk", "type": "b", "major": 240, "minor": 0, "fileMode": 384}
    ]);
    for set in ["bounding", "effective", "permitted"] {
        if let Some(caps) = b.config["process"]["capabilities"][set].as_array_mut() {
            caps.push(json!("CAP_MKNOD"));
        }
    }
    b.set_args(&[
        "sh",
        "-c",
        "mknod /dev/xmade b 240 0; exec /checker report path:/dev/loop-control path:/dev/null \
         path:/dev/xdenied path:/dev/xdenied-blk path:/dev/xmade",
    ]);
    b.write()?;
    let created = env.create(&b, &id)?;
    if !host::unified() {
        let list =
            fs::read_to_string(host_file(env, &id, "devices", "devices.list")).unwrap_or_default();
        ensure!(
            list.lines().any(|l| l == "c 10:237 rw"),
            "devices.list has no 'c 10:237 rw': {list:?}"
        );
        ensure!(
            !list.lines().any(|l| l.starts_with("a ")),
            "devices.list allows all: {list:?}"
        );
    }
    env.start(&id)?;
    let r = created.wait_report()?;
    let probe = &r["paths"]["/dev/loop-control"];
    ensure!(
        probe["exists"] == json!(true) && probe["read_errno"] != json!(libc::EPERM),
        "allowed /dev/loop-control did not open inside: {probe}"
    );
    ensure!(
        r["paths"]["/dev/null"]["writable"] == json!(true),
        "default /dev/null is not writable inside: {}",
        r["paths"]["/dev/null"]
    );
    for path in ["/dev/xdenied", "/dev/xdenied-blk"] {
        let probe = &r["paths"][path];
        ensure!(
            probe["exists"] == json!(true)
                && probe["read_errno"] == json!(libc::EPERM)
                && probe["write_errno"] == json!(libc::EPERM),
            "denied {path} (given in linux.devices) was not refused (EPERM) inside: {probe}"
        );
    }
    let made = &r["paths"]["/dev/xmade"];
    if made["exists"] == json!(true) {
        ensure!(
            made["read_errno"] == json!(libc::EPERM) && made["write_errno"] == json!(libc::EPERM),
            "a node of a denied device made by mknod inside could be opened: {made}"
        );
    } else {
        env.note(format!("mknod of a denied device failed inside: {made}"));
    }
    Ok(Outcome::Pass)
}

/// `unified` needs a cgroup v2 host: refused on v1 and hybrid hosts. On a
/// unified host the row does not apply: the keys are applied instead
/// (memory.high, on the host and inside), and the case is a skip unless
/// that fails.
pub fn unified(env: &Env) -> CaseResult {
    if host::unified() {
        let resources = json!({"devices": [{"allow": false, "access": "rwm"}],
                               "memory": {"limit": 67108864},
                               "unified": {"memory.high": "50331648"}});
        resources_case(
            env,
            resources,
            &[
                equals("memory", "memory.high", 50331648),
                equals("memory", "memory.max", 67108864),
            ],
        )?;
        return Ok(Outcome::Skip(
            "a cgroup v2 host: unified keys are applied here (memory.high checked); \
             the refusal covers v1/hybrid"
                .into(),
        ));
    }
    let resources = json!({"unified": {"pids.max": "10"}});
    refused_case(env, resources, "unified on a v1/hybrid host")
}

/// rrun answers "not implemented yet" for commands of the other issue-3
/// branches until they merge (and has none of their flags): a skip, not a
/// failure. Probed on a missing id, so that nothing runs.
fn stubbed(env: &Env, command: &str) -> Option<Outcome> {
    let out = env.cli(&[command, "rrun-conformance-no-such-container"]);
    out.error_text()
        .contains("not implemented yet")
        .then(|| Outcome::Skip(format!("{command}: {}", out.error_text())))
}

fn running_busybox(env: &Env, args: &[&str]) -> Result<String, String> {
    let id = env.id("c");
    let mut b = env.bundle(&id)?;
    b.config["linux"]["resources"]["pids"] = json!({"limit": 50});
    b.set_args(args);
    b.write()?;
    env.create(&b, &id)?;
    env.start(&id)?;
    Ok(id)
}

pub fn pause_resume(env: &Env) -> CaseResult {
    if let Some(skip) = stubbed(env, "pause") {
        return Ok(skip);
    }
    let id = running_busybox(env, &["sleep", "1000"])?;
    let out = env.cli(&["pause", &id]);
    ensure!(out.code == 0, "pause: {}", out.summary());
    ensure!(
        env.status(&id)? == "paused",
        "status after pause is not paused"
    );
    ensure!(
        frozen(env, &id)? == Some(true),
        "the cgroup is not frozen after pause"
    );
    let again = env.cli(&["start", &id]);
    ensure!(again.code != 0, "start of a paused container succeeded");
    let out = env.cli(&["resume", &id]);
    ensure!(out.code == 0, "resume: {}", out.summary());
    ensure!(
        env.status(&id)? == "running",
        "status after resume is not running"
    );
    ensure!(
        frozen(env, &id)? == Some(false),
        "the cgroup is still frozen after resume"
    );
    Ok(Outcome::Pass)
}

/// Whether the kernel has the container's cgroup frozen: v1's
/// freezer.state (FROZEN, THAWED; None while FREEZING), or on a unified
/// host cgroup.freeze with cgroup.events' `frozen` (None while they
/// disagree: the freeze is under way). Waits (bounded) for a settled
/// state.
fn frozen(env: &Env, id: &str) -> Result<Option<bool>, String> {
    let read = || {
        if host::unified() {
            let freeze = read_trim(&host_file(env, id, "freezer", "cgroup.freeze"));
            let events = read_trim(&host_file(env, id, "freezer", "cgroup.events"));
            let state = events.lines().any(|l| l == "frozen 1");
            match freeze.as_str() {
                "1" if state => (Some(true), format!("cgroup.freeze {freeze}, {events:?}")),
                "0" if !state => (Some(false), format!("cgroup.freeze {freeze}, {events:?}")),
                _ => (
                    None,
                    format!("cgroup.freeze {freeze:?}, cgroup.events {events:?}"),
                ),
            }
        } else {
            let state = read_trim(&host_file(env, id, "freezer", "freezer.state"));
            let settled = match state.as_str() {
                "FROZEN" => Some(true),
                "THAWED" => Some(false),
                _ => None,
            };
            (settled, format!("freezer.state {state:?}"))
        }
    };
    let mut last = (None, String::new());
    wait_until(Duration::from_secs(10), || {
        last = read();
        last.0.is_some()
    });
    match last {
        (Some(frozen), _) => Ok(Some(frozen)),
        (None, what) => Err(format!("the freezer never settled: {what}")),
    }
}

/// `update --resources FILE`, `--resources -` (containerd's stdin JSON),
/// and the individual flags.
pub fn update(env: &Env) -> CaseResult {
    if let Some(skip) = stubbed(env, "update") {
        return Ok(skip);
    }
    let id = running_busybox(env, &["sleep", "1000"])?;
    let file = env.work.join("resources.json");
    let mut docker = json!({"memory": {"limit": 134217728, "reservation": 0, "swap": 268435456, "kernel": 0},
                        "cpu": {"shares": 0, "quota": 50000, "period": 100000},
                        "blockIO": {"weight": 0}});
    if !host::swap_accounting() {
        // There is no swap to limit: the engines send no swap limit then.
        env.note("no swap accounting on this host: the update body has no swap limit".into());
        if let Some(memory) = docker["memory"].as_object_mut() {
            memory.remove("swap");
        }
    }
    ctx(fs::write(&file, docker.to_string()), "write resources.json")?;
    let out = env.cli(&["update", "--resources", &file.display().to_string(), &id]);
    ensure!(out.code == 0, "update --resources FILE: {}", out.summary());
    let v2 = host::unified();
    let (limit_file, quota_file, quota) = if v2 {
        ("memory.max", "cpu.max", "50000 100000")
    } else {
        ("memory.limit_in_bytes", "cpu.cfs_quota_us", "50000")
    };
    let mem = read_trim(&host_file(env, &id, "memory", limit_file));
    ensure!(mem == "134217728", "{limit_file} after update is {mem}");
    let got = read_trim(&host_file(env, &id, "cpu", quota_file));
    ensure!(got == quota, "{quota_file} after update is {got}");

    ctx(
        fs::write(&file, json!({"pids": {"limit": 33}}).to_string()),
        "write resources.json",
    )?;
    let stdin = ctx(fs::File::open(&file), "open resources.json")?;
    let st = ctx(
        Command::new(&env.runtime.path)
            .arg("--root")
            .arg(&env.root)
            .args(["update", "--resources", "-", &id])
            .stdin(stdin)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status(),
        "update --resources -",
    )?;
    ensure!(st.success(), "update --resources - exited {st}");
    let pids = read_trim(&host_file(env, &id, "pids", "pids.max"));
    ensure!(pids == "33", "pids.max after update from stdin is {pids}");

    let out = env.cli(&[
        "update",
        "--memory",
        "100000000",
        "--cpu-share",
        "256",
        "--pids-limit",
        "44",
        &id,
    ]);
    ensure!(out.code == 0, "update with flags: {}", out.summary());
    // The memory limit is rounded down to pages by the kernel, v1 and v2.
    let weight = host::cpu_weight_of_shares(256).to_string();
    let checks = if v2 {
        [
            ("memory", "memory.max", "99999744"),
            ("cpu", "cpu.weight", weight.as_str()),
            ("pids", "pids.max", "44"),
        ]
    } else {
        [
            ("memory", "memory.limit_in_bytes", "99999744"),
            ("cpu", "cpu.shares", "256"),
            ("pids", "pids.max", "44"),
        ]
    };
    for (controller, file, want) in checks {
        let got = read_trim(&host_file(env, &id, controller, file));
        ensure!(
            got == want,
            "{file} after update flags is {got}, want {want}"
        );
    }
    Ok(Outcome::Pass)
}

/// `events --stats`: one JSON object of type "stats" with the container's
/// pids and memory.
pub fn events_stats(env: &Env) -> CaseResult {
    if let Some(skip) = stubbed(env, "events") {
        return Ok(skip);
    }
    let id = running_busybox(env, &["sleep", "1000"])?;
    let out = env.cli(&["events", "--stats", &id]);
    ensure!(out.code == 0, "events --stats: {}", out.summary());
    let v: Value = ctx(
        serde_json::from_str(out.stdout.trim()),
        "parse events --stats",
    )?;
    ensure!(v["type"] == "stats", "type is {}", v["type"]);
    ensure!(v["id"] == json!(id), "id is {}", v["id"]);
    ensure!(
        v["data"]["pids"]["current"].as_u64() == Some(1),
        "data.pids.current is {}",
        v["data"]["pids"]["current"]
    );
    ensure!(
        v["data"]["memory"]["usage"]["usage"]
            .as_u64()
            .is_some_and(|u| u > 0),
        "data.memory.usage.usage is {}",
        v["data"]["memory"]["usage"]
    );
    ensure!(
        v["data"]["cpu"]["usage"]["total"].is_u64(),
        "data.cpu.usage.total is {}",
        v["data"]["cpu"]["usage"]
    );
    Ok(Outcome::Pass)
}

/// `ps --format json`: the JSON array of host pids `docker top` reads.
pub fn ps_json(env: &Env) -> CaseResult {
    if let Some(skip) = stubbed(env, "ps") {
        return Ok(skip);
    }
    let id = running_busybox(env, &["sh", "-c", "sleep 1000 & wait"])?;
    let init = env.state(&id)?["pid"].as_i64().unwrap_or(0);
    let mut out = env.cli(&["ps", "--format", "json", &id]);
    let mut pids: Vec<i64> = Vec::new();
    wait_until(Duration::from_secs(10), || {
        out = env.cli(&["ps", "--format", "json", &id]);
        pids = serde_json::from_str(out.stdout.trim()).unwrap_or_default();
        pids.len() == 2
    });
    ensure!(out.code == 0, "ps --format json: {}", out.summary());
    ensure!(
        pids.len() == 2 && pids.contains(&init),
        "ps --format json gave {:?}, want the init {init} and its child",
        out.stdout.trim()
    );
    Ok(Outcome::Pass)
}
