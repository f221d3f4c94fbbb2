//! Dense layers over whole batches, `Y = X · W + b`, as a register-tiled matrix multiply.
//!
//! The weights are packed once, when the model is built, into panels of [`PANEL`] columns stored
//! input by input, so a tile reads them contiguously. A tile keeps an `MR × NR` block of outputs
//! in vector registers and walks the inputs in blocks of [`KC`] (its weight slice stays in L1)
//! over row blocks of [`MC`] samples (their inputs stay in L2).
//!
//! Every output is its bias plus its products added in input order, one at a time: blocking, tile
//! shape and thread count never change a result. What adds a product does: a fused multiply-add
//! (one rounding) on x86-64 CPUs with FMA and with WASM relaxed SIMD, a multiply then an add (two
//! roundings) on the simd128 and portable paths. So the simd128 WASM variant and the portable path
//! agree bit for bit, and the FMA paths differ from them in the last bits, within a kernel's
//! tolerance.

/// Columns per packed weight panel.
pub const PANEL: usize = 8;
/// The packed layout's version: code generated with weights packed ahead of time (by
/// [`Dense::packed`], stored, and read back with [`Dense::from_packed`]) checks it at compile
/// time, so a helper crate that packs differently fails the build instead of the results.
pub const PACKED_LAYOUT: u32 = 1;
/// Inputs per block: a 16-column weight slice of `KC` inputs is 16 KiB, half of a 32 KiB L1.
const KC: usize = 256;
/// Samples per row block: `MC × KC` inputs are 192 KiB, inside a 1–2 MiB L2 (measured against
/// 48 and 96 on mlp-large: 60 % → 66–72 % of peak on one thread at batch ≥ 256).
const MC: usize = 192;
/// Below this many multiply-adds per thread, handing work to another thread costs more than it
/// saves (a rayon hand-off is a few µs; this is ~20 µs of work on one AVX2 core).
const MIN_MACS_PER_THREAD: usize = 1 << 19;
/// Outputs in the largest tile ([`Isa::Avx512`]'s 24 × 16).
const MAX_TILE: usize = 24 * 2 * PANEL;

/// The instruction set a multiply runs on, picked once per process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// x86-64 with AVX2 and FMA, detected at run time: 6 × 16 tiles of fused multiply-adds.
    Avx2Fma,
    /// x86-64 with AVX-512F as well: 24 × 16 tiles, one 512-bit vector of fused multiply-adds per
    /// sample (the same products in the same order as `Avx2Fma`, so the same results, bit for bit).
    Avx512,
    /// wasm32 built with `simd128`: 4 × 8 tiles that splat inputs, multiply then add; from 64
    /// samples, 8 × 4 tiles with samples along the vectors that splat weights once per block.
    Simd128,
    /// wasm32 built with `relaxed-simd`: the same tiles of `f32x4.relaxed_madd` (fused where the
    /// engine's CPU has FMA, so results may differ between engines in the last bits), the second
    /// kind from 256 samples.
    RelaxedSimd,
    /// Anything else: 4 × 8 tiles in plain Rust, which LLVM vectorises for the baseline target.
    Portable,
}

impl Isa {
    /// The best instruction set this process can run.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            if std::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            return Isa::Avx2Fma;
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
        return Isa::RelaxedSimd;
        #[cfg(all(
            target_arch = "wasm32",
            target_feature = "simd128",
            not(target_feature = "relaxed-simd")
        ))]
        return Isa::Simd128;
        #[allow(unreachable_code)]
        Isa::Portable
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx2Fma => "avx2+fma",
            Isa::Avx512 => "avx512f",
            Isa::Simd128 => "simd128",
            Isa::RelaxedSimd => "relaxed-simd",
            Isa::Portable => "portable",
        }
    }

    /// Whether a call copies each block of inputs into its tiles' order first, so a tile's
    /// broadcasts read one stream. The AVX-512 tile reads 24 samples' inputs a step: unpacked,
    /// those are rows a sample apart, which for 1024 inputs fall in one L1 set (24 lines on 12
    /// ways). Measured on mlp-large, one thread, Intel Xeon: unpacked it ran at 91 GFLOP/s at
    /// batch 256 and 72 at 4096, packed at 119–125 and 93–100. The 6-row AVX2 tile has no such
    /// conflict and lost about 10 % to the copy (92 → 83 at 256), so it reads the samples as
    /// they are.
    fn packs_inputs(self) -> bool {
        self == Isa::Avx512
    }

    /// Rows and panels of one tile.
    fn tile(self) -> (usize, usize) {
        match self {
            Isa::Avx2Fma => (6, 2),
            Isa::Avx512 => (24, 2),
            Isa::Simd128 | Isa::RelaxedSimd => (4, 1),
            Isa::Portable => (4, 1),
        }
    }
}

/// This core's f32 multiply-add peak in GFLOP/s (a fused multiply-add is two FLOPs per lane), from
/// a loop of independent FMAs that only the FMA units limit, at the widest vectors the CPU has;
/// `None` on CPUs without FMA. For benchmarks: it runs for about a quarter of a second.
pub fn fma_peak_gflops() -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    if matches!(Isa::detect(), Isa::Avx2Fma | Isa::Avx512) {
        // SAFETY: AVX2 and FMA were detected; AVX-512 is checked before its loop runs.
        return Some(unsafe { x86::fma_peak_gflops() });
    }
    None
}

/// One fully connected layer with its weights packed for [`Dense::forward`].
#[derive(Debug, Clone)]
pub struct Dense {
    inputs: usize,
    outputs: usize,
    /// `panels` panels of `inputs × PANEL`, zero-padded to an even count so a two-panel tile
    /// never reads past the end.
    packed: Vec<f32>,
    /// The bias, zero-padded to the packed width.
    bias: Vec<f32>,
}

