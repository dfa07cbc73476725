//! Cgroup statistics in runc's `events --stats` JSON format. (Issue 3: events.)
