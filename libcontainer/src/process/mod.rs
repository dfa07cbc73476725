//! The container process's own attributes (stub until the process branch lands).
pub mod attrs;
pub mod exec;
pub mod rlimits;
pub mod user;

use oci_spec::runtime::Process;
use std::ffi::{CStr, CString};

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("{what}: {errno}")]
    Sys { what: String, errno: nix::errno::Errno },
    #[error("{0}")]
    Invalid(String),
}

pub fn prepare(_p: &Process) -> Result<(), ProcessError> { Ok(()) }

pub fn resolve_executable(p: &Process) -> Result<CString, ProcessError> {
    let a0 = p.args().as_ref().and_then(|a| a.first()).cloned().unwrap_or_default();
    if a0.contains('/') { return Ok(CString::new(a0).unwrap()); }
    for dir in ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let c = format!("{dir}/{a0}");
        if std::path::Path::new(&c).exists() { return Ok(CString::new(c).unwrap()); }
    }
    Err(ProcessError::Invalid(format!("exec: {a0:?}: executable file not found in $PATH")))
}

pub fn drop_privileges(_p: &Process) -> Result<(), ProcessError> { Ok(()) }

pub fn exec(p: &Process, exe: &CStr, preserved: u32) -> Result<std::convert::Infallible, ProcessError> {
    crate::utils::cloexec_from(3 + preserved).map_err(|errno| ProcessError::Sys { what: "close_range".into(), errno })?;
    if let Err(errno) = nix::unistd::chdir(p.cwd()) { return Err(ProcessError::Sys { what: "chdir".into(), errno }); }
    let args: Vec<CString> = p.args().iter().flatten().map(|a| CString::new(a.as_str()).unwrap()).collect();
    let env: Vec<CString> = p.env().iter().flatten().map(|a| CString::new(a.as_str()).unwrap()).collect();
    let errno = nix::unistd::execve(exe, &args, &env).unwrap_err();
    Err(ProcessError::Sys { what: format!("exec {:?}", exe), errno })
}
