//! `just bench-gemm`: the helper crate's dense layers (`wasmpack_infer_kernel::gemm`) against the
//! per-sample loop they replaced and the two GEMM crates a kernel author would reach for
//! (`matrixmultiply`, `gemm`), on examples/mlp-large's layers (256-1024-1024-1024-16) at the
//! batch sizes the tool measures, one thread and every core, as GFLOP/s and as a fraction of
//! this core's FMA peak (measured first, by a loop of independent FMAs).
//!
//! Goals (printed as met / not met): ours ≥ 50 % of the single-core peak on one thread at batch
//! ≥ 256; ours on every core ≥ 0.8 × cores × ours on one at batch 4096.

use std::hint::black_box;
use std::time::{Duration, Instant};
use wasmpack_infer_kernel::cpu;
use wasmpack_infer_kernel::gemm as helper;

const WIDTHS: [usize; 5] = [256, 1024, 1024, 1024, 16];
const BATCHES: [usize; 4] = [1, 16, 256, 4096];
/// Each figure is the median of at least this many calls, and of as many as fit in `BUDGET`.
const MIN_RUNS: usize = 3;
const BUDGET: Duration = Duration::from_millis(1500);

struct Layer {
    weights: Vec<f32>,
    bias: Vec<f32>,
    dense: helper::Dense,
}

/// The contenders: each runs the whole MLP (ReLU between layers) on a batch.
#[derive(Clone, Copy, PartialEq)]
enum Contender {
    PerSampleLoop,
    Ours { threads: usize },
    Matrixmultiply,
    Gemm { threads: usize },
}

impl Contender {
    fn name(self) -> String {
        match self {
            Contender::PerSampleLoop => "per-sample loop (cpu::dense)".into(),
            Contender::Ours { .. } => "ours (gemm::Dense)".into(),
            Contender::Matrixmultiply => "matrixmultiply 0.3".into(),
            Contender::Gemm { .. } => "gemm 0.19".into(),
        }
    }

    fn threads(self) -> usize {
        match self {
            Contender::Ours { threads } | Contender::Gemm { threads } => threads,
            _ => 1,
        }
    }
}

fn main() {
    let cores = rayon::current_num_threads();
    let isa = helper::Isa::detect();
    let peak = helper::fma_peak_gflops();
    match peak {
        Some(peak) => println!("FMA peak, one core: {peak:.1} GFLOP/s"),
        None => println!("FMA peak: this CPU has no FMA; fractions of peak are not printed"),
    }
    println!("ours multiplies with {}; {cores} cores", isa.name());
    let layers = mlp_large();
    let macs_per_sample: usize = WIDTHS.windows(2).map(|w| w[0] * w[1]).sum();
    println!(
        "mlp-large {}: {:.2} M multiply-adds per sample\n",
        WIDTHS.map(|w| w.to_string()).join("-"),
        macs_per_sample as f64 / 1e6
    );
    let mut contenders = vec![
        Contender::PerSampleLoop,
        Contender::Ours { threads: 1 },
        Contender::Matrixmultiply,
        Contender::Gemm { threads: 1 },
    ];
    if cores > 1 {
        contenders.push(Contender::Ours { threads: cores });
        contenders.push(Contender::Gemm { threads: cores });
    }
    println!(
        "{:>5}  {:<30} {:>7}  {:>11}  {:>8}  {:>6}  {:>9}",
        "batch", "contender", "threads", "median", "GFLOP/s", "% peak", "max |Δ|"
    );
    let mut ours_single = Vec::new();
    let mut ours_multi = Vec::new();
    for batch in BATCHES {
        let input = values(batch * WIDTHS[0], batch as u32);
        let reference = run(Contender::Ours { threads: 1 }, &layers, isa, &input);
        for &contender in &contenders {
            let median = time(|| {
                black_box(run(contender, &layers, isa, &input));
            });
            let gflops = 2.0 * (macs_per_sample * batch) as f64 / median.as_secs_f64() / 1e9;
            let output = run(contender, &layers, isa, &input);
            let diff = output
                .iter()
                .zip(&reference)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            let of_peak = peak.map_or("-".into(), |p| format!("{:.0} %", 100.0 * gflops / p));
            println!(
                "{batch:>5}  {:<30} {:>7}  {:>11}  {gflops:>8.1}  {of_peak:>6}  {diff:>9.1e}",
                contender.name(),
                contender.threads(),
                format!("{:.1} µs", median.as_secs_f64() * 1e6),
            );
            match contender {
                Contender::Ours { threads: 1 } => ours_single.push((batch, gflops)),
                Contender::Ours { .. } => ours_multi.push((batch, gflops)),
                _ => {}
            }
        }
        println!();
    }
    goals(peak, cores, &ours_single, &ours_multi);
}

