//! linux.sysctl: written under /proc/sys of the container.
