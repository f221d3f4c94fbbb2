//! The runtime-fit verdict per deployment shape: the thresholds it judges by (defaults, with the
//! reasoning for each, are here and nowhere else; a profile's `[runtime-fit]` table overrides
//! them) and what it concluded, figure by figure.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a figure falls: at most `strong_up_to` is strong, above `weak_above` is weak, between
/// the two conditional. Every judged figure is one where less is better.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Band {
    pub strong_up_to: f64,
    pub weak_above: f64,
}

impl Band {
    const fn new(strong_up_to: f64, weak_above: f64) -> Self {
        Self {
            strong_up_to,
            weak_above,
        }
    }

    pub fn grade(&self, value: f64) -> Fit {
        if value <= self.strong_up_to {
            Fit::Strong
        } else if value > self.weak_above {
            Fit::Weak
        } else {
            Fit::Conditional
        }
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// The limits the deployment verdicts judge a build by. Overridden per profile
/// (`[runtime-fit]`, keys in kebab-case, e.g. `download-bytes = { strong-up-to = 2097152,
/// weak-above = 16777216 }`); the manifest records the ones used.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FitThresholds {
    /// Browser page, bytes downloaded (brotli). 1 MiB is about what a page spends on all its
    /// script (the HTTP Archive's median page ships ~0.5 MB of JavaScript) and takes ~5 s on a
    /// slow 4G link (1.6 Mbit/s); past 8 MiB the model is the page, worth it only when the page
    /// exists for it.
    pub download_bytes: Band,
    /// Browser page, compile + instantiate + init + first inference, in µs: what the user waits
    /// for the first answer once the bytes are in. 100 ms still reads as instant (RAIL's
    /// response budget); past 1 s the page must show progress. (The compile is wasmtime's
    /// optimizing one: an upper bound for a browser's baseline tier.)
    pub first_result_us: Band,
    /// Browser page, one sample in steady state, in µs: within a 60 Hz frame (16.7 ms) it can
    /// run on every input event or frame; past 100 ms it cannot be interactive.
    pub page_steady_us: Band,
    /// Edge or serverless function started per request, precompiled module: deserialize +
    /// instantiate + init + first inference, in µs. Isolate-based platforms start a function in
    /// about 5 ms; past 50 ms (a network round trip) the model's start-up doubles what the
    /// caller waits.
    pub edge_cold_start_us: Band,
    /// Edge function, the module gzip-compressed: the platforms cap script size compressed
    /// (Cloudflare Workers: 3 MiB on the free plan, 10 MiB paid).
    pub edge_module_gzip_bytes: Band,
    /// WASM steady over native on one thread (the median over the batch sweep): the compute tax
    /// of the sandbox. Up to 1.5x is the price of isolation most hosts accept; past 4x the host
    /// pays more CPU than a process boundary would cost it.
    pub compute_tax: Band,
    /// Sandboxed plugin, the share of a batch-1 call spent copying the input into linear memory
    /// and the output out: past 30 % the plugin interface, not the model, is the cost, and a
    /// coarser call (batches, shared buffers) is the fix.
    pub boundary_share: Band,
    /// Long-lived server with batches, WASM over native at the largest batch measured, native
    /// on every thread it uses: a server can run native code, so WASM must come close (1.5x) to
    /// be worth shipping there; past 3x it wastes most of the machine.
    pub server_ratio: Band,
    /// Latency-critical path on native hardware, WASM over the fastest native path at batch 1:
    /// within 1.2x WASM is a fine way to ship it; past 2x the native build is the answer.
    pub latency_ratio: Band,
}

impl Default for FitThresholds {
    fn default() -> Self {
        Self {
            download_bytes: Band::new(MIB, 8.0 * MIB),
            first_result_us: Band::new(100e3, 1e6),
            page_steady_us: Band::new(16_667.0, 100e3),
            edge_cold_start_us: Band::new(5e3, 50e3),
            edge_module_gzip_bytes: Band::new(3.0 * MIB, 10.0 * MIB),
            compute_tax: Band::new(1.5, 4.0),
            boundary_share: Band::new(0.10, 0.30),
            server_ratio: Band::new(1.5, 3.0),
            latency_ratio: Band::new(1.2, 2.0),
        }
    }
}

/// How well the WASM variant fits a deployment.
#[derive(
    Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord,
)]
#[serde(rename_all = "kebab-case")]
pub enum Fit {
    Weak,
    Conditional,
    Strong,
}

impl Fit {
    pub fn as_str(self) -> &'static str {
        match self {
            Fit::Strong => "strong",
            Fit::Conditional => "conditional",
            Fit::Weak => "weak",
        }
    }

    /// The grade as a number for budgets: weak 0, conditional 1, strong 2.
    pub fn rank(self) -> f64 {
        match self {
            Fit::Weak => 0.0,
            Fit::Conditional => 1.0,
            Fit::Strong => 2.0,
        }
    }

    pub const ALL: [Fit; 3] = [Fit::Weak, Fit::Conditional, Fit::Strong];

    /// The grade named `name` (`strong`, `conditional`, `weak`).
    pub fn named(name: &str) -> Option<Fit> {
        Self::ALL.into_iter().find(|fit| fit.as_str() == name)
    }

    /// The grade whose [`Fit::rank`] is `rank`.
    pub fn of_rank(rank: f64) -> Option<Fit> {
        Self::ALL.into_iter().find(|fit| fit.rank() == rank)
    }
}

