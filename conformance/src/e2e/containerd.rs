//! containerd 1.6 checks with `ctr` and the stock runc-v2 shim, pointed at
//! the runtime by `ctr run --runc-binary <path>` (the shim's
//! options.BinaryName), with `--runc-root` for the runtime's state.

use super::check::{cg, check, e, host, Check, Step};
use super::engines::Engine::Containerd;

fn run_d(cmd: &[&'static str]) -> Step {
    let mut args = vec![
        "run",
        "-d",
        "--runc-binary",
        "{rt}",
        "--runc-root",
        "{runcroot}",
        "{img}",
        "{name}",
    ];
    args.extend_from_slice(cmd);
    e(&args)
}

fn lines(n: usize) -> fn(&str) -> bool {
    match n {
        1 => |s| s.lines().count() == 1,
        2 => |s| s.lines().count() == 2,
        _ => |s| s.lines().count() == 3,
    }
}

pub fn checks() -> Vec<Check> {
    vec![
        check(
            Containerd,
            "run --rm: output",
            vec![e(&[
                "run",
                "--rm",
                "--runc-binary",
                "{rt}",
                "--runc-root",
                "{runcroot}",
                "{img}",
                "{name}",
                "echo",
                "hello from the container",
            ])
            .out("hello from the container")],
        ),
        check(
            Containerd,
            "run --rm: exit code",
            vec![e(&[
                "run",
                "--rm",
                "--runc-binary",
                "{rt}",
                "--runc-root",
                "{runcroot}",
                "{img}",
                "{name}",
                "sh",
                "-c",
                "exit 3",
            ])
            .code(3)],
        ),
        check(
            Containerd,
            "run -d: a detached task",
            vec![
                run_d(&["sleep", "300"]),
                e(&["task", "ls"]).has("{name}").has("RUNNING"),
                cg("pids", "pids.current").out("1"),
                // Where the leftover probe looks: the runtime's state of this container.
                host(&["ls", "{statedir}"]).out("{name}"),
            ],
        ),
        check(
            Containerd,
            "task exec",
            vec![
                run_d(&["sleep", "300"]),
                e(&[
                    "task",
                    "exec",
                    "--exec-id",
                    "e2e-exec",
                    "{name}",
                    "sh",
                    "-c",
                    "echo exec works; exit 5",
                ])
                .code(5)
                .out("exec works"),
            ],
        )
        .exec(),
        check(
            Containerd,
            "task exec -t",
            vec![
                run_d(&["sleep", "300"]),
                e(&[
                    "task",
                    "exec",
                    "-t",
                    "--exec-id",
                    "e2e-exec-t",
                    "{name}",
                    "sh",
                    "-c",
                    "tty; [ -t 0 ] && echo stdin-tty",
                ])
                .tty()
                .has("/dev/pts/")
                .has("stdin-tty"),
            ],
        )
        .exec(),
        check(
            Containerd,
            "task pause, resume",
            vec![
                run_d(&["sleep", "300"]),
                e(&["task", "pause", "{name}"]),
                e(&["task", "ls"]).has("PAUSED"),
                cg("freezer", "freezer.state").out("FROZEN"),
                e(&["task", "resume", "{name}"]),
                e(&["task", "ls"]).has("RUNNING"),
                cg("freezer", "freezer.state").out("THAWED"),
            ],
        ),
        check(
            Containerd,
            "task ps",
            vec![
                run_d(&["sh", "-c", "sleep 301 & exec sleep 300"]),
                cg("pids", "cgroup.procs")
                    .pred("two processes", lines(2))
                    .until(10),
                e(&["task", "ps", "{name}"]).pred("a header and two pids", |s| {
                    let l: Vec<&str> = s.lines().collect();
                    l.len() == 3
                        && l[1..].iter().all(|x| {
                            x.split_whitespace()
                                .next()
                                .is_some_and(|p| p.parse::<u32>().is_ok())
                        })
                }),
            ],
        ),
        check(
            Containerd,
            "task metrics",
            vec![
                run_d(&["sleep", "300"]),
                e(&["task", "metrics", "{name}"])
                    .has("memory.usage_in_bytes")
                    .has("pids.current             1"),
            ],
        ),
        check(
            Containerd,
            "task kill (SIGTERM to a handler)",
            vec![
                run_d(&[
                    "sh",
                    "-c",
                    "trap 'exit 7' TERM; while :; do sleep 1 & wait $!; done",
                ]),
                cg("pids", "pids.current").out("2").until(10),
                e(&["task", "kill", "{name}"]),
                e(&["task", "ls"]).has("STOPPED").until(10),
                e(&["task", "delete", "{name}"]).err_has("exit code 7"),
            ],
        ),
        check(
            Containerd,
            "task kill -a (every process)",
            vec![
                // pid 1 `sleep` ignores TERM (a namespace's init); its orphan does not.
                run_d(&["sh", "-c", "sleep 301 & exec sleep 300"]),
                cg("pids", "cgroup.procs")
                    .pred("two processes", lines(2))
                    .until(10),
                e(&["task", "kill", "-a", "-s", "SIGTERM", "{name}"]),
                cg("pids", "cgroup.procs")
                    .pred("one process", lines(1))
                    .until(10),
                e(&["task", "ls"]).has("RUNNING"),
            ],
        ),
        check(
            Containerd,
            "task delete: exit status, bundle and state gone",
            vec![
                run_d(&["sh", "-c", "exit 9"]),
                e(&["task", "ls"]).has("STOPPED").until(10),
                e(&["task", "delete", "{name}"]).err_has("exit code 9"),
                e(&["task", "ls"]).lacks("{name}"),
                host(&[
                    "test",
                    "!",
                    "-e",
                    "{ctrstate}/io.containerd.runtime.v2.task/{ctrns}/{name}",
                ]),
                host(&["test", "!", "-e", "{runcroot}/{ctrns}/{name}"]),
                e(&["containers", "delete", "{name}"]),
            ],
        ),
    ]
}
