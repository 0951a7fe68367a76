//! Helpers shared by the crate's unit tests. Compiled only for tests.

/// A deterministic xorshift64 stream from `seed` (non-zero): reproducible "random" inputs
/// for property-style tests, without a dependency.
pub(crate) fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}
