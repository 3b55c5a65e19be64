//! A global allocator that counts the allocator calls (alloc, alloc_zeroed, realloc, dealloc)
//! made by the *current thread* while counting is on, so that tests running in parallel on
//! other threads do not interfere.
//!
//! Compiling this module installs nothing: a global allocator is a choice of the whole test
//! binary, so a test crate that counts allocations installs it at its root (see
//! `tests/support/mod.rs`):
//!
//! ```ignore
//! use support::counting_alloc::{count_allocations, CountingAllocator};
//!
//! #[global_allocator]
//! static ALLOCATOR: CountingAllocator = CountingAllocator;
//! ```
//!
//! [`count_allocations`] checks that it has been installed, so a crate that forgot cannot pass
//! by counting nothing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The counting allocator: the system allocator, with every call noted while this thread
/// counts.
pub struct CountingAllocator;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static EVENTS: Cell<usize> = const { Cell::new(0) };
}

fn note_event() {
    // `try_with`: never panic inside the allocator, even during thread teardown.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = EVENTS.try_with(|e| e.set(e.get() + 1));
        }
    });
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_event();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_event();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_event();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_event();
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Runs `f` and returns how many allocator calls this thread made during it.
pub fn count_allocations(f: impl FnOnce()) -> usize {
    assert!(
        counted(|| drop(std::hint::black_box(Box::new(0u8)))) > 0,
        "a boxed byte was not counted: install the counting allocator in this test crate with \
         `#[global_allocator] static ALLOCATOR: CountingAllocator = CountingAllocator;`"
    );
    counted(f)
}

/// The allocator calls this thread made during `f`.
fn counted(f: impl FnOnce()) -> usize {
    EVENTS.with(|e| e.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    EVENTS.with(|e| e.get())
}