impl Dense {
    /// Packs row-major `[inputs × outputs]` weights; `None` when the lengths do not agree.
    pub fn new(weights: &[f32], bias: &[f32]) -> Option<Self> {
        let outputs = bias.len();
        if outputs == 0 || !weights.len().is_multiple_of(outputs) {
            return None;
        }
        let inputs = weights.len() / outputs;
        let mut packed = vec![0.0; Self::packed_len(inputs, outputs)];
        for (i, row) in weights.chunks_exact(outputs).enumerate() {
            for (j, &w) in row.iter().enumerate() {
                packed[(j / PANEL) * inputs * PANEL + i * PANEL + j % PANEL] = w;
            }
        }
        Self::from_packed(inputs, outputs, packed, bias)
    }

    /// f32 values in the packed weights of an `inputs × outputs` layer: whole panels, an even
    /// count of them.
    pub fn packed_len(inputs: usize, outputs: usize) -> usize {
        padded_width(outputs) * inputs
    }

    /// A layer from weights [`Dense::packed`] wrote (so packing can happen ahead of time, when a
    /// model is compiled); `None` when the lengths are not those of an `inputs × outputs` layer.
    pub fn from_packed(
        inputs: usize,
        outputs: usize,
        packed: Vec<f32>,
        bias: &[f32],
    ) -> Option<Self> {
        if outputs == 0
            || bias.len() != outputs
            || packed.len() != Self::packed_len(inputs, outputs)
        {
            return None;
        }
        let mut padded_bias = bias.to_vec();
        padded_bias.resize(padded_width(outputs), 0.0);
        Some(Self {
            inputs,
            outputs,
            packed,
            bias: padded_bias,
        })
    }

    /// The weights in their packed layout ([`PACKED_LAYOUT`]).
    pub fn packed(&self) -> &[f32] {
        &self.packed
    }

    pub fn inputs(&self) -> usize {
        self.inputs
    }

    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// `y = x · W + b` (then `max(·, 0)` when `relu`) for `x.len() / inputs` samples, on up to
    /// `max_threads` threads; returns how many it used. Panics if `x` and `y` do not hold the
    /// same whole number of samples.
    pub fn forward(
        &self,
        isa: Isa,
        x: &[f32],
        y: &mut [f32],
        relu: bool,
        max_threads: usize,
    ) -> usize {
        let rows = x.len() / self.inputs;
        assert!(
            x.len() == rows * self.inputs && y.len() == rows * self.outputs,
            "dense layer {}→{}: {} inputs and {} outputs are not the same number of samples",
            self.inputs,
            self.outputs,
            x.len(),
            y.len()
        );
        let split = self.split(isa, rows, max_threads);
        let out = Out(y.as_mut_ptr());
        if split.parts == 1 {
            // SAFETY: one block covering all of `y`, which this call borrows mutably.
            unsafe { self.block(isa, x, out, split.part(0, rows, self.outputs), relu) };
            return 1;
        }
        self.parallel(isa, x, out, rows, split, relu)
    }

