//! linux.sysctl: written under /proc/sys of the container.
//! (stub until the process branch lands)
use oci_spec::runtime::Spec;

#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    #[error("linux.sysctl {key}: {why}")]
    Invalid { key: String, why: String },
}

pub fn validate(_spec: &Spec) -> Result<(), SysctlError> {
    Ok(())
}

pub fn apply(spec: &Spec) -> Result<(), SysctlError> {
    for (key, value) in spec.linux().as_ref().and_then(|l| l.sysctl().clone()).unwrap_or_default() {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        std::fs::write(&path, value).map_err(|e| SysctlError::Invalid { key: key.clone(), why: e.to_string() })?;
    }
    Ok(())
}
