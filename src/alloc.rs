//! Global allocator that makes untrusted capacity claims harmless.
//!
//! `kafka-protocol` 0.18 decodes an array by `Vec::with_capacity(n)` with `n` read from the
//! wire, before reading any element. A 4-byte body claiming 2^31 elements asks for tens of GiB;
//! the system allocator refuses, and Rust *aborts* the process (not a panic — `catch_unwind`
//! cannot stop it). We cannot pre-validate every nested array without a schema walker, so we
//! change what such a request costs instead: allocations of 1 GiB and more are served by
//! `mmap(MAP_NORESERVE)`, which reserves address space without committing memory. Decoding then
//! fails cleanly when the buffer runs out (each element consumes input bytes, so the pages
//! actually touched are bounded by the frame size), and the mapping is returned on drop.
//! Everything smaller goes to the system allocator unchanged.
//!
//! This is the crate's one use of `unsafe`: implementing `GlobalAlloc` cannot be done without it.
//! Proven by `tests/hostile_input.rs`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};

pub struct GuardedAlloc;

/// Allocations at least this large are lazily-committed mappings.
const HUGE: usize = 1 << 30;
const PAGE: usize = 4096;

unsafe impl GlobalAlloc for GuardedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= HUGE && layout.align() <= PAGE {
            map(layout.size())
        } else {
            System.alloc(layout)
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= HUGE && layout.align() <= PAGE {
            map(layout.size()) // anonymous mappings are zero-filled
        } else {
            System.alloc_zeroed(layout)
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.size() >= HUGE && layout.align() <= PAGE {
            libc::munmap(ptr.cast(), layout.size());
        } else {
            System.dealloc(ptr, layout)
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old_huge = layout.size() >= HUGE && layout.align() <= PAGE;
        let new_huge = new_size >= HUGE && layout.align() <= PAGE;
        if !old_huge && !new_huge {
            return System.realloc(ptr, layout, new_size);
        }
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        let new_ptr = self.alloc(new_layout);
        if !new_ptr.is_null() {
            std::ptr::copy_nonoverlapping(ptr, new_ptr, layout.size().min(new_size));
            self.dealloc(ptr, layout);
        }
        new_ptr
    }
}

unsafe fn map(size: usize) -> *mut u8 {
    let p = libc::mmap(
        std::ptr::null_mut(),
        size,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
        -1,
        0,
    );
    if p == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        p.cast()
    }
}