    /// How to share a call between threads: one per `MIN_MACS_PER_THREAD` of work. Many samples
    /// split by rows (each thread its samples); few split by columns, so each thread reads only
    /// its share of the weights, which is what bounds a small batch.
    fn split(&self, isa: Isa, rows: usize, max_threads: usize) -> Split {
        let (tile_rows, tile_panels) = isa.tile();
        let tile_cols = tile_panels * PANEL;
        let (row_tiles, col_tiles) = (rows.div_ceil(tile_rows), self.outputs.div_ceil(tile_cols));
        let work = rows * self.inputs * self.outputs;
        let parts = max_threads
            .min(work / MIN_MACS_PER_THREAD)
            .min(row_tiles.max(col_tiles))
            .max(1);
        if rows >= parts * MC || col_tiles < parts {
            let chunk = row_tiles.div_ceil(parts) * tile_rows;
            Split {
                parts: rows.div_ceil(chunk),
                by_rows: true,
                chunk,
            }
        } else {
            let chunk = col_tiles.div_ceil(parts) * tile_cols;
            Split {
                parts: self.outputs.div_ceil(chunk),
                by_rows: false,
                chunk,
            }
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn parallel(
        &self,
        isa: Isa,
        x: &[f32],
        out: Out,
        rows: usize,
        split: Split,
        relu: bool,
    ) -> usize {
        use rayon::prelude::*;
        (0..split.parts).into_par_iter().for_each(|index| {
            // SAFETY: `Split::part` hands each index a block no other index overlaps, all inside
            // `y`, which `forward` borrows mutably until every part is done.
            unsafe { self.block(isa, x, out, split.part(index, rows, self.outputs), relu) }
        });
        split.parts
    }

    /// WASM instances have one thread.
    #[cfg(target_arch = "wasm32")]
    fn parallel(&self, isa: Isa, x: &[f32], out: Out, rows: usize, _: Split, relu: bool) -> usize {
        let all = Split {
            parts: 1,
            by_rows: true,
            chunk: rows,
        };
        // SAFETY: one block covering all of `y`, which `forward` borrows mutably.
        unsafe { self.block(isa, x, out, all.part(0, rows, self.outputs), relu) };
        1
    }

    /// The blocked multiply of one block of outputs on this thread.
    ///
    /// # Safety
    /// `out` points at the `rows × outputs` output, and no one else reads or writes `block` of it
    /// during the call.
    unsafe fn block(&self, isa: Isa, x: &[f32], out: Out, block: Block, relu: bool) {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        if matches!(isa, Isa::Simd128 | Isa::RelaxedSimd)
            && block.rows.len() >= wasm::SAMPLE_TILES_FROM_ROWS
        {
            // SAFETY: forwarded.
            unsafe { wasm::block_by_samples(self, x, out, block, relu) };
            return;
        }
        let (k, n) = (self.inputs, self.outputs);
        let (tile_rows, tile_panels) = isa.tile();
        let tile_cols = tile_panels * PANEL;
        let panel_stride = k * PANEL;
        let pack_inputs = isa.packs_inputs();
        let mut packed_inputs = Vec::new();
        for row0 in block.rows.clone().step_by(MC) {
            let block_end = block.rows.end.min(row0 + MC);
            for k0 in (0..k).step_by(KC) {
                let kb = KC.min(k - k0);
                let first = k0 == 0;
                let relu_now = relu && k0 + kb == k;
                if pack_inputs {
                    // Each row tile's inputs, input by input: [tile][input][row]. Written once
                    // per row and input block, then read by every column tile. Each sample's
                    // inputs are read in order (the writes stay in one tile's few KiB).
                    packed_inputs.resize((block_end - row0) * kb, 0.0);
                    for r0 in (row0..block_end).step_by(tile_rows) {
                        let rows = tile_rows.min(block_end - r0);
                        let tile = &mut packed_inputs[(r0 - row0) * kb..][..rows * kb];
                        for r in 0..rows {
                            let sample = &x[(r0 + r) * k + k0..][..kb];
                            for (kk, &value) in sample.iter().enumerate() {
                                tile[kk * rows + r] = value;
                            }
                        }
                    }
                }
                for col0 in block.cols.clone().step_by(tile_cols) {
                    let cols = tile_cols.min(n - col0);
                    let weights = &self.packed[(col0 / PANEL) * panel_stride + k0 * PANEL..];
                    let bias = &self.bias[col0..col0 + tile_cols];
                    for r0 in (row0..block_end).step_by(tile_rows) {
                        let rows = tile_rows.min(block_end - r0);
                        // Every tile before this one in the row block is full.
                        let (x, x_stride, input_stride) = match pack_inputs {
                            true => (&packed_inputs[(r0 - row0) * kb..], 1, rows),
                            false => (&x[r0 * k + k0..], k, 1),
                        };
                        let tile = Tile {
                            rows,
                            kb,
                            x,
                            x_stride,
                            input_stride,
                            weights,
                            panel_stride,
                            init: if first {
                                Init::Bias(bias)
                            } else {
                                Init::Accumulate
                            },
                            relu: relu_now,
                        };
                        // SAFETY: rows r0.. and columns col0.. lie in `block`, which is ours.
                        let at = unsafe { out.0.add(r0 * n + col0) };
                        if cols == tile_cols {
                            // SAFETY: the whole tile lies in `block` (only a block's last tile
                            // can be narrower, and that one takes the other branch).
                            unsafe { tile.run(isa, at, n) };
                            continue;
                        }
                        // The last columns: run the full tile on a copy, keep what exists.
                        let mut scratch = [0.0f32; MAX_TILE];
                        for r in 0..tile.rows {
                            // SAFETY: row r's `cols` columns from `at` lie in `block`.
                            let row = unsafe { std::slice::from_raw_parts(at.add(r * n), cols) };
                            scratch[r * tile_cols..r * tile_cols + cols].copy_from_slice(row);
                        }
                        // SAFETY: `scratch` holds a full tile of any instruction set.
                        unsafe { tile.run(isa, scratch.as_mut_ptr(), tile_cols) };
                        for r in 0..tile.rows {
                            // SAFETY: as above.
                            let row =
                                unsafe { std::slice::from_raw_parts_mut(at.add(r * n), cols) };
                            row.copy_from_slice(&scratch[r * tile_cols..r * tile_cols + cols]);
                        }
                    }
                }
            }
        }
    }
}

/// Columns of a layer once packed: whole panels, an even count so a two-panel tile never reads
/// past the end.
fn padded_width(outputs: usize) -> usize {
    outputs.div_ceil(PANEL).next_multiple_of(2) * PANEL
}

/// The output matrix, shared by the threads of one call; each writes only its own [`Block`].
#[derive(Clone, Copy)]
struct Out(*mut f32);

// SAFETY: `Dense::forward` hands every thread a block no other thread touches.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

/// `parts` blocks of `chunk` rows (or columns), the last one shorter.
#[derive(Clone, Copy)]
struct Split {
    parts: usize,
    by_rows: bool,
    chunk: usize,
}

/// The outputs one thread computes.
struct Block {
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
}

impl Split {
    fn part(self, index: usize, rows: usize, cols: usize) -> Block {
        let range = |len: usize| (index * self.chunk).min(len)..((index + 1) * self.chunk).min(len);
        if self.by_rows {
            Block {
                rows: range(rows),
                cols: 0..cols,
            }
        } else {
            Block {
                rows: 0..rows,
                cols: range(cols),
            }
        }
    }
}

/// Where a tile's accumulators start.
#[derive(Clone, Copy)]
enum Init<'a> {
    /// The first input block: the bias of the tile's columns.
    Bias(&'a [f32]),
    /// A later block: what the earlier blocks left in the output.
    Accumulate,
}

/// One `rows × (panels · PANEL)` block of outputs over `kb` inputs.
struct Tile<'a> {
    rows: usize,
    kb: usize,
    /// The tile's first sample at its first input: sample `r`'s input `kk` is at
    /// `r * x_stride + kk * input_stride` (packed for the AVX-512 tile: 1 and `rows`; else the
    /// caller's samples: a sample's width and 1).
    x: &'a [f32],
    x_stride: usize,
    input_stride: usize,
    /// The tile's first panel at its first input; the next panel starts `panel_stride` later.
    weights: &'a [f32],
    panel_stride: usize,
    init: Init<'a>,
    relu: bool,
}

impl Tile<'_> {
    /// Writes the tile to `out`, row `r` at `r * out_stride`.
    ///
    /// # Safety
    /// `out` is valid for reads and writes of `rows` rows of the tile's width at `out_stride`,
    /// and no one else touches them during the call.
    unsafe fn run(&self, isa: Isa, out: *mut f32, out_stride: usize) {
        let (_, panels) = isa.tile();
        // Every read of the inputs and weights stays inside these ranges.
        assert!(self.rows >= 1 && self.kb >= 1);
        assert!(self.x.len() > (self.rows - 1) * self.x_stride + (self.kb - 1) * self.input_stride);
        // The AVX-512 tile indexes packed inputs with its row count as a constant; the others
        // read each sample's inputs in order.
        match isa.packs_inputs() {
            true => assert!(self.x_stride == 1 && self.input_stride == self.rows),
            false => assert!(self.input_stride == 1),
        }
        assert!(self.weights.len() >= (panels - 1) * self.panel_stride + self.kb * PANEL);
        if let Init::Bias(bias) = self.init {
            assert!(bias.len() >= panels * PANEL);
        }
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Avx2Fma` comes from `Isa::detect`, which saw both features; the ranges
            // were checked above or by the caller.
            Isa::Avx2Fma => unsafe { x86::tile(self, out, out_stride) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Avx512` comes from `Isa::detect`, which saw AVX-512F; the ranges as above.
            Isa::Avx512 => unsafe { x86::tile_avx512(self, out, out_stride) },
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            // SAFETY: the ranges were checked above or by the caller.
            Isa::Simd128 | Isa::RelaxedSimd => unsafe { wasm::tile(self, out, out_stride) },
            // SAFETY: the ranges were checked above or by the caller.
            _ => unsafe { portable::tile(self, out, out_stride) },
        }
    }
}

