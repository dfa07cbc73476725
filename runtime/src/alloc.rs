//! rrun's global allocator: a bump arena first, the system's malloc after.
//!
//! An rrun command lives a few milliseconds and allocates a few hundred
//! KiB (the config's JSON, the spec, paths). musl's malloc (rrun is linked
//! statically against musl, see `build_rrun` in scripts/lib.sh) hands
//! memory back to the kernel eagerly: a `run` made 117 mmap and munmap
//! calls in the caller alone, each new mapping faulted in again. Here the
//! first [`ARENA_SIZE`] bytes come from one arena mapped at the first
//! allocation (an mmap, so that its address is randomized like the heap's,
//! rrun's own image being at a fixed address), never returned
//! (its pages are the process's until it exits, and only those touched are
//! resident) and reused only as a stack: the last block, freed, is handed
//! out again (a temporary String or Vec freed before the next allocation,
//! the common case, costs no new page); what does not fit, is too large or
//! too aligned goes to the system allocator as before. A long-running
//! command (`run` in the foreground, `events`) uses up the arena and then
//! simply runs on malloc: the memory held for nothing is bounded by the
//! arena's size.
//! The library does not depend on this: an embedder keeps its allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Room for what a command allocates: a 16 MiB config (the largest rrun
/// reads) goes to malloc, a runc-like config and its spec fit many times.
const ARENA_SIZE: usize = 2 << 20;
/// Larger blocks go to malloc: they are few, and often freed early.
const LARGEST_IN_ARENA: usize = 256 << 10;
const PAGE: usize = 4096;
/// What of the arena a command uses (measured with `perf trace -F`: 42-44
/// pages for state, list, start and delete, 59-63 for create and run, the
/// commands that matter most), faulted in at once by
/// [`BumpThenSystem::prefault`]. The bootstrap and the init, which touch a
/// few pages, do not prefault.
pub const COMMAND_ARENA_USE: usize = 256 << 10;
/// Every block is aligned as malloc's are (max_align_t), whatever the
/// layout asks: some code relies on it (nix packs a cmsghdr into a
/// `Vec<u8>` for sendmsg).
const MIN_ALIGN: usize = 16;

/// The arena's address; 0 until the first allocation maps it, [`NO_ARENA`]
/// if that mmap failed (everything then goes to malloc).
static BASE: AtomicUsize = AtomicUsize::new(0);
const NO_ARENA: usize = usize::MAX;
/// Offset of the first free byte of the arena.
static NEXT: AtomicUsize = AtomicUsize::new(0);
/// Offset below which arena bytes may have been handed out (and written):
/// at and above it they are still the mapping's zeros.
static TOUCHED: AtomicUsize = AtomicUsize::new(0);

/// The allocator `main.rs` installs with `#[global_allocator]`.
pub struct BumpThenSystem;

impl BumpThenSystem {
    /// The arena's address, mapped on first use; `None` without one.
    fn base() -> Option<usize> {
        match BASE.load(Ordering::Acquire) {
            0 => Self::map_arena(),
            NO_ARENA => None,
            base => Some(base),
        }
    }

    /// Maps the arena: private, anonymous, not reserved against the
    /// commit limit, never a huge page (only the pages touched count in
    /// the RSS). Two threads racing here keep the first mapping.
    #[cold]
    fn map_arena() -> Option<usize> {
        // SAFETY: a new anonymous mapping; no existing memory is touched.
        let mapped = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ARENA_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        let mine = if mapped == libc::MAP_FAILED {
            NO_ARENA
        } else {
            // SAFETY: the mapping just made, ARENA_SIZE long; advice only.
            unsafe { libc::madvise(mapped, ARENA_SIZE, libc::MADV_NOHUGEPAGE) };
            mapped as usize
        };
        let base = match BASE.compare_exchange(0, mine, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => mine,
            Err(theirs) => {
                if mine != NO_ARENA {
                    // SAFETY: our mapping lost the race; nothing points into it.
                    unsafe { libc::munmap(mapped, ARENA_SIZE) };
                }
                theirs
            }
        };
        (base != NO_ARENA).then_some(base)
    }

    /// Maps the arena and faults in its first `bytes` in one call: every
    /// command parses its arguments with clap and reads its JSON into it,
    /// and each page faulted one by one costs a trap (64 pages: 58 us in
    /// this VM, 30 us populated in one go). MADV_POPULATE_WRITE (Linux
    /// 5.14) fails harmlessly on an older kernel: the pages then fault as
    /// before.
    pub fn prefault(bytes: usize) {
        let Some(base) = Self::base() else {
            return;
        };
        // SAFETY: advice over the start of our own mapping, bytes <= its size.
        unsafe {
            libc::madvise(
                base as *mut libc::c_void,
                bytes.min(ARENA_SIZE),
                libc::MADV_POPULATE_WRITE,
            )
        };
    }

    fn owns(ptr: *mut u8) -> bool {
        let base = BASE.load(Ordering::Acquire);
        let p = ptr as usize;
        base != 0 && base != NO_ARENA && (base..base + ARENA_SIZE).contains(&p)
    }

    /// A block of the arena for `layout`, or None when it does not fit;
    /// with it, how many of its first bytes an earlier, freed block may
    /// have written (the rest are still the mapping's zeros).
    fn bump(layout: Layout) -> Option<(*mut u8, usize)> {
        if layout.size() > LARGEST_IN_ARENA || layout.align() > PAGE {
            return None;
        }
        let base = Self::base()?;
        let mut next = NEXT.load(Ordering::Relaxed);
        loop {
            let start = (base + next).next_multiple_of(layout.align().max(MIN_ALIGN));
            let end = start.checked_add(layout.size())?;
            if end > base + ARENA_SIZE {
                return None;
            }
            match NEXT.compare_exchange_weak(next, end - base, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => {
                    let touched = TOUCHED.fetch_max(end - base, Ordering::SeqCst) + base;
                    let dirty = touched.clamp(start, end) - start;
                    return Some((start as *mut u8, dirty));
                }
                Err(now) => next = now,
            }
        }
    }

