//! Running kernels in wasmtime, with a memory cap and a time cap so a hostile or broken kernel
//! fails the build with a message instead of hanging or exhausting it.

use crate::abi;
use crate::measure::runner::KernelRunner;
use crate::measure::stats::clock_read_cost;
use anyhow::{Context, Result, anyhow, bail};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::{
    Config, Engine, ExternType, Instance, InstancePre, Linker, Memory, Module, OptLevel, Store,
    StoreLimits, StoreLimitsBuilder, Strategy, TypedFunc, Val,
};

/// Largest linear memory a kernel may grow to while measured.
pub const MEMORY_LIMIT_BYTES: usize = 1 << 30;
/// How long one call into a kernel may run before it is interrupted, unless configured otherwise.
pub const DEFAULT_CALL_TIME_LIMIT: Duration = Duration::from_secs(20);
const EPOCH_TICK: Duration = Duration::from_millis(10);
const WASI_MODULE: &str = "wasi_snapshot_preview1";
/// WASI's "function not supported" errno.
const WASI_ENOSYS: i32 = 52;

/// A wasmtime engine configured for running kernels.
///
/// A capped host interrupts any call that runs longer than its limit (epoch interruption,
/// driven by a ticker thread). An uncapped host has no such checks: they sit in every loop header
/// and their out-of-line slow path forces Cranelift to spill SIMD accumulators, which made the
/// digits MLP 2.5x slower. Timing therefore runs uncapped, only on inputs a capped host has
/// already run to completion, under a process watchdog ([`crate::measure::timing`]).
pub struct WasmHost {
    engine: Engine,
    ticker_stop: Option<Arc<AtomicBool>>,
    call_time_limit: Option<Duration>,
}

impl WasmHost {
    /// A capped host with [`DEFAULT_CALL_TIME_LIMIT`].
    pub fn new() -> Result<Self> {
        Self::with_call_time_limit(DEFAULT_CALL_TIME_LIMIT)
    }

