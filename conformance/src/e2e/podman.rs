//! podman 4.3 checks, rootful, the runtime given by path (`podman
//! --runtime <path>`, through conmon), cgroupfs, no network.

use super::check::{check, e, host, Check};
use super::engines::Engine::Podman;

pub fn checks() -> Vec<Check> {
    vec![
        check(
            Podman,
            "run --rm: output",
            vec![e(&[
                "run",
                "--rm",
                "--network",
                "none",
                "--cgroup-parent",
                "{cgparent}",
                "--name",
                "{name}",
                "{img}",
                "echo",
                "hello from the container",
            ])
            .out("hello from the container")],
        ),
        check(
            Podman,
            "run --rm: exit code",
            vec![e(&[
                "run",
                "--rm",
                "--network",
                "none",
                "--cgroup-parent",
                "{cgparent}",
                "--name",
                "{name}",
                "{img}",
                "sh",
                "-c",
                "exit 4",
            ])
            .code(4)],
        ),
        check(
            Podman,
            "run -d, exec",
            vec![
                e(&[
                    "run",
                    "-d",
                    "--network",
                    "none",
                    "--cgroup-parent",
                    "{cgparent}",
                    "--name",
                    "{name}",
                    "{img}",
                    "sleep",
                    "300",
                ]),
                e(&["exec", "{name}", "sh", "-c", "echo exec works; exit 6"])
                    .code(6)
                    .out("exec works"),
            ],
        )
        .exec(),
        check(
            Podman,
            "stop: graceful (TERM handled)",
            vec![
                e(&[
                    "run",
                    "-d",
                    "--network",
                    "none",
                    "--cgroup-parent",
                    "{cgparent}",
                    "--name",
                    "{name}",
                    "{img}",
                    "sh",
                    "-c",
                    "trap 'exit 0' TERM; echo ready; while :; do sleep 1 & wait $!; done",
                ]),
                e(&["logs", "{name}"]).has("ready").until(10),
                e(&["stop", "-t", "20", "{name}"]).within(10.0),
                e(&[
                    "inspect",
                    "-f",
                    "{{.State.Status}} {{.State.ExitCode}}",
                    "{name}",
                ])
                .out("exited 0"),
            ],
        ),
        check(
            Podman,
            "stop -t 1: TERM ignored, killed (137)",
            vec![
                e(&[
                    "run",
                    "-d",
                    "--network",
                    "none",
                    "--cgroup-parent",
                    "{cgparent}",
                    "--name",
                    "{name}",
                    "{img}",
                    "sleep",
                    "300",
                ]),
                e(&["stop", "-t", "1", "{name}"]).within(15.0),
                e(&[
                    "inspect",
                    "-f",
                    "{{.State.Status}} {{.State.ExitCode}}",
                    "{name}",
                ])
                .out("exited 137"),
            ],
        ),
        check(
            Podman,
            "rm",
            vec![
                e(&[
                    "run",
                    "--network",
                    "none",
                    "--cgroup-parent",
                    "{cgparent}",
                    "--name",
                    "{name}",
                    "{img}",
                    "true",
                ]),
                e(&["rm", "{name}"]).has("{name}"),
                e(&["ps", "-a", "--format", "{{.Names}}"]).lacks("{name}"),
            ],
        ),
        check(
            Podman,
            "rm -f: a running container",
            vec![
                e(&[
                    "run",
                    "-d",
                    "--network",
                    "none",
                    "--cgroup-parent",
                    "{cgparent}",
                    "--name",
                    "{name}",
                    "{img}",
                    "sleep",
                    "300",
                ]),
                // Where the leftover probe looks: the runtime's state of this container.
                host(&["ls", "{statedir}"])
                    .pred("one container's state", |s| s.lines().count() == 1),
                e(&["rm", "-f", "-t", "0", "{name}"]).has("{name}"),
                e(&["ps", "-a", "--format", "{{.Names}}"]).lacks("{name}"),
            ],
        ),
    ]
}