fn goals(peak: Option<f64>, cores: usize, single: &[(usize, f64)], multi: &[(usize, f64)]) {
    let verdict = |met: bool| if met { "met" } else { "NOT MET" };
    if let Some(peak) = peak {
        let worst = single
            .iter()
            .filter(|(batch, _)| *batch >= 256)
            .map(|(_, gflops)| gflops / peak)
            .fold(f64::INFINITY, f64::min);
        println!(
            "goal: one thread ≥ 50 % of peak at batch ≥ 256: worst {:.0} % — {}",
            100.0 * worst,
            verdict(worst >= 0.5)
        );
    }
    let at = |figures: &[(usize, f64)]| figures.iter().find(|(b, _)| *b == 4096).map(|f| f.1);
    match (at(single), at(multi)) {
        (Some(one), Some(all)) => {
            let scaling = all / one;
            println!(
                "goal: {cores} threads ≥ 0.8 × {cores} × one thread at batch 4096: {scaling:.2}× — {}",
                verdict(scaling >= 0.8 * cores as f64)
            );
        }
        _ => println!("goal: thread scaling not measured (one core)"),
    }
}

/// Median of as many calls as fit in the budget, after one warm-up call.
fn time(mut call: impl FnMut()) -> Duration {
    call();
    let started = Instant::now();
    let mut times = Vec::new();
    while times.len() < MIN_RUNS || (started.elapsed() < BUDGET && times.len() < 1000) {
        let start = Instant::now();
        call();
        times.push(start.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}

fn run(contender: Contender, layers: &[Layer], isa: helper::Isa, input: &[f32]) -> Vec<f32> {
    let mut current = input.to_vec();
    for (index, layer) in layers.iter().enumerate() {
        let relu = index + 1 < layers.len();
        let (k, n) = (layer.dense.inputs(), layer.dense.outputs());
        let rows = current.len() / k;
        let mut next = vec![0.0f32; rows * n];
        match contender {
            Contender::PerSampleLoop => {
                for (x, y) in current.chunks_exact(k).zip(next.chunks_exact_mut(n)) {
                    cpu::dense(x, &layer.weights, &layer.bias, y);
                    if relu {
                        cpu::relu(y);
                    }
                }
            }
            Contender::Ours { threads } => {
                layer.dense.forward(isa, &current, &mut next, relu, threads);
            }
            Contender::Matrixmultiply | Contender::Gemm { .. } => {
                for y in next.chunks_exact_mut(n) {
                    y.copy_from_slice(&layer.bias);
                }
                multiply_accumulate(contender, rows, k, n, &current, &layer.weights, &mut next);
                if relu {
                    cpu::relu(&mut next);
                }
            }
        }
        current = next;
    }
    current
}

/// `c += a · b`, all row-major: `a` rows × k, `b` k × n, `c` rows × n.
fn multiply_accumulate(
    contender: Contender,
    rows: usize,
    k: usize,
    n: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
) {
    // SAFETY: the pointers and strides describe exactly the three slices' row-major matrices.
    unsafe {
        match contender {
            Contender::Matrixmultiply => matrixmultiply::sgemm(
                rows,
                k,
                n,
                1.0,
                a.as_ptr(),
                k as isize,
                1,
                b.as_ptr(),
                n as isize,
                1,
                1.0,
                c.as_mut_ptr(),
                n as isize,
                1,
            ),
            Contender::Gemm { threads } => gemm::gemm(
                rows,
                n,
                k,
                c.as_mut_ptr(),
                1,
                n as isize,
                true,
                a.as_ptr(),
                1,
                k as isize,
                b.as_ptr(),
                1,
                n as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                if threads > 1 {
                    gemm::Parallelism::Rayon(threads)
                } else {
                    gemm::Parallelism::None
                },
            ),
            _ => unreachable!("only the GEMM crates multiply here"),
        }
    }
}

/// mlp-large's shapes with He-uniform weights, as the example builds them.
fn mlp_large() -> Vec<Layer> {
    WIDTHS
        .windows(2)
        .enumerate()
        .map(|(index, pair)| {
            let (inputs, outputs) = (pair[0], pair[1]);
            let bound = (6.0 / inputs as f32).sqrt();
            let weights: Vec<f32> = values(inputs * outputs, 10 + index as u32)
                .iter()
                .map(|v| v * bound)
                .collect();
            let bias: Vec<f32> = values(outputs, 20 + index as u32)
                .iter()
                .map(|v| v * 0.1)
                .collect();
            let dense = helper::Dense::new(&weights, &bias).expect("consistent shapes");
            Layer {
                weights,
                bias,
                dense,
            }
        })
        .collect()
}

/// Spread over [-1, 1), the same figures in every run (the classic shader hash: plenty for data
/// whose only job is to be neither zero nor regular).
fn values(count: usize, seed: u32) -> Vec<f32> {
    (0..count)
        .map(|i| {
            let h = ((i as f32 + seed as f32 * 0.618) * 12.9898).sin() * 43_758.547;
            2.0 * (h - h.floor()) - 1.0
        })
        .collect()
}