    pub fn with_call_time_limit(call_time_limit: Duration) -> Result<Self> {
        let engine = Self::engine(true)?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        let (ticking_engine, stop) = (engine.clone(), ticker_stop.clone());
        std::thread::Builder::new()
            .name("wpi-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticking_engine.increment_epoch();
                }
            })
            .context("starting the epoch ticker thread")?;
        Ok(Self {
            engine,
            ticker_stop: Some(ticker_stop),
            call_time_limit: Some(call_time_limit),
        })
    }

    /// A host without interruption checks, for timing code that already ran under a capped host.
    pub fn uncapped() -> Result<Self> {
        Ok(Self {
            engine: Self::engine(false)?,
            ticker_stop: None,
            call_time_limit: None,
        })
    }

    fn engine(epoch_interruption: bool) -> Result<Engine> {
        let mut config = Config::new();
        config
            .strategy(Strategy::Cranelift)
            .cranelift_opt_level(OptLevel::Speed)
            .epoch_interruption(epoch_interruption);
        Engine::new(&config).map_err(|e| anyhow!("configuring wasmtime: {e:#}"))
    }

    /// Describes how timings were taken, for the manifest.
    pub fn timing_description() -> String {
        format!(
            "wasmtime {} (cranelift, opt-level speed; no epoch checks while timing)",
            crate::tools::WASMTIME_VERSION
        )
    }

    pub fn compile(&self, wasm: &[u8]) -> Result<Module> {
        Module::new(&self.engine, wasm)
            .map_err(|e| anyhow!("wasmtime could not compile the module: {e:#}"))
    }

    /// Serializes a compiled module, as a host would cache it.
    pub fn precompile(&self, module: &Module) -> Result<Vec<u8>> {
        module
            .serialize()
            .map_err(|e| anyhow!("serializing the compiled module: {e:#}"))
    }

    /// Loads a module precompiled by [`Self::precompile`] with this same engine.
    pub fn deserialize(&self, precompiled: &[u8]) -> Result<Module> {
        // SAFETY: the bytes come from `precompile` on an engine with identical configuration.
        unsafe { Module::deserialize(&self.engine, precompiled) }
            .map_err(|e| anyhow!("deserializing the precompiled module: {e:#}"))
    }

    /// Links the module once; instantiating the result is the per-instance cost a host pays.
    ///
    /// Kernels built for WASI (wasm32-wasip1) import a few functions that std links in (stderr,
    /// environment, exit). The sandbox denies them all: calls return `ENOSYS`, and `proc_exit`
    /// (no result) traps. Any other import is an error: ABI v1 kernels are self-contained.
    pub fn prepare(&self, module: &Module) -> Result<InstancePre<StoreLimits>> {
        self.prepare_with(module, ForeignImports::Refuse)
    }

    fn prepare_with(
        &self,
        module: &Module,
        foreign: ForeignImports,
    ) -> Result<InstancePre<StoreLimits>> {
        let mut linker: Linker<StoreLimits> = Linker::new(&self.engine);
        for import in module.imports() {
            let ty = match (import.ty(), import.module(), foreign) {
                (ExternType::Func(ty), WASI_MODULE, _) => ty,
                (ExternType::Func(ty), _, ForeignImports::Trap) => {
                    let import_name = format!("{}.{}", import.module(), import.name());
                    linker
                        .func_new(import.module(), import.name(), ty, move |_, _, _| {
                            Err(wasmtime::Error::new(ForeignImportCalled {
                                import: import_name.clone(),
                            }))
                        })
                        .map_err(|e| anyhow!("stubbing `{}`: {e:#}", import.name()))?;
                    continue;
                }
                _ => bail!(
                    "the kernel imports `{}.{}`; ABI v1 kernels may import nothing but WASI",
                    import.module(),
                    import.name()
                ),
            };
            let name = import.name().to_string();
            linker
                .func_new(
                    WASI_MODULE,
                    import.name(),
                    ty,
                    move |_, _, results| match results.first_mut() {
                        Some(errno) => {
                            *errno = Val::I32(WASI_ENOSYS);
                            Ok(())
                        }
                        None => Err(wasmtime::Error::msg(format!(
                            "the kernel called WASI `{name}`, which the measurement sandbox denies"
                        ))),
                    },
                )
                .map_err(|e| anyhow!("providing WASI `{}`: {e:#}", import.name()))?;
        }
        linker
            .instantiate_pre(module)
            .map_err(|e| anyhow!("linking the module: {e:#}"))
    }

    pub fn instantiate(&self, pre: &InstancePre<StoreLimits>) -> Result<WasmKernel> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(MEMORY_LIMIT_BYTES)
            .build();
        let mut store = Store::new(&self.engine, limits);
        store.limiter(|limits| limits);
        let limit = self.call_time_limit;
        if limit.is_some() {
            store.epoch_deadline_trap();
            arm_deadline(&mut store, limit);
        }
        let instance = pre
            .instantiate(&mut store)
            .map_err(|e| trap_context(e, "instantiating the module", limit))?;
        WasmKernel::new(store, instance, limit)
    }

    /// Compiles, links and instantiates in one go, for callers that time none of it.
    pub fn load(&self, wasm: &[u8]) -> Result<WasmKernel> {
        let module = self.compile(wasm)?;
        self.instantiate(&self.prepare(&module)?)
    }

    /// [`Self::load`] for the module as cargo built it, before shaking: host glue that a crate
    /// links but inference never calls (wasm-bindgen's) gets stubs that trap when called.
    pub fn load_unshaken(&self, wasm: &[u8]) -> Result<WasmKernel> {
        let module = self.compile(wasm)?;
        self.instantiate(&self.prepare_with(&module, ForeignImports::Trap)?)
    }
}

impl Drop for WasmHost {
    fn drop(&mut self) {
        if let Some(stop) = &self.ticker_stop {
            stop.store(true, Ordering::Relaxed);
        }
    }
}

/// What linking does with a function import from outside WASI.
#[derive(Clone, Copy)]
enum ForeignImports {
    Refuse,
    Trap,
}

