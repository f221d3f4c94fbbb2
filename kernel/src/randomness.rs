//! The randomness getrandom's `custom` backend asks for in the WASM variant.
//!
//! The browser and size profiles build getrandom 0.3 and 0.4 with `--cfg
//! getrandom_backend="custom"`, which calls `__getrandom_v03_custom` (both versions use that name)
//! instead of importing anything from a JavaScript host. This crate defines it, so a kernel that
//! depends on it needs no host for randomness: burn's hash maps (ahash) seed themselves from it
//! when the model is built.
//!
//! The bytes are **deterministic**: a SplitMix64 stream from a fixed seed, the same in every
//! instance. What an inference kernel asks getrandom for is seeds (hash maps, a generator it then
//! seeds itself), and a result must not depend on them; a fixed stream makes every run of the
//! module reproducible. It is not a source for secrets: a kernel that needs real entropy defines
//! `__getrandom_v03_custom` itself and turns this crate's `wasm-getrandom` feature off.

/// Fills `dest` from a SplitMix64 stream whose state is `state` (advanced).
pub fn fill_deterministic(state: &mut u64, dest: &mut [u8]) {
    for chunk in dest.chunks_mut(8) {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
    }
}

/// getrandom's custom backend. Its declared error type is getrandom's `Error`, a `NonZero`
/// integer in both 0.3 and 0.4; this never fails, so it returns `Ok(())`, all zero bits either way.
#[cfg(all(
    target_family = "wasm",
    target_os = "unknown",
    feature = "wasm-getrandom"
))]
#[unsafe(no_mangle)]
unsafe extern "Rust" fn __getrandom_v03_custom(
    dest: *mut u8,
    len: usize,
) -> Result<(), core::num::NonZeroU32> {
    use core::sync::atomic::{AtomicU64, Ordering};
    /// The fixed seed: the first 8 bytes of SHA-256("cargo-wasmpack-infer").
    const SEED: u64 = 0x40b5_c79e_1972_edcc;
    // One thread per instance: the atomic only spares a `static mut`.
    static STATE: AtomicU64 = AtomicU64::new(SEED);
    let mut state = STATE.load(Ordering::Relaxed);
    // SAFETY: getrandom passes a writable buffer of `len` bytes.
    fill_deterministic(&mut state, unsafe {
        core::slice::from_raw_parts_mut(dest, len)
    });
    STATE.store(state, Ordering::Relaxed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_fixed_and_does_not_repeat_itself() {
        let (mut a, mut b) = (42, 42);
        let (mut first, mut again) = ([0u8; 13], [0u8; 13]);
        fill_deterministic(&mut a, &mut first);
        fill_deterministic(&mut b, &mut again);
        assert_eq!(first, again, "the same state gives the same bytes");
        let mut next = [0u8; 13];
        fill_deterministic(&mut a, &mut next);
        assert_ne!(first, next, "the state advances");
        // SplitMix64's published first output for seed 0.
        let mut zero = 0;
        let mut out = [0u8; 8];
        fill_deterministic(&mut zero, &mut out);
        assert_eq!(u64::from_le_bytes(out), 0xe220_a839_7b1d_cdaf);
    }
}