/// Expands `$body` once per tile height up to `$max`, with `R` the rows as a constant, so the
/// accumulators are arrays the compiler keeps in registers.
macro_rules! for_rows {
    ($rows:expr, $max:literal, $body:ident ( $($arg:expr),* )) => {
        match $rows {
            1 => $body::<1>($($arg),*),
            2 => $body::<2>($($arg),*),
            3 => $body::<3>($($arg),*),
            4 => $body::<4>($($arg),*),
            5 if $max >= 5 => $body::<5>($($arg),*),
            6 if $max >= 6 => $body::<6>($($arg),*),
            7 if $max >= 7 => $body::<7>($($arg),*),
            8 if $max >= 8 => $body::<8>($($arg),*),
            9 if $max >= 9 => $body::<9>($($arg),*),
            10 if $max >= 10 => $body::<10>($($arg),*),
            11 if $max >= 11 => $body::<11>($($arg),*),
            12 if $max >= 12 => $body::<12>($($arg),*),
            13 if $max >= 13 => $body::<13>($($arg),*),
            14 if $max >= 14 => $body::<14>($($arg),*),
            15 if $max >= 15 => $body::<15>($($arg),*),
            16 if $max >= 16 => $body::<16>($($arg),*),
            17 if $max >= 17 => $body::<17>($($arg),*),
            18 if $max >= 18 => $body::<18>($($arg),*),
            19 if $max >= 19 => $body::<19>($($arg),*),
            20 if $max >= 20 => $body::<20>($($arg),*),
            21 if $max >= 21 => $body::<21>($($arg),*),
            22 if $max >= 22 => $body::<22>($($arg),*),
            23 if $max >= 23 => $body::<23>($($arg),*),
            24 if $max >= 24 => $body::<24>($($arg),*),
            rows => unreachable!("a tile has at most {} rows, not {rows}", $max),
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Init, PANEL, Tile};
    use std::arch::x86_64::*;
    use std::hint::black_box;
    use std::time::Instant;

    /// Independent accumulators: more than FMA latency × FMA ports (4 × 2 on current cores).
    const CHAINS: usize = 12;
    const PEAK_ITERATIONS: usize = 4_000_000;

    /// Best of five timed loops, AVX-512 too when the CPU has it (some cores run it at no more
    /// FLOPs than AVX2: the faster of the two is the peak).
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA.
    pub(super) unsafe fn fma_peak_gflops() -> f64 {
        let time = |run: &dyn Fn() -> f32, lanes: usize| {
            (0..5)
                .map(|_| {
                    let start = Instant::now();
                    black_box(run());
                    let flops = (PEAK_ITERATIONS * CHAINS * lanes * 2) as f64;
                    flops / start.elapsed().as_secs_f64() / 1e9
                })
                .fold(0.0, f64::max)
        };
        // SAFETY: AVX2 and FMA are present (the caller's contract).
        let avx2 = time(&|| unsafe { peak_avx2() }, 8);
        if !std::is_x86_feature_detected!("avx512f") {
            return avx2;
        }
        // SAFETY: AVX-512F was just detected.
        avx2.max(time(&|| unsafe { peak_avx512() }, 16))
    }

    /// `acc = acc · a + b` converges to 1: the values stay normal, so no slow path runs.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn peak_avx2() -> f32 {
        let (a, b) = (
            _mm256_set1_ps(black_box(0.999_999)),
            _mm256_set1_ps(black_box(1e-6)),
        );
        let mut acc = [_mm256_set1_ps(black_box(0.5)); CHAINS];
        for _ in 0..PEAK_ITERATIONS {
            for acc in &mut acc {
                *acc = _mm256_fmadd_ps(*acc, a, b);
            }
        }
        let mut lanes = [0.0f32; 8];
        let sum = acc
            .iter()
            .fold(_mm256_setzero_ps(), |s, &v| _mm256_add_ps(s, v));
        // SAFETY: `lanes` holds eight f32.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
        lanes.iter().sum()
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn peak_avx512() -> f32 {
        let (a, b) = (
            _mm512_set1_ps(black_box(0.999_999)),
            _mm512_set1_ps(black_box(1e-6)),
        );
        let mut acc = [_mm512_set1_ps(black_box(0.5)); CHAINS];
        for _ in 0..PEAK_ITERATIONS {
            for acc in &mut acc {
                *acc = _mm512_fmadd_ps(*acc, a, b);
            }
        }
        acc.iter().map(|&v| _mm512_reduce_add_ps(v)).sum()
    }

    /// # Safety
    /// The CPU has AVX2 and FMA, and the tile's ranges were checked by [`Tile::run`].
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn tile(tile: &Tile, out: *mut f32, out_stride: usize) {
        // SAFETY: forwarded.
        unsafe { for_rows!(tile.rows, 6, rows(tile, out, out_stride)) }
    }

    /// # Safety
    /// The CPU has AVX-512F, and the tile's ranges and packed inputs were checked by
    /// [`Tile::run`].
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tile_avx512(tile: &Tile, out: *mut f32, out_stride: usize) {
        // SAFETY: forwarded.
        unsafe { for_rows!(tile.rows, 24, rows_avx512(tile, out, out_stride)) }
    }

    /// Two panels' weights at one input in one vector: the first panel's 8 in the low half.
    ///
    /// # Safety
    /// Both pointers are valid for reads of 8 f32.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn two_panels(first: *const f32, second: *const f32) -> __m512 {
        // SAFETY: the caller's.
        unsafe {
            let low = _mm512_castps256_ps512(_mm256_loadu_ps(first));
            let high = _mm256_castps_pd(_mm256_loadu_ps(second));
            _mm512_castpd_ps(_mm512_insertf64x4::<1>(_mm512_castps_pd(low), high))
        }
    }

    /// A sample's 16 outputs in one 512-bit accumulator, 24 samples a tile: the 32 vector
    /// registers hold 24 accumulators, the weights and a broadcast input, and each input's two
    /// panels are joined once for all 24 samples (the join is a shuffle on a port the FMAs use).
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn rows_avx512<const R: usize>(tile: &Tile, out: *mut f32, out_stride: usize) {
        let (x, w0) = (tile.x.as_ptr(), tile.weights.as_ptr());
        // SAFETY (whole body): every offset is inside the ranges `Tile::run` checked.
        unsafe {
            let w1 = w0.add(tile.panel_stride);
            let mut acc = [_mm512_setzero_ps(); R];
            for (r, acc) in acc.iter_mut().enumerate() {
                *acc = match tile.init {
                    Init::Bias(bias) => _mm512_loadu_ps(bias.as_ptr()),
                    Init::Accumulate => _mm512_loadu_ps(out.add(r * out_stride)),
                };
            }
            for kk in 0..tile.kb {
                let b = two_panels(w0.add(kk * PANEL), w1.add(kk * PANEL));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let a = _mm512_set1_ps(*x.add(kk * R + r));
                    *acc = _mm512_fmadd_ps(a, b, *acc);
                }
            }
            let zero = _mm512_setzero_ps();
            for (r, &acc) in acc.iter().enumerate() {
                let value = if tile.relu {
                    _mm512_max_ps(acc, zero)
                } else {
                    acc
                };
                _mm512_storeu_ps(out.add(r * out_stride), value);
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn rows<const R: usize>(tile: &Tile, out: *mut f32, out_stride: usize) {
        let (x, w0) = (tile.x.as_ptr(), tile.weights.as_ptr());
        // SAFETY (whole body): every offset is inside the ranges `Tile::run` checked.
        unsafe {
            let w1 = w0.add(tile.panel_stride);
            let mut acc = [[_mm256_setzero_ps(); 2]; R];
            for (r, acc) in acc.iter_mut().enumerate() {
                let from = match tile.init {
                    Init::Bias(bias) => bias.as_ptr(),
                    Init::Accumulate => out.add(r * out_stride),
                };
                *acc = [_mm256_loadu_ps(from), _mm256_loadu_ps(from.add(PANEL))];
            }
            for kk in 0..tile.kb {
                let b0 = _mm256_loadu_ps(w0.add(kk * PANEL));
                let b1 = _mm256_loadu_ps(w1.add(kk * PANEL));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let a = _mm256_broadcast_ss(&*x.add(r * tile.x_stride + kk));
                    acc[0] = _mm256_fmadd_ps(a, b0, acc[0]);
                    acc[1] = _mm256_fmadd_ps(a, b1, acc[1]);
                }
            }
            let zero = _mm256_setzero_ps();
            for (r, acc) in acc.iter().enumerate() {
                let (mut lo, mut hi) = (acc[0], acc[1]);
                if tile.relu {
                    lo = _mm256_max_ps(lo, zero);
                    hi = _mm256_max_ps(hi, zero);
                }
                let to = out.add(r * out_stride);
                _mm256_storeu_ps(to, lo);
                _mm256_storeu_ps(to.add(PANEL), hi);
            }
        }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm {
    use super::{Block, Dense, Init, Out, PANEL, Tile};
    use core::arch::wasm32::*;

    /// From this many samples a call runs [`block_by_samples`]. Measured on mlp-large's layers
    /// (1024 × 1024) in wasmtime 48 and Node 20 on a Zen 4 core: with simd128 it gains from 64
    /// samples in wasmtime (24.6 → 33.7 GFLOP/s, 25 → 37.7 from 256) and loses 14 % at 64 in V8,
    /// which splats straight from memory (equal from 256); with relaxed SIMD, V8's fused
    /// input-broadcast tile stays ahead below 256 (48 against 37 GFLOP/s at 64).
    #[cfg(not(target_feature = "relaxed-simd"))]
    pub(super) const SAMPLE_TILES_FROM_ROWS: usize = 64;
    #[cfg(target_feature = "relaxed-simd")]
    pub(super) const SAMPLE_TILES_FROM_ROWS: usize = 256;
    /// Samples in one vector of [`block_by_samples`].
    const LANES: usize = 4;
    /// Columns of one [`block_by_samples`] tile.
    const COLUMNS: usize = 4;
    /// Inputs and samples per block of [`block_by_samples`]. Large, so a panel's weights are
    /// splatted and a tile's outputs stored as few times as can be (measured: 256 × 192 ran at
    /// 33 GFLOP/s, 1024 × 384 at 38 in wasmtime; larger blocks gained nothing). Their buffers are
    /// 1.5 MiB of inputs and 128 KiB of splatted weights.
    const KC_SAMPLES: usize = 1024;
    const MC_SAMPLES: usize = 384;

    /// The blocked multiply with samples along the vectors: a tile of 8 samples × 4 columns keeps
    /// each input of 4 samples in one vector and multiplies it by a weight splatted to all lanes.
    ///
    /// Why: the input-broadcast tile splats one input per sample per step, and engines lower a
    /// splat to a scalar load, a move and a shuffle on the vector ports the multiplies need;
    /// here each weight is splatted once per row block. The tile is small because Cranelift
    /// issues a step's loads before its arithmetic: 8 accumulators, 2 inputs and 4 weights fit
    /// in 16 registers with the product (4 samples × 8 columns spilled two accumulators). The products are added in the same
    /// order as every other tile's, so results are the same, bit for bit.
    ///
    /// # Safety
    /// As [`Dense::block`]: `out` holds the `rows × outputs` output and `block` of it is ours.
    pub(super) unsafe fn block_by_samples(
        dense: &Dense,
        x: &[f32],
        out: Out,
        block: Block,
        relu: bool,
    ) {
        let (k, n) = (dense.inputs, dense.outputs);
        let zero = f32x4_splat(0.0);
        // Inputs of one row block and input block, 4 samples to a vector: [group][input], with
        // an even count of groups (the last one zeros where samples run out).
        let (kc, mc) = (KC_SAMPLES.min(k), MC_SAMPLES.min(block.rows.len()));
        let mut inputs: Vec<v128> = Vec::with_capacity(mc.div_ceil(2 * LANES) * 2 * kc);
        // One panel's weights of one input block, splatted: [half of the panel][input][column].
        let mut weights = [vec![zero; kc * COLUMNS], vec![zero; kc * COLUMNS]];
        for row0 in block.rows.clone().step_by(MC_SAMPLES) {
            let row_end = block.rows.end.min(row0 + MC_SAMPLES);
            let groups = (row_end - row0).div_ceil(2 * LANES) * 2;
            for k0 in (0..k).step_by(KC_SAMPLES) {
                let kb = KC_SAMPLES.min(k - k0);
                inputs.clear();
                for group in 0..groups {
                    let r = row0 + group * LANES;
                    let sample =
                        |lane: usize| (r + lane < row_end).then(|| &x[(r + lane) * k + k0..][..kb]);
                    let lanes = [sample(0), sample(1), sample(2), sample(3)];
                    inputs.extend((0..kb).map(|i| {
                        let at = |lane: usize| lanes[lane].map_or(0.0, |s| s[i]);
                        f32x4(at(0), at(1), at(2), at(3))
                    }));
                }
                for col0 in block.cols.clone().step_by(PANEL) {
                    let panel = &dense.packed[(col0 / PANEL) * k * PANEL + k0 * PANEL..];
                    for (i, row) in panel[..kb * PANEL].chunks_exact(COLUMNS).enumerate() {
                        // SAFETY: `row` holds 4 f32.
                        let four = unsafe { v128_load(row.as_ptr().cast()) };
                        weights[i % 2][i / 2 * COLUMNS..][..COLUMNS].copy_from_slice(&[
                            i32x4_shuffle::<0, 0, 0, 0>(four, four),
                            i32x4_shuffle::<1, 1, 1, 1>(four, four),
                            i32x4_shuffle::<2, 2, 2, 2>(four, four),
                            i32x4_shuffle::<3, 3, 3, 3>(four, four),
                        ]);
                    }
                    for (half, weights) in weights.iter().enumerate() {
                        let first_col = col0 + half * COLUMNS;
                        if first_col >= block.cols.end {
                            break;
                        }
                        let cols = COLUMNS.min(block.cols.end - first_col);
                        for pair in (0..groups).step_by(2) {
                            let r = row0 + pair * LANES;
                            let tile = SampleTile {
                                // SAFETY: rows r.. and columns first_col.. lie in `block`, ours.
                                at: unsafe { out.0.add(r * n + first_col) },
                                stride: n,
                                rows: (2 * LANES).min(row_end - r),
                                cols,
                            };
                            let bias = &dense.bias[first_col..][..COLUMNS];
                            // SAFETY: the tile lies in `block`, ours.
                            let mut acc = unsafe { tile.load((k0 == 0).then_some(bias)) };
                            products(
                                &inputs[pair * kb..][..kb],
                                &inputs[(pair + 1) * kb..][..kb],
                                &weights[..kb * COLUMNS],
                                &mut acc,
                            );
                            // SAFETY: as above.
                            unsafe { tile.store(acc, relu && k0 + kb == k) };
                        }
                    }
                }
            }
        }
    }

    /// Where one [`block_by_samples`] tile lives in the output: up to 8 rows of up to 4 columns.
    struct SampleTile {
        at: *mut f32,
        stride: usize,
        rows: usize,
        cols: usize,
    }

    impl SampleTile {
        fn full(&self) -> bool {
            self.rows == 2 * LANES && self.cols == COLUMNS
        }

        /// Row `row`'s first column.
        ///
        /// # Safety
        /// `row < self.rows`, and the tile is in the output.
        unsafe fn row(&self, row: usize) -> *mut f32 {
            // SAFETY: the caller's.
            unsafe { self.at.add(row * self.stride) }
        }

        /// The accumulators, column by column, four samples to a vector: the bias of each
        /// column (the first input block), else what the earlier blocks left in the output.
        ///
        /// # Safety
        /// The tile's rows and columns are the caller's to read.
        unsafe fn load(&self, bias: Option<&[f32]>) -> [[v128; COLUMNS]; 2] {
            [0, 1].map(|g| match bias {
                Some(bias) => [0, 1, 2, 3].map(|c| f32x4_splat(bias[c])),
                // SAFETY: a full tile owns 4 columns of each of its 8 rows.
                None if self.full() => transpose(
                    [0, 1, 2, 3]
                        .map(|lane| unsafe { v128_load(self.row(g * LANES + lane).cast()) }),
                ),
                None => [0, 1, 2, 3].map(|c| {
                    let was = |lane: usize| match g * LANES + lane < self.rows && c < self.cols {
                        // SAFETY: inside the tile.
                        true => unsafe { *self.row(g * LANES + lane).add(c) },
                        false => 0.0,
                    };
                    f32x4(was(0), was(1), was(2), was(3))
                }),
            })
        }

        /// Writes the accumulators back (through `max(·, 0)` when `relu`), rows and columns
        /// outside the tile left alone.
        ///
        /// # Safety
        /// The tile's rows and columns are the caller's to write.
        unsafe fn store(&self, acc: [[v128; COLUMNS]; 2], relu: bool) {
            let zero = f32x4_splat(0.0);
            for (g, acc) in acc.into_iter().enumerate() {
                let acc = match relu {
                    true => acc.map(|value| f32x4_pmax(value, zero)),
                    false => acc,
                };
                if self.full() {
                    for (lane, value) in transpose(acc).into_iter().enumerate() {
                        // SAFETY: a full tile owns 4 columns of each of its 8 rows.
                        unsafe { v128_store(self.row(g * LANES + lane).cast(), value) };
                    }
                    continue;
                }
                for (c, value) in acc.into_iter().enumerate().take(self.cols) {
                    let lanes = [
                        f32x4_extract_lane::<0>(value),
                        f32x4_extract_lane::<1>(value),
                        f32x4_extract_lane::<2>(value),
                        f32x4_extract_lane::<3>(value),
                    ];
                    for (lane, value) in lanes.into_iter().enumerate() {
                        if g * LANES + lane < self.rows {
                            // SAFETY: inside the tile.
                            unsafe { *self.row(g * LANES + lane).add(c) = value };
                        }
                    }
                }
            }
        }
    }

    /// Rows of a 4 × 4 block become its columns (and back).
    fn transpose([r0, r1, r2, r3]: [v128; 4]) -> [v128; 4] {
        let t0 = i32x4_shuffle::<0, 4, 1, 5>(r0, r1);
        let t1 = i32x4_shuffle::<2, 6, 3, 7>(r0, r1);
        let t2 = i32x4_shuffle::<0, 4, 1, 5>(r2, r3);
        let t3 = i32x4_shuffle::<2, 6, 3, 7>(r2, r3);
        [
            i32x4_shuffle::<0, 1, 4, 5>(t0, t2),
            i32x4_shuffle::<2, 3, 6, 7>(t0, t2),
            i32x4_shuffle::<0, 1, 4, 5>(t1, t3),
            i32x4_shuffle::<2, 3, 6, 7>(t1, t3),
        ]
    }

    /// Adds each input's products with its splatted weights to the accumulators, input by input,
    /// for two vectors of samples. Out of line, so the register allocator sees only this loop.
    #[inline(never)]
    fn products(first: &[v128], second: &[v128], weights: &[v128], acc: &mut [[v128; COLUMNS]; 2]) {
        let [mut a, mut b] = *acc;
        for ((&x0, &x1), w) in first.iter().zip(second).zip(weights.chunks_exact(COLUMNS)) {
            for c in 0..COLUMNS {
                a[c] = madd(x0, w[c], a[c]);
                b[c] = madd(x1, w[c], b[c]);
            }
        }
        *acc = [a, b];
    }

    /// # Safety
    /// The tile's ranges were checked by [`Tile::run`].
    pub(super) unsafe fn tile(tile: &Tile, out: *mut f32, out_stride: usize) {
        // SAFETY: forwarded.
        unsafe { for_rows!(tile.rows, 6, rows(tile, out, out_stride)) }
    }

    #[inline(always)]
    fn madd(a: v128, b: v128, acc: v128) -> v128 {
        #[cfg(target_feature = "relaxed-simd")]
        return f32x4_relaxed_madd(a, b, acc);
        #[cfg(not(target_feature = "relaxed-simd"))]
        return f32x4_add(acc, f32x4_mul(a, b));
    }

    unsafe fn rows<const R: usize>(tile: &Tile, out: *mut f32, out_stride: usize) {
        let (x, w) = (tile.x.as_ptr(), tile.weights.as_ptr());
        // SAFETY (whole body): every offset is inside the ranges `Tile::run` checked, and wasm
        // loads and stores need no alignment.
        unsafe {
            let mut acc = [[f32x4_splat(0.0); 2]; R];
            for (r, acc) in acc.iter_mut().enumerate() {
                let from = match tile.init {
                    Init::Bias(bias) => bias.as_ptr(),
                    Init::Accumulate => out.add(r * out_stride),
                };
                *acc = [v128_load(from.cast()), v128_load(from.add(4).cast())];
            }
            for kk in 0..tile.kb {
                let b0 = v128_load(w.add(kk * PANEL).cast());
                let b1 = v128_load(w.add(kk * PANEL + 4).cast());
                for (r, acc) in acc.iter_mut().enumerate() {
                    let a = f32x4_splat(*x.add(r * tile.x_stride + kk));
                    acc[0] = madd(a, b0, acc[0]);
                    acc[1] = madd(a, b1, acc[1]);
                }
            }
            let zero = f32x4_splat(0.0);
            for (r, acc) in acc.iter().enumerate() {
                let to = out.add(r * out_stride);
                for (half, &value) in acc.iter().enumerate() {
                    let value = if tile.relu {
                        f32x4_pmax(value, zero)
                    } else {
                        value
                    };
                    v128_store(to.add(half * 4).cast(), value);
                }
            }
        }
    }
}

mod portable {
    use super::{Init, PANEL, Tile};

    /// # Safety
    /// As [`Tile::run`].
    pub(super) unsafe fn tile(tile: &Tile, out: *mut f32, out_stride: usize) {
        // SAFETY: forwarded.
        unsafe { for_rows!(tile.rows, 4, rows(tile, out, out_stride)) }
    }

    unsafe fn rows<const R: usize>(tile: &Tile, out: *mut f32, out_stride: usize) {
        // SAFETY: the caller owns `PANEL` values at each row's start.
        let row =
            |r: usize| unsafe { std::slice::from_raw_parts_mut(out.add(r * out_stride), PANEL) };
        let mut acc = [[0.0f32; PANEL]; R];
        for (r, acc) in acc.iter_mut().enumerate() {
            match tile.init {
                Init::Bias(bias) => acc.copy_from_slice(&bias[..PANEL]),
                Init::Accumulate => acc.copy_from_slice(row(r)),
            }
        }
        for (kk, b) in tile.weights[..tile.kb * PANEL]
            .chunks_exact(PANEL)
            .enumerate()
        {
            for (r, acc) in acc.iter_mut().enumerate() {
                let a = tile.x[r * tile.x_stride + kk];
                for (acc, &b) in acc.iter_mut().zip(b) {
                    *acc += a * b;
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (to, &value) in row(r).iter_mut().zip(acc) {
                *to = if tile.relu { value.max(0.0) } else { value };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-sample loop the tiles must reproduce: bias, then products in input order.
    fn reference(x: &[f32], w: &[f32], b: &[f32], relu: bool, fused: bool) -> Vec<f32> {
        let (n, k) = (b.len(), w.len() / b.len());
        let mut y = Vec::new();
        for sample in x.chunks_exact(k) {
            for j in 0..n {
                let mut acc = b[j];
                for (i, &xi) in sample.iter().enumerate() {
                    acc = if fused {
                        xi.mul_add(w[i * n + j], acc)
                    } else {
                        acc + xi * w[i * n + j]
                    };
                }
                y.push(if relu { acc.max(0.0) } else { acc });
            }
        }
        y
    }

    /// Deterministic values in [-1, 1) with a spread of exponents, so rounding differences show.
    fn values(count: usize, seed: u32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..count)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 8) as f32 / (1u32 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// Every instruction set this machine runs: on an AVX-512 CPU, the AVX2 tile too.
    fn isas() -> Vec<Isa> {
        let mut isas = vec![Isa::Portable];
        if Isa::detect() == Isa::Avx512 {
            isas.push(Isa::Avx2Fma);
        }
        if Isa::detect() != Isa::Portable {
            isas.push(Isa::detect());
        }
        isas
    }

    #[test]
    fn every_shape_matches_the_per_sample_loop_bit_for_bit() {
        // Edges of every block: rows around the tile heights and MC, inputs around KC, outputs
        // around the panel and tile widths.
        for &(rows, k, n) in &[
            (1, 1, 1),
            (1, 64, 10),
            (5, 3, 17),
            (7, 300, 9),
            (13, 257, 33),
            (24, 257, 32),
            (49, 64, 24),
            (50, 520, 70),
            // WASM's sample-vector tiles: partial pairs, half panels, more than one input block.
            (67, 30, 13),
            (261, 1030, 9),
        ] {
            let (x, w, b) = (values(rows * k, 1), values(k * n, 2), values(n, 3));
            let dense = Dense::new(&w, &b).unwrap();
            for isa in isas() {
                for relu in [false, true] {
                    let mut y = vec![f32::NAN; rows * n];
                    assert_eq!(dense.forward(isa, &x, &mut y, relu, 1), 1);
                    let same = |fused| {
                        let expected = reference(&x, &w, &b, relu, fused);
                        y.iter()
                            .zip(&expected)
                            .all(|(a, e)| a.to_bits() == e.to_bits())
                    };
                    let matches = match isa {
                        Isa::Avx2Fma | Isa::Avx512 => same(true),
                        // The engine fuses where its CPU can: either way, every product alike.
                        Isa::RelaxedSimd => same(true) || same(false),
                        Isa::Simd128 | Isa::Portable => same(false),
                    };
                    assert!(matches, "{isa:?} {rows}×{k}×{n} relu={relu}");
                }
            }
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn threads_change_nothing_but_the_time() {
        // Many samples split by rows, few by columns (with a narrower last column block).
        for (rows, k, n) in [(200, 130, 90), (3, 520, 1100)] {
            let (x, w, b) = (values(rows * k, 4), values(k * n, 5), values(n, 6));
            let dense = Dense::new(&w, &b).unwrap();
            let isa = Isa::detect();
            let mut one = vec![0.0; rows * n];
            let mut many = vec![0.0; rows * n];
            dense.forward(isa, &x, &mut one, true, 1);
            let used = dense.forward(isa, &x, &mut many, true, 3);
            assert_eq!(used, 3, "{rows}×{k}×{n} is enough work for three threads");
            assert_eq!(one, many, "{rows}×{k}×{n}");
        }
    }

    #[test]
    fn small_work_stays_on_one_thread() {
        let dense = Dense::new(&values(64 * 10, 7), &values(10, 8)).unwrap();
        let mut y = vec![0.0; 10];
        assert_eq!(
            dense.forward(Isa::detect(), &values(64, 9), &mut y, false, 8),
            1
        );
    }

    #[test]
    fn mismatched_weights_are_refused() {
        assert!(Dense::new(&[1.0; 5], &[0.0; 2]).is_none());
        assert!(Dense::new(&[], &[]).is_none());
        assert!(Dense::from_packed(3, 2, vec![0.0; 47], &[0.0; 2]).is_none());
        assert!(Dense::from_packed(3, 2, vec![0.0; 48], &[0.0; 3]).is_none());
    }

    #[test]
    fn weights_packed_ahead_of_time_run_the_same() {
        let (rows, k, n) = (5, 19, 21);
        let (x, w, b) = (values(rows * k, 10), values(k * n, 11), values(n, 12));
        let packed_now = Dense::new(&w, &b).unwrap();
        assert_eq!(packed_now.packed().len(), Dense::packed_len(k, n));
        let stored = Dense::from_packed(k, n, packed_now.packed().to_vec(), &b).unwrap();
        let (mut one, mut other) = (vec![0.0; rows * n], vec![0.0; rows * n]);
        packed_now.forward(Isa::detect(), &x, &mut one, false, 1);
        stored.forward(Isa::detect(), &x, &mut other, false, 1);
        assert_eq!(one, other);
    }
}