/// Arms the store's deadline for one call, when the host is capped.
fn arm_deadline(store: &mut Store<StoreLimits>, limit: Option<Duration>) {
    if let Some(limit) = limit {
        store.set_epoch_deadline((limit.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64);
    }
}

/// A kernel's call to a host import that [`WasmHost::load_unshaken`] linked as a trap; it stays
/// in the error chain for callers to find.
#[derive(Debug, Clone)]
pub struct ForeignImportCalled {
    /// `module.name`.
    pub import: String,
}

impl std::fmt::Display for ForeignImportCalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the kernel called `{}`, a host import the shipped module does not have",
            self.import
        )
    }
}

impl std::error::Error for ForeignImportCalled {}

impl ForeignImportCalled {
    /// The call in `error`'s chain, if it stopped at one.
    pub fn in_chain(error: &anyhow::Error) -> Option<&Self> {
        error.chain().find_map(|cause| cause.downcast_ref::<Self>())
    }
}

fn trap_context(error: wasmtime::Error, step: &str, limit: Option<Duration>) -> anyhow::Error {
    if let Some(called) = error.downcast_ref::<ForeignImportCalled>() {
        return anyhow::Error::new(called.clone()).context(step.to_string());
    }
    let text = format!("{error:#}");
    if let (true, Some(limit)) = (text.contains("interrupt"), limit) {
        anyhow!("{step}: the kernel ran longer than {limit:?} and was stopped")
    } else {
        anyhow!("{step}: {text}")
    }
}

/// An instantiated kernel with host buffers allocated through `wpi_alloc`.
pub struct WasmKernel {
    store: Store<StoreLimits>,
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
    free: TypedFunc<(i32, i32), ()>,
    infer: TypedFunc<(i32, i32, i32, i32), i32>,
    init: Option<TypedFunc<(), i32>>,
    input: Buffer,
    output: Buffer,
    call_time_limit: Option<Duration>,
    /// Set by [`KernelRunner::split_boundary`]: the last call's copy in, `wpi_infer` and copy
    /// out, in ns (the clock reads cost a little, so only calls made to split are timed so).
    boundary: Option<Option<[u64; 3]>>,
}

#[derive(Clone, Copy, Default)]
struct Buffer {
    ptr: i32,
    cap: usize,
}

impl WasmKernel {
    fn new(
        mut store: Store<StoreLimits>,
        instance: Instance,
        call_time_limit: Option<Duration>,
    ) -> Result<Self> {
        let memory = instance
            .get_memory(&mut store, abi::MEMORY_EXPORT)
            .context("the module exports no `memory`")?;
        macro_rules! func {
            ($name:expr) => {
                instance
                    .get_typed_func(&mut store, $name)
                    .map_err(|e| anyhow!("export `{}`: {e:#}", $name))?
            };
        }
        let version: TypedFunc<(), i32> = func!(abi::ABI_VERSION_EXPORT);
        let alloc = func!(abi::ALLOC_EXPORT);
        let free = func!(abi::FREE_EXPORT);
        let infer = func!(abi::INFER_EXPORT);
        let init = instance.get_typed_func(&mut store, abi::INIT_EXPORT).ok();
        let got = version
            .call(&mut store, ())
            .map_err(|e| trap_context(e, "calling wpi_abi_version", call_time_limit))?;
        if got as u32 != abi::ABI_VERSION {
            bail!(
                "wpi_abi_version returned {got}, expected {}",
                abi::ABI_VERSION
            );
        }
        Ok(Self {
            store,
            memory,
            alloc,
            free,
            infer,
            init,
            input: Buffer::default(),
            output: Buffer::default(),
            call_time_limit,
            boundary: None,
        })
    }

    /// Describes a failed call, with the memory the kernel held: a kernel that hit the memory cap
    /// traps inside its allocator, and the size says why.
    fn trapped(&self, error: wasmtime::Error, step: &str) -> anyhow::Error {
        let memory = self.memory.data_size(&self.store) as u64;
        trap_context(error, step, self.call_time_limit).context(format!(
            "{step} failed with {} of linear memory in use (the sandbox allows {})",
            crate::units::format_bytes(memory),
            crate::units::format_bytes(MEMORY_LIMIT_BYTES as u64)
        ))
    }

