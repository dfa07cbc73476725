//! Every test process that starts containers runs in a private mount
//! namespace of its own, entered before `main` (and so before the test
//! harness starts any thread: a mount namespace is per thread, and
//! unshare(CLONE_NEWNS) moves only the caller). A runtime bug that mounts,
//! unmounts or pivots in the caller's namespace (issue 9's pivot of the
//! caller's root) then harms this test process only, never the machine.
//! Included by the `common` module of each test crate (`#[path]`).

extern "C" fn isolate_mounts() {
    // A test binary re-executed as a container helper (embedders do that)
    // stays where its caller put it.
    // SAFETY: getenv with a NUL-terminated name, before any thread exists.
    if !unsafe { libc::getenv(c"_RRUN_INIT_STAGE".as_ptr()) }.is_null() {
        return;
    }
    if let Ok(ns) = std::fs::read_link("/proc/self/ns/mnt") {
        let _ = STARTED_IN.set(ns);
    }
    // SAFETY: unshare takes a flag word; before main, this process has one
    // thread.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        fail("unshare(CLONE_NEWNS)");
    }
    // Private, so that nothing mounted here propagates back to the host.
    // SAFETY: NUL-terminated strings and null data, as mount(2) takes them.
    let ret = unsafe {
        libc::mount(
            c"none".as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    if ret != 0 {
        fail("making / private in the test's mount namespace");
    }
}

/// A test that starts containers must not run unprotected: stop here.
fn fail(what: &str) -> ! {
    eprintln!(
        "test isolation: {what}: {} (these tests run as root)",
        std::io::Error::last_os_error()
    );
    std::process::exit(2)
}

#[used]
#[link_section = ".init_array"]
static ISOLATE_MOUNTS: extern "C" fn() = isolate_mounts;

/// The mount namespace this process was started in.
static STARTED_IN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// This process left the mount namespace it was started in.
#[allow(dead_code)]
pub fn assert_isolated() {
    let now = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    let started_in = STARTED_IN.get().expect("isolate_mounts ran before main");
    assert_ne!(
        &now, started_in,
        "the test runs in its caller's mount namespace"
    );
}
