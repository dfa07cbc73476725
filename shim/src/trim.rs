//! Give back the resident pages of code and read-only data once the shim
//! is quiet.
//!
//! Creating a container runs a good part of the library (config parsing,
//! validation, seccomp, cgroups) in the shim; the pages of code this
//! touches stay mapped, and with the kernel's fault-around (up to 64 KiB
//! mapped per fault) a few hundred functions keep most of the binary
//! resident, in a shim that then sits idle for the container's lifetime.
//! Those pages are clean copies of the executable's and libraries' files,
//! shared through the page cache: `MADV_DONTNEED` drops them from this
//! process's page tables, and a later request faults them back in from the
//! page cache (minor faults). It is to code what `malloc_trim` is to the
//! heap.
//!
//! Only what cannot have changed in memory is dropped: private, read-only
//! file mappings none of whose pages is anonymous (copied on write, as
//! relocated data is), per /proc/self/smaps. Dropping such a page can only
//! cost a minor fault; the vDSO and every writable mapping are left alone.
//! (The shim loads no library after start, so no mapping is being
//! relocated while the quiet shim trims.)

struct Mapping {
    start: usize,
    end: usize,
    eligible: bool,
    anonymous_kb: u64,
}

/// The mappings of this process that may be trimmed.
fn trimmable() -> Vec<(usize, usize)> {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return Vec::new();
    };
    let mut maps: Vec<Mapping> = Vec::new();
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if let Some((start, end)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            ) {
                // start-end perms offset dev inode path
                let perms = fields.next().unwrap_or("");
                let inode = fields.nth(2).unwrap_or("0");
                let path = fields.next().unwrap_or("");
                let eligible = perms.len() == 4
                    && perms.starts_with('r')
                    && !perms.contains('w')
                    && perms.ends_with('p')
                    && inode != "0"
                    && path.starts_with('/');
                maps.push(Mapping {
                    start,
                    end,
                    eligible,
                    anonymous_kb: 0,
                });
                continue;
            }
        }
        if first == "Anonymous:" {
            if let Some(m) = maps.last_mut() {
                m.anonymous_kb = fields
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(u64::MAX);
            }
        }
    }
    maps.into_iter()
        .filter(|m| m.eligible && m.anonymous_kb == 0)
        .map(|m| (m.start, m.end))
        .collect()
}

/// Drop the resident pages of read-only code and data (see the module).
pub fn resident_code() {
    let mut ranges = trimmable();
    // The code running this loop goes last: dropped earlier, it would be
    // faulted right back in by the rest of the loop.
    let here = resident_code as *const () as usize;
    ranges.sort_by_key(|&(start, end)| start <= here && here < end);
    for (start, end) in ranges {
        // SAFETY: a private, read-only file mapping without a single
        // anonymous page holds nothing but page-cache copies of its file:
        // MADV_DONTNEED only drops page table entries, and the next access
        // reads the same bytes back.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test binary's own code is trimmable, and running on after a
    /// trim works (the code comes back from the file).
    #[test]
    fn trims_code_and_runs_on() {
        let here = trims_code_and_runs_on as *const () as usize;
        assert!(
            trimmable().iter().any(|&(s, e)| s <= here && here < e),
            "the test's own code is not trimmable"
        );
        let rss = || {
            std::fs::read_to_string("/proc/self/status")
                .unwrap()
                .lines()
                .find_map(|l| l.strip_prefix("RssFile:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok())
                .unwrap()
        };
        let before = rss();
        resident_code();
        let after = rss();
        assert!(after < before, "RssFile {before} kB -> {after} kB");
        let v: Vec<String> = (0..100).map(|i| format!("{i}")).collect();
        assert_eq!(v[42], "42");
    }
}
