//! OCI hooks (stub until the process branch lands).
use oci_spec::runtime::Hook;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{phase} hook {path}: {why}")]
    Failed { phase: String, path: String, why: String },
}

pub fn run(hooks: &[Hook], state: &[u8], phase: &str) -> Result<(), HookError> {
    use std::io::Write;
    for hook in hooks {
        let mut cmd = std::process::Command::new(hook.path());
        if let Some(args) = hook.args() {
            use std::os::unix::process::CommandExt;
            if let Some(a0) = args.first() { cmd.arg0(a0); }
            cmd.args(args.iter().skip(1));
        }
        cmd.env_clear();
        for kv in hook.env().iter().flatten() {
            if let Some((k, v)) = kv.split_once('=') { cmd.env(k, v); }
        }
        let fail = |why: String| HookError::Failed { phase: phase.into(), path: hook.path().display().to_string(), why };
        let mut child = cmd.stdin(std::process::Stdio::piped()).spawn().map_err(|e| fail(e.to_string()))?;
        if let Some(mut s) = child.stdin.take() { let _ = s.write_all(state); }
        let status = child.wait().map_err(|e| fail(e.to_string()))?;
        if !status.success() { return Err(fail(format!("{status}"))); }
    }
    Ok(())
}
