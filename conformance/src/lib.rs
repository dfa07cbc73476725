//! The library side of the conformance crate: the engine harness of
//! `rrun-e2e` (`src/e2e/`). rrun-bench's engine benchmark (benches/) starts
//! the same private engines through it: [`e2e::ns`] (the private mount and
//! pid namespaces), [`e2e::engines`] (dockerd, containerd, podman),
//! [`e2e::image`] (the busybox image) and [`e2e::proc`].

pub mod e2e;
