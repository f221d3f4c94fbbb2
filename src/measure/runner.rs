//! One interface over a loaded kernel, whatever runs it, so every variant is driven and timed by
//! the same code.

use anyhow::Result;

pub trait KernelRunner {
    /// Calls `wpi_init` when the kernel exports it.
    fn init(&mut self) -> Result<()>;

    /// Runs one batch: `input` holds whole samples, `output` receives exactly the batch's output.
    fn infer_into(&mut self, input: &[u8], output: &mut [u8]) -> Result<()>;

    /// Upload, compute and download nanoseconds of the last call: what an accelerated kernel
    /// reports, or, while [`split_boundary`](Self::split_boundary) is on, the host's copy into
    /// the sandbox, the call and the copy out.
    fn last_call_ns(&mut self) -> Option<[u64; 3]> {
        None
    }

    /// Starts (or stops) timing each call's sandbox boundary apart from its compute; false when
    /// this runner has no boundary of its own to time.
    fn split_boundary(&mut self, _on: bool) -> bool {
        false
    }

    /// CPU threads the last call ran on, when the kernel reports them.
    fn last_call_threads(&mut self) -> Option<u32> {
        None
    }

    /// Runs `input` and returns the output, `output_bytes_per_sample` per sample.
    fn infer(
        &mut self,
        input: &[u8],
        samples: usize,
        output_bytes_per_sample: usize,
    ) -> Result<Vec<u8>> {
        let mut output = vec![0u8; samples * output_bytes_per_sample];
        self.infer_into(input, &mut output)?;
        Ok(output)
    }
}