    /// Makes `buffer` hold at least `len` bytes, reallocating through the kernel's allocator.
    fn reserve(&mut self, which: fn(&mut Self) -> &mut Buffer, len: usize) -> Result<Buffer> {
        let current = *which(self);
        if current.cap >= len && current.ptr != 0 {
            return Ok(current);
        }
        if current.ptr != 0 {
            self.free
                .call(&mut self.store, (current.ptr, current.cap as i32))
                .map_err(|e| self.trapped(e, "calling wpi_free"))?;
        }
        let len_i32 = i32::try_from(len).context("batch does not fit a 32-bit wasm memory")?;
        let ptr = self
            .alloc
            .call(&mut self.store, len_i32)
            .map_err(|e| self.trapped(e, "calling wpi_alloc"))?;
        if ptr == 0 {
            bail!("wpi_alloc({len}) returned null");
        }
        let buffer = Buffer { ptr, cap: len };
        *which(self) = buffer;
        Ok(buffer)
    }
}

impl KernelRunner for WasmKernel {
    fn init(&mut self) -> Result<()> {
        let Some(init) = &self.init else {
            return Ok(());
        };
        arm_deadline(&mut self.store, self.call_time_limit);
        let code = init
            .call(&mut self.store, ())
            .map_err(|e| self.trapped(e, "calling wpi_init"))?;
        abi::check_init(code)
    }

    fn infer_into(&mut self, input: &[u8], output: &mut [u8]) -> Result<()> {
        let split = self.boundary.is_some();
        let clock = || split.then(std::time::Instant::now);
        let started = clock();
        let input_buffer = self.reserve(|k| &mut k.input, input.len())?;
        let output_buffer = self.reserve(|k| &mut k.output, output.len())?;
        self.memory
            .write(&mut self.store, input_buffer.ptr as u32 as usize, input)
            .context("wpi_alloc returned a buffer outside linear memory")?;
        let copied_in = clock();
        arm_deadline(&mut self.store, self.call_time_limit);
        let written = self
            .infer
            .call(
                &mut self.store,
                (
                    input_buffer.ptr,
                    input.len() as i32,
                    output_buffer.ptr,
                    output_buffer.cap as i32,
                ),
            )
            .map_err(|e| self.trapped(e, "calling wpi_infer"))?;
        let computed = clock();
        abi::check_written(written as i64, output.len(), output_buffer.cap)?;
        self.memory
            .read(&self.store, output_buffer.ptr as u32 as usize, output)
            .context("wpi_alloc returned a buffer outside linear memory")?;
        if let (Some(started), Some(copied_in), Some(computed)) = (started, copied_in, computed) {
            // Each part spans one clock read too, which is most of a 64-byte copy.
            let ns = |d: Duration| d.saturating_sub(clock_read_cost()).as_nanos() as u64;
            self.boundary = Some(Some([
                ns(copied_in - started),
                ns(computed - copied_in),
                ns(computed.elapsed()),
            ]));
        }
        Ok(())
    }

    fn split_boundary(&mut self, on: bool) -> bool {
        self.boundary = on.then_some(None);
        true
    }

    fn last_call_ns(&mut self) -> Option<[u64; 3]> {
        self.boundary.flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Doubles each f32 of the input; buffers come from a bump allocator.
    const DOUBLER: &str = r#"(module
        (memory (export "memory") 1)
        (global $next (mut i32) (i32.const 1024))
        (func (export "wpi_abi_version") (result i32) i32.const 1)
        (func (export "wpi_alloc") (param $len i32) (result i32)
          global.get $next
          global.get $next local.get $len i32.add global.set $next)
        (func (export "wpi_free") (param i32 i32))
        (func (export "wpi_infer") (param $in i32) (param $len i32) (param $out i32) (param $cap i32) (result i32)
          (local $i i32)
          (block $done (loop $next
            local.get $i local.get $len i32.ge_u br_if $done
            local.get $out local.get $i i32.add
            local.get $in local.get $i i32.add f32.load
            f32.const 2 f32.mul f32.store
            local.get $i i32.const 4 i32.add local.set $i
            br $next))
          local.get $len))"#;