/// The deployments the verdict covers.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Deployment {
    /// In a web page, downloaded by every new visitor.
    BrowserPage,
    /// An edge or serverless function started for a request.
    EdgeFunction,
    /// A guest in a host process, isolated from it (a plugin, untrusted code).
    SandboxedPlugin,
    /// A long-lived server running batches.
    ServerBatch,
    /// A latency-critical path on hardware the operator controls.
    LatencyCriticalNative,
}

impl Deployment {
    pub fn as_str(self) -> &'static str {
        match self {
            Deployment::BrowserPage => "browser page",
            Deployment::EdgeFunction => "edge function",
            Deployment::SandboxedPlugin => "sandboxed plugin",
            Deployment::ServerBatch => "server, batches",
            Deployment::LatencyCriticalNative => "latency-critical native",
        }
    }

    /// The name in the manifest and in budgets (`fit.browser-page`).
    pub fn key(self) -> &'static str {
        match self {
            Deployment::BrowserPage => "browser-page",
            Deployment::EdgeFunction => "edge-function",
            Deployment::SandboxedPlugin => "sandboxed-plugin",
            Deployment::ServerBatch => "server-batch",
            Deployment::LatencyCriticalNative => "latency-critical-native",
        }
    }
}

/// One deployment's verdict.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeploymentFit {
    pub deployment: Deployment,
    /// The WASM variant's fit: the weakest grade among `figures`.
    pub fit: Fit,
    /// What to ship there, e.g. `wasm`, `native-cpu`, `cuda from batch 256`.
    pub ship: String,
    /// The measured figures that decided it, each with its grade.
    pub figures: Vec<FitFigure>,
}

/// One measured figure, judged against its band.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FitFigure {
    /// The [`FitThresholds`] field it is judged by, e.g. `download_bytes`.
    pub name: String,
    pub value: f64,
    pub band: Band,
    pub grade: Fit,
    /// Where the figure was measured, when not in wasmtime: `chromium` for a page's own load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_in: Option<String>,
}

impl FitFigure {
    pub fn judged(name: &str, value: f64, band: Band) -> Self {
        Self {
            name: name.to_string(),
            value,
            band,
            grade: band.grade(value),
            measured_in: None,
        }
    }

    pub fn measured_in(self, host: &str) -> Self {
        Self {
            measured_in: Some(host.to_string()),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_band_grades_its_edges_as_the_docs_say() {
        let band = Band::new(1.5, 4.0);
        assert_eq!(band.grade(1.5), Fit::Strong);
        assert_eq!(band.grade(1.51), Fit::Conditional);
        assert_eq!(band.grade(4.0), Fit::Conditional);
        assert_eq!(band.grade(4.01), Fit::Weak);
        assert!(Fit::Weak < Fit::Conditional && Fit::Conditional < Fit::Strong);
    }

    #[test]
    fn grades_and_shapes_are_named_as_serde_writes_them() {
        for fit in Fit::ALL {
            assert_eq!(serde_json::to_value(fit).unwrap(), fit.as_str());
            assert_eq!(Fit::named(fit.as_str()), Some(fit));
            assert_eq!(Fit::of_rank(fit.rank()), Some(fit));
        }
        assert!(Fit::Weak.rank() < Fit::Conditional.rank());
        assert!(Fit::Conditional.rank() < Fit::Strong.rank());
        for shape in [
            Deployment::BrowserPage,
            Deployment::EdgeFunction,
            Deployment::SandboxedPlugin,
            Deployment::ServerBatch,
            Deployment::LatencyCriticalNative,
        ] {
            assert_eq!(serde_json::to_value(shape).unwrap(), shape.key());
        }
    }

    /// The book's table of defaults says what the code does.
    #[test]
    fn the_book_lists_the_default_thresholds() {
        let book = include_str!("../../docs/src/runtime-fit.md");
        let defaults = serde_json::to_value(FitThresholds::default()).unwrap();
        for (name, band) in defaults.as_object().unwrap() {
            let row = format!(
                "| `{name}` | {} | {} |",
                band["strong_up_to"].as_f64().unwrap(),
                band["weak_above"].as_f64().unwrap()
            );
            assert!(book.contains(&row), "docs/src/runtime-fit.md lacks {row}");
        }
    }

    #[test]
    fn thresholds_override_field_by_field() {
        let partial: FitThresholds =
            serde_json::from_str(r#"{"compute_tax": {"strong_up_to": 2.0, "weak_above": 8.0}}"#)
                .unwrap();
        assert_eq!(partial.compute_tax, Band::new(2.0, 8.0));
        assert_eq!(
            partial.download_bytes,
            FitThresholds::default().download_bytes
        );
        assert!(serde_json::from_str::<FitThresholds>(r#"{"compute": 1}"#).is_err());
    }
}
