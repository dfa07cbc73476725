//! Freezing and thawing a container's cgroup (v1 freezer.state, v2
//! cgroup.freeze), and reading whether it is frozen. (Issue 3: pause/resume.)
