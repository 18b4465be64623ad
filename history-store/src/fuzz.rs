//! Seeded, budgeted fuzzing of decoders, for tests in this crate and in
//! crates that build on it (feature `test-support`).
//!
//! No nightly toolchain (and so no `cargo fuzz`) is needed: a [`Fuzz`]
//! mutates valid encodings with a small deterministic generator, feeds
//! each mutant to a decoder and fails the test if the decoder panics or
//! makes a single allocation larger than the bound it is given. The same
//! seed gives the same mutants on every machine, so CI runs a fixed set
//! and a failure is reproduced from the seed it prints.
//!
//! - `REFRAIN_FUZZ_ITERS`: mutants per test (each test picks a default
//!   that runs in a few seconds in a debug build).
//! - `REFRAIN_FUZZ_SEED`: the seed (decimal or `0x` hex); a fixed one by
//!   default, so CI is repeatable. Set another to explore further.
//!
//! Allocation sizes are only seen where [`CountingAlloc`] is the global
//! allocator; [`Fuzz::run`] checks that it is.

use crate::codec::{HEADER_LEN, MAGIC};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Seed used when `REFRAIN_FUZZ_SEED` is not set.
pub const DEFAULT_SEED: u64 = 0x5eed_f00d_2026_0014;

/// The global allocator of a fuzz test binary: the system allocator,
/// recording the largest single request made by the current thread.
pub struct CountingAlloc;

thread_local! {
    // Const-initialised and without a destructor: reading it from inside
    // the allocator never allocates.
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // During thread teardown the slot may be gone; nothing to record then.
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

// The only unsafe code in the crate, and test-support only: a global
// allocator must implement an unsafe trait. Every method forwards to the
// system allocator with the caller's arguments unchanged.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded as is; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, that is from `System`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: as for `dealloc`; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

// This crate's own unit tests fuzz the journal's decoder.
#[cfg(test)]
#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Runs `f` and returns its result with the largest single allocation it
/// made on this thread (0 if [`CountingAlloc`] is not installed).
pub fn largest_allocation<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST.with(|l| l.set(0));
    let r = f();
    (r, LARGEST.with(Cell::get))
}

/// A small deterministic generator (SplitMix64): the same seed gives the
/// same mutants whatever the platform or the versions of other crates.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A random byte.
    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }
}

/// Lengths a corrupt prefix likes to claim, as bincode varints (the
/// codec's payloads), big-endian u32s (the codec header, the journal's
/// layout) and JSON numbers (the history file).
fn length_prefix(rng: &mut Rng) -> Vec<u8> {
    const BIG: [u64; 7] = [
        1 << 62,
        u64::MAX,
        u32::MAX as u64,
        1 << 31,
        (1 << 28) + 3,
        1 << 20,
        65_535,
    ];
    let v = BIG[rng.below(BIG.len())];
    match rng.below(5) {
        0 => [&[253u8][..], &v.to_le_bytes()].concat(),
        1 => [&[252u8][..], &(v as u32).to_le_bytes()].concat(),
        2 => [&[251u8][..], &(v as u16).to_le_bytes()].concat(),
        3 => (v as u32).to_be_bytes().to_vec(),
        _ => v.to_string().into_bytes(),
    }
}

/// Fragments that make a JSON mutant more interesting than random bytes.
const TOKENS: [&str; 16] = [
    "{",
    "}",
    "[",
    "]",
    "\"",
    ",",
    ":",
    "null",
    "-",
    "1e999",
    "\\u0000",
    "\\ud800",
    "\"$bytes\"",
    "\"seq\"",
    "18446744073709551616",
    "-0.0",
];

/// One mutation of `input`, described for the failure report.
pub fn mutate(rng: &mut Rng, input: &mut Vec<u8>) -> String {
    let len = input.len();
    let at = |rng: &mut Rng| rng.below(len + 1);
    match rng.below(9) {
        0 if len > 0 => {
            let (i, bit) = (rng.below(len), rng.below(8));
            input[i] ^= 1 << bit;
            format!("flip bit {bit} of byte {i}")
        }
        1 => {
            let n = at(rng);
            input.truncate(n);
            format!("truncate to {n}")
        }
        2 => {
            let (i, n) = (at(rng), 1 + rng.below(16));
            let bytes: Vec<u8> = (0..n).map(|_| rng.byte()).collect();
            input.splice(i..i, bytes);
            format!("insert {n} random bytes at {i}")
        }
        3 if len > 0 => {
            let i = rng.below(len);
            let n = (1 + rng.below(16)).min(len - i);
            input.drain(i..i + n);
            format!("remove {n} bytes at {i}")
        }
        4 => {
            let (i, prefix) = (at(rng), length_prefix(rng));
            let end = (i + prefix.len()).min(len);
            let d = format!("overwrite at {i} with length prefix {prefix:02x?}");
            input.splice(i..end, prefix);
            d
        }
        5 if len > 0 => {
            let i = rng.below(len);
            let v = [0, 1, 0x7f, 0x80, 0xfb, 0xfc, 0xfd, 0xff][rng.below(8)];
            input[i] = v;
            format!("set byte {i} to {v:#04x}")
        }
        6 => {
            let (i, t) = (at(rng), TOKENS[rng.below(TOKENS.len())]);
            input.splice(i..i, t.bytes());
            format!("insert {t:?} at {i}")
        }
        7 if len > 1 => {
            // Repeat a slice of the input elsewhere: a plausible structure
            // in the wrong place.
            let (from, to) = (rng.below(len), rng.below(len));
            let n = (1 + rng.below(64)).min(len - from);
            let part = input[from..from + n].to_vec();
            input.splice(to..to, part);
            format!("copy {n} bytes from {from} to {to}")
        }
        _ => {
            let n = rng.below(64);
            *input = (0..n).map(|_| rng.byte()).collect();
            format!("replace with {n} random bytes")
        }
    }
}