    /// Grows the arena's last block in place, over bytes no live block has.
    /// Only for a pointer the arena [`owns`](Self::owns).
    fn grow_last(ptr: *mut u8, old: usize, new: usize) -> bool {
        let start = ptr as usize - BASE.load(Ordering::Acquire);
        if start + new > ARENA_SIZE || new > LARGEST_IN_ARENA {
            return false;
        }
        let grown = NEXT
            .compare_exchange(start + old, start + new, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
        if grown {
            TOUCHED.fetch_max(start + new, Ordering::SeqCst);
        }
        grown
    }

    /// Gives the arena's last block back: the next allocation reuses it.
    /// Any other block stays where it is until the process exits.
    /// Only for a pointer the arena [`owns`](Self::owns).
    fn free_if_last(ptr: *mut u8, size: usize) {
        let start = ptr as usize - BASE.load(Ordering::Acquire);
        let _ = NEXT.compare_exchange(start + size, start, Ordering::SeqCst, Ordering::SeqCst);
    }
}

// SAFETY: `alloc` returns either a block of the arena that no live block
// overlaps (see `bump`: bytes from NEXT on belong to no live block;
// `grow_last` only extends the last block over such bytes; `free_if_last`
// moves NEXT back only over the block being freed, and only while it is
// the last), aligned and as large as `layout` asks, or what the system
// allocator returns; `alloc_zeroed` zeroes whatever of its arena block a
// freed block may have written; `dealloc` and `realloc` send the system's
// blocks back to it; `realloc` copies at most the smaller of the two sizes,
// both valid for their blocks.
unsafe impl GlobalAlloc for BumpThenSystem {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match Self::bump(layout) {
            Some((ptr, _)) => ptr,
            // SAFETY: the caller's layout, as GlobalAlloc::alloc requires.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match Self::bump(layout) {
            Some((ptr, dirty)) => {
                // SAFETY: `bump` just handed out this block; `dirty` is at
                // most its size.
                unsafe { ptr.write_bytes(0, dirty) };
                ptr
            }
            // SAFETY: the caller's layout, as GlobalAlloc::alloc_zeroed requires.
            None => unsafe { System.alloc_zeroed(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if Self::owns(ptr) {
            Self::free_if_last(ptr, layout.size());
        } else {
            // SAFETY: not an arena block, so the system allocator made it
            // with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !Self::owns(ptr) {
            // SAFETY: the system allocator's block, with its layout.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // Shrinking keeps the block (its tail is not handed out again while
        // it lives); the last block grows in place.
        if new_size <= layout.size() || Self::grow_last(ptr, layout.size(), new_size) {
            return ptr;
        }
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        // SAFETY: a valid layout (checked just above).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are valid for the smaller size and do
            // not overlap (the new one was just handed out).
            unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_aligned_distinct_and_keep_their_bytes_when_moved() {
        let a = BumpThenSystem;
        let l1 = Layout::from_size_align(3, 1).unwrap();
        let l8 = Layout::from_size_align(24, 8).unwrap();
        let l64 = Layout::from_size_align(100, 64).unwrap();
        // SAFETY: valid layouts; every block is freed with its own layout.
        unsafe {
            let byte = a.alloc(l1);
            assert_eq!(byte as usize % MIN_ALIGN, 0, "aligned as malloc's");
            a.dealloc(byte, l1);
            let p = a.alloc(l8);
            let q = a.alloc(l64);
            assert_eq!(q as usize % 64, 0);
            assert!(q as usize >= p as usize + 24 || (q as usize) + 100 <= p as usize);
            q.write_bytes(7, 100);
            let r = a.realloc(q, l64, 200);
            assert_eq!(*r.add(99), 7);
            let big = Layout::from_size_align(LARGEST_IN_ARENA + 1, 8).unwrap();
            let b = a.alloc(big);
            assert!(!BumpThenSystem::owns(b));
            a.dealloc(b, big);
            a.dealloc(r, Layout::from_size_align(200, 64).unwrap());
            a.dealloc(p, l8);
        }
    }

    #[test]
    fn the_last_block_grows_in_place() {
        let a = BumpThenSystem;
        let small = Layout::from_size_align(100, 16).unwrap();
        // This is the test binary's allocator too: another test thread
        // allocating between the two calls makes the block not the last
        // one; among many tries, some must grow in place.
        let in_place = (0..1000).any(|_| {
            // SAFETY: a valid layout; the block is freed with its layout.
            unsafe {
                let q = a.alloc(small);
                let r = a.realloc(q, small, 200);
                a.dealloc(r, Layout::from_size_align(200, 16).unwrap());
                BumpThenSystem::owns(q) && r == q
            }
        });
        assert!(in_place, "the arena's last block never grew in place");
    }

    #[test]
    fn a_freed_last_block_is_handed_out_again_zeroed_when_asked() {
        let a = BumpThenSystem;
        let l = Layout::from_size_align(64, 16).unwrap();
        // SAFETY: valid layouts; every block is freed with its own layout.
        unsafe {
            let p = a.alloc(l);
            p.write_bytes(0xAB, 64);
            a.dealloc(p, l);
            // Other test threads may allocate in between: whichever block
            // comes back, alloc_zeroed's must be zeros.
            let z = a.alloc_zeroed(l);
            assert!((0..64).all(|i| *z.add(i) == 0));
            a.dealloc(z, l);
        }
    }
}
