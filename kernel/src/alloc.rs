//! A small global allocator for single-threaded wasm32 kernels.
//!
//! Rust's default wasm32 allocator (dlmalloc) is about 6.5 KiB of code — two thirds of the code of
//! a small MLP kernel. Inference kernels allocate their model once and then reuse buffers, which a
//! size-class allocator serves as well in a fraction of the bytes: every request is rounded up to a
//! power of two, freed blocks go on a per-class free list and are reused, new blocks come from the
//! top of linear memory. The price is up to 2x memory for odd sizes and no coalescing, so a kernel
//! that allocates ever-changing sizes per call should stay on the default. Opt in with:
//!
//! ```ignore
//! #[cfg(target_arch = "wasm32")]
//! #[global_allocator]
//! static ALLOCATOR: wasmpack_infer_kernel::alloc::SizeClassAllocator =
//!     wasmpack_infer_kernel::alloc::SizeClassAllocator::new();
//! ```

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;

const PAGE: usize = 65536;
/// Classes 2^0 ..= 2^31 bytes.
const CLASSES: usize = 32;

pub struct SizeClassAllocator {
    state: UnsafeCell<State>,
}

struct State {
    /// Head of each class's free list (0 = empty); a free block stores the next head.
    free: [usize; CLASSES],
    /// Next unused byte, and the end of the memory obtained so far.
    next: usize,
    end: usize,
}

// SAFETY: wasm32 without the atomics feature has a single thread.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
unsafe impl Sync for SizeClassAllocator {}

impl SizeClassAllocator {
    pub const fn new() -> Self {
        Self {
            state: UnsafeCell::new(State {
                free: [0; CLASSES],
                next: 0,
                end: 0,
            }),
        }
    }
}

impl Default for SizeClassAllocator {
    fn default() -> Self {
        Self::new()
    }
}

/// The class of a layout: blocks of class `c` are `2^c` bytes, aligned to `min(2^c, PAGE)`, so any
/// request of that class (whose alignment never exceeds its rounded size) fits any of its blocks.
fn class_of(layout: Layout) -> Option<usize> {
    let size = layout
        .size()
        .max(layout.align())
        .max(core::mem::size_of::<usize>());
    let class = size.checked_next_power_of_two()?.trailing_zeros() as usize;
    (class < CLASSES && layout.align() <= PAGE).then_some(class)
}

#[cfg(target_arch = "wasm32")]
fn grow(bytes: usize) -> Option<usize> {
    let pages = bytes.div_ceil(PAGE);
    let previous = core::arch::wasm32::memory_grow(0, pages);
    (previous != usize::MAX).then(|| previous * PAGE)
}

#[cfg(not(target_arch = "wasm32"))]
fn grow(_bytes: usize) -> Option<usize> {
    None
}

unsafe impl GlobalAlloc for SizeClassAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class_of(layout) else {
            return core::ptr::null_mut();
        };
        // SAFETY: single-threaded (see `Sync`), and no allocator call re-enters another.
        let state = unsafe { &mut *self.state.get() };
        let head = state.free[class];
        if head != 0 {
            // SAFETY: `head` is a block of this class that `dealloc` linked, holding the next head.
            state.free[class] = unsafe { *(head as *const usize) };
            return head as *mut u8;
        }
        let size = 1usize << class;
        let align = size.min(PAGE);
        let mut start = state.next.next_multiple_of(align);
        if state.next == 0 || start + size > state.end {
            // Memory obtained now starts on a fresh page, after everything handed out so far.
            let Some(base) = grow(size + align) else {
                return core::ptr::null_mut();
            };
            if base != state.end {
                state.next = base;
            }
            state.end = base + (size + align).div_ceil(PAGE) * PAGE;
            start = state.next.next_multiple_of(align);
        }
        state.next = start + size;
        start as *mut u8
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(class) = class_of(layout) else {
            return;
        };
        // SAFETY: as in `alloc`; `ptr` is a block of this class, large enough for a usize.
        let state = unsafe { &mut *self.state.get() };
        unsafe { *(ptr as *mut usize) = state.free[class] };
        state.free[class] = ptr as usize;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_size_and_alignment() {
        let class = |size, align| class_of(Layout::from_size_align(size, align).unwrap());
        assert_eq!(
            class(1, 1),
            Some(3),
            "at least a usize, to hold the free-list link"
        );
        assert_eq!(class(9, 1), Some(4));
        assert_eq!(class(16, 16), Some(4));
        assert_eq!(class(4, 64), Some(6), "alignment raises the class");
        assert_eq!(class(9640, 4), Some(14));
        assert_eq!(class(1, PAGE * 2), None);
    }
}