/// Gives a codec envelope a header that matches its (mutated) payload, so
/// the mutant reaches the payload decoder instead of stopping at the
/// checksum. Inputs too short for a header are left alone.
pub fn reseal(bytes: &mut [u8]) {
    if bytes.len() < HEADER_LEN || bytes[..2] != MAGIC {
        return;
    }
    let payload = bytes.len() - HEADER_LEN;
    let crc = crc32c::crc32c(&bytes[HEADER_LEN..]);
    bytes[5..9].copy_from_slice(&(payload as u32).to_be_bytes());
    bytes[9..HEADER_LEN].copy_from_slice(&crc.to_be_bytes());
}

/// A budgeted fuzz run over one decoder.
#[derive(Clone, Debug)]
pub struct Fuzz {
    name: &'static str,
    seed: u64,
    iterations: u64,
    reseal: bool,
    max_allocation: usize,
}

impl Fuzz {
    /// A run named `name` (for reports) of `default_iterations` mutants,
    /// unless the environment says otherwise (see the module docs).
    ///
    /// # Panics
    /// If `REFRAIN_FUZZ_ITERS` or `REFRAIN_FUZZ_SEED` is set but is not a
    /// number.
    pub fn from_env(name: &'static str, default_iterations: u64) -> Self {
        let iterations = match std::env::var("REFRAIN_FUZZ_ITERS") {
            Ok(v) => v
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("REFRAIN_FUZZ_ITERS={v:?} is not a number")),
            Err(_) => default_iterations,
        };
        let seed = match std::env::var("REFRAIN_FUZZ_SEED") {
            Ok(v) => {
                let t = v.trim();
                let parsed = match t.strip_prefix("0x") {
                    Some(hex) => u64::from_str_radix(hex, 16),
                    None => t.parse(),
                };
                parsed.unwrap_or_else(|_| panic!("REFRAIN_FUZZ_SEED={v:?} is not a number"))
            }
            Err(_) => DEFAULT_SEED,
        };
        Fuzz {
            name,
            seed,
            iterations,
            reseal: false,
            max_allocation: usize::MAX,
        }
    }

    /// Half the mutants of envelope-shaped inputs get a matching header
    /// (see [`reseal`]).
    pub fn resealing(mut self) -> Self {
        self.reseal = true;
        self
    }

    /// Fails a mutant whose decoding makes a single allocation above
    /// `bytes`.
    pub fn max_allocation(mut self, bytes: usize) -> Self {
        self.max_allocation = bytes;
        self
    }

    /// Feeds `decode` the mutants of `corpus` (each mutant one to four
    /// mutations of a corpus entry). `decode` returns whatever the decoder
    /// said; an `Err` is a named error and fine, a panic is not.
    ///
    /// # Panics
    /// On the first mutant whose decoding panicked or allocated too much,
    /// with the seed, the iteration, the mutations and the bytes; or if
    /// [`CountingAlloc`] is not the global allocator.
    pub fn run<T, E>(&self, corpus: &[Vec<u8>], decode: impl Fn(&[u8]) -> Result<T, E>) {
        assert!(!corpus.is_empty(), "{}: empty corpus", self.name);
        let (_, probe) = largest_allocation(|| std::hint::black_box(vec![0u8; 1 << 16]));
        assert!(
            probe >= 1 << 16,
            "{}: install refrain_history::fuzz::CountingAlloc as the global allocator",
            self.name
        );
        let mut rng = Rng::new(self.seed);
        let (mut ok, mut failed) = (0u64, 0u64);
        for iteration in 0..self.iterations {
            let source = rng.below(corpus.len());
            let mut input = corpus[source].clone();
            let mut steps = Vec::new();
            for _ in 0..1 + rng.below(4) {
                steps.push(mutate(&mut rng, &mut input));
            }
            if self.reseal && rng.below(2) == 0 {
                reseal(&mut input);
                steps.push("reseal".into());
            }
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                largest_allocation(|| decode(&input).is_ok())
            }));
            let report = |what: String| -> String {
                format!(
                    "fuzz {}: {what}\n  seed {:#x} (REFRAIN_FUZZ_SEED), iteration {iteration}, corpus entry {source}\n  mutations: {}\n  input ({} bytes): {:02x?}",
                    self.name,
                    self.seed,
                    steps.join("; "),
                    input.len(),
                    &input[..input.len().min(512)],
                )
            };
            match outcome {
                Err(_) => panic!("{}", report("the decoder panicked".into())),
                Ok((_, largest)) if largest > self.max_allocation => panic!(
                    "{}",
                    report(format!(
                        "one allocation of {largest} bytes, above the bound of {}",
                        self.max_allocation
                    ))
                ),
                Ok((true, _)) => ok += 1,
                Ok((false, _)) => failed += 1,
            }
        }
        eprintln!(
            "fuzz {}: {} mutants (seed {:#x}): {ok} decoded, {failed} named errors",
            self.name, self.iterations, self.seed
        );
    }
}
