//! process.user: supplementary groups, gid, uid and umask.

use nix::errno::Errno;
use nix::sys::prctl::set_keepcaps;
use nix::sys::stat::{umask, Mode};
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::User;

use super::ProcessError;

/// setgroups(additionalGids), setresgid(gid), setresuid(uid).
///
/// The uid change keeps the permitted capabilities (PR_SET_KEEPCAPS), so
/// that `capabilities::apply` can still set the sets the spec asks for; the
/// kernel clears the effective set anyway, and apply raises it again.
pub fn switch_user(user: &User) -> Result<(), ProcessError> {
    set_supplementary_groups(user.additional_gids().as_deref().unwrap_or_default())?;
    let gid = Gid::from_raw(user.gid());
    setresgid(gid, gid, gid).map_err(|errno| user_error(format!("gid {gid}"), errno))?;
    set_keepcaps(true).map_err(|errno| user_error("PR_SET_KEEPCAPS".into(), errno))?;
    let uid = Uid::from_raw(user.uid());
    setresuid(uid, uid, uid).map_err(|errno| user_error(format!("uid {uid}"), errno))?;
    // keepcaps must not leak into the container process.
    set_keepcaps(false).map_err(|errno| user_error("PR_SET_KEEPCAPS".into(), errno))
}

/// The container's groups are exactly additionalGids. A user namespace
/// whose /proc/self/setgroups says "deny" forbids setgroups(2) altogether,
/// so there the inherited (mapped) groups stay, as runc does.
fn set_supplementary_groups(gids: &[u32]) -> Result<(), ProcessError> {
    if setgroups_denied() {
        if !gids.is_empty() {
            tracing::warn!(
                "process.user.additionalGids {gids:?} ignored: setgroups is denied in this \
                 user namespace"
            );
        }
        return Ok(());
    }
    let gids: Vec<Gid> = gids.iter().copied().map(Gid::from_raw).collect();
    setgroups(&gids).map_err(|errno| user_error(format!("additionalGids {gids:?}"), errno))
}

/// Read through the procfs handle: a fake "deny" in the container's /proc
/// would leave the caller's groups to the container process.
fn setgroups_denied() -> bool {
    let Ok(proc) = crate::procfs::handle() else {
        return false;
    };
    proc.read_self("setgroups")
        .is_ok_and(|policy| policy.trim() == "deny")
}

/// Sets the umask when the spec gives one; otherwise the inherited one stays,
/// as in runc.
pub fn set_umask(mask: Option<u32>) {
    if let Some(mask) = mask {
        umask(Mode::from_bits_truncate(mask));
    }
}

fn user_error(what: String, errno: Errno) -> ProcessError {
    ProcessError::User { what, errno }
}