    #[test]
    fn runs_a_hand_written_kernel() {
        let host = WasmHost::new().unwrap();
        let mut kernel = host.load(&wat::parse_str(DOUBLER).unwrap()).unwrap();
        kernel.init().unwrap();
        let input: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let output = kernel.infer(&input, 2, 4).unwrap();
        assert_eq!(crate::manifest::Dtype::F32.decode(&output), vec![3.0, -4.0]);
    }

    #[test]
    fn a_looping_kernel_is_stopped() {
        let looping = DOUBLER.replace(
            "(local $i i32)",
            "(local $i i32) (loop $forever br $forever)",
        );
        let host = WasmHost::with_call_time_limit(Duration::from_millis(50)).unwrap();
        let mut kernel = host.load(&wat::parse_str(looping).unwrap()).unwrap();
        let err = kernel.infer(&1f32.to_le_bytes(), 1, 4).unwrap_err();
        assert!(
            format!("{err:#}").contains("ran longer than 50ms"),
            "{err:#}"
        );
    }

    #[test]
    fn only_wasi_imports_are_provided_and_they_are_denied() {
        let host = WasmHost::new().unwrap();
        let env_import = DOUBLER.replace(
            "(memory",
            "(import \"env\" \"log\" (func (param i32))) (memory",
        );
        let err = host
            .load(&wat::parse_str(env_import).unwrap())
            .err()
            .unwrap();
        assert!(err.to_string().contains("imports `env.log`"), "{err}");

        let calls_wasi = DOUBLER
            .replace("(memory", "(import \"wasi_snapshot_preview1\" \"fd_write\" (func $fd_write (param i32 i32 i32 i32) (result i32))) (memory")
            .replace("(func (export \"wpi_abi_version\") (result i32) i32.const 1)", "(func (export \"wpi_abi_version\") (result i32) i32.const 0 i32.const 0 i32.const 0 i32.const 0 call $fd_write i32.const 51 i32.sub)");
        let kernel = host.load(&wat::parse_str(calls_wasi).unwrap()).unwrap();
        // fd_write answered ENOSYS (52), so wpi_abi_version returned 52 - 51 = 1 and loading worked.
        drop(kernel);
    }

    #[test]
    fn an_unshaken_module_links_with_foreign_imports_that_trap_when_called() {
        let host = WasmHost::new().unwrap();
        let glue = DOUBLER.replace(
            "(memory",
            "(import \"__wbindgen_placeholder__\" \"__wbindgen_describe\" (func $describe (param i32))) \
             (func (export \"__wbindgen_describe_x\") i32.const 0 call $describe) (memory",
        );
        let wasm = wat::parse_str(&glue).unwrap();
        let mut kernel = host.load_unshaken(&wasm).unwrap();
        kernel.init().unwrap();
        assert_eq!(
            kernel.infer(&1f32.to_le_bytes(), 1, 4).unwrap(),
            2f32.to_le_bytes()
        );

        let calls_glue = glue.replace(
            "(local $i i32)",
            "(local $i i32) i32.const 0 call $describe",
        );
        let mut kernel = host
            .load_unshaken(&wat::parse_str(calls_glue).unwrap())
            .unwrap();
        let err = kernel.infer(&1f32.to_le_bytes(), 1, 4).unwrap_err();
        assert!(
            format!("{err:#}").contains("called `__wbindgen_placeholder__.__wbindgen_describe`"),
            "{err:#}"
        );
        assert_eq!(
            ForeignImportCalled::in_chain(&err).map(|called| called.import.as_str()),
            Some("__wbindgen_placeholder__.__wbindgen_describe")
        );
        assert!(
            host.load(&wasm).is_err(),
            "the shipped path still refuses them"
        );
    }

    #[test]
    fn wrong_written_length_is_reported() {
        let lying = DOUBLER.replace("local.get $len))", "local.get $len i32.const 4 i32.add))");
        let host = WasmHost::new().unwrap();
        let mut kernel = host.load(&wat::parse_str(lying).unwrap()).unwrap();
        let err = kernel.infer(&1f32.to_le_bytes(), 1, 4).unwrap_err();
        assert!(err.to_string().contains("more than its"), "{err}");
    }
}
