//! The demo page `build --demo` writes into a bundle (`templates/demo/index.html`): a drawing pad
//! whose ink becomes the model's input grid, and the model's outputs as a live bar chart with the
//! latency of each call. It loads the model through the bundle's own loader, SRI check included.

use crate::bundle::layout::DEMO_FILE;
use crate::bundle::pack::BundleFile;
use crate::exit::input_error;
use anyhow::Result;
use serde::{Deserialize, Serialize};

const PAGE: &str = include_str!("../../templates/demo/index.html");
const CONFIG_SLOT: &str = "/*WPI_DEMO*/ {} /*END_WPI_DEMO*/";

/// `[…wasmpack-infer.demo]` in Cargo.toml or pyproject.toml.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DemoSpec {
    /// The input grid the drawing is reduced to, row-major: ink per cell from 0 to `max`.
    pub width: usize,
    pub height: usize,
    #[serde(default = "full_ink")]
    pub max: f64,
    /// A name per output value, shown beside its bar (default: the index).
    #[serde(default)]
    pub labels: Vec<String>,
}

fn full_ink() -> f64 {
    1.0
}

/// Which loader the page drives.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum DemoVariant {
    /// The kernel's `loader.mjs` (Float32Array in and out).
    Wasm,
    /// The Pyodide bundle's `pyodide/loader.mjs` (a list of floats in, a list out).
    Pyodide,
}

#[derive(Serialize)]
struct PageConfig<'a> {
    title: String,
    variant: DemoVariant,
    loader: &'a str,
    width: usize,
    height: usize,
    max: f64,
    labels: &'a [String],
}

impl DemoSpec {
    /// Checks the spec against the model: `input_elements` values in, `output_elements` out
    /// (unknown for Python entries); `table` names where it was written, for errors.
    pub fn check(
        &self,
        table: &str,
        input_elements: usize,
        output_elements: Option<usize>,
    ) -> Result<()> {
        if self.width == 0 || self.height == 0 || self.width * self.height != input_elements {
            return Err(input_error(format!(
                "{table}: width x height = {} x {} must equal the model's {input_elements} input values",
                self.width, self.height
            )));
        }
        if !(self.max.is_finite() && self.max > 0.0) {
            return Err(input_error(format!(
                "{table}: max = {}: must be a positive number",
                self.max
            )));
        }
        if let Some(outputs) = output_elements
            && !self.labels.is_empty()
            && self.labels.len() != outputs
        {
            return Err(input_error(format!(
                "{table}: {} labels for {outputs} output values",
                self.labels.len()
            )));
        }
        Ok(())
    }

    /// The page, titled `name version`, loading the model through `loader` (relative URL).
    pub fn page(
        &self,
        name: &str,
        version: &str,
        variant: DemoVariant,
        loader: &str,
    ) -> BundleFile {
        let config = PageConfig {
            title: format!("{name} {version}"),
            variant,
            loader,
            width: self.width,
            height: self.height,
            max: self.max,
            labels: &self.labels,
        };
        // `</` cannot end the inline script early: JSON strings escape it.
        let json = serde_json::to_string(&config)
            .expect("demo config serializes")
            .replace("</", "<\\/");
        debug_assert!(
            PAGE.contains(CONFIG_SLOT),
            "templates/demo/index.html lost its config slot"
        );
        BundleFile::new(DEMO_FILE, PAGE.replacen(CONFIG_SLOT, &json, 1).into_bytes())
    }
}

/// The page for a project whose demo table (at `table`, for the error) is `spec`; an input error
/// naming the table and showing an example when the project has none.
pub fn page_for(
    spec: Option<&DemoSpec>,
    table: &str,
    name: &str,
    version: &str,
    variant: DemoVariant,
    loader: &str,
) -> Result<BundleFile> {
    let spec = spec.ok_or_else(|| missing_spec(table))?;
    Ok(spec.page(name, version, variant, loader))
}

fn missing_spec(table: &str) -> anyhow::Error {
    input_error(format!(
        "--demo needs a [{table}] table saying how a drawing becomes the input, e.g.\n\n\
         [{table}]\n\
         width = 8\n\
         height = 8\n\
         max = 1.0\n\
         labels = [\"0\", \"1\", \"2\", \"3\", \"4\", \"5\", \"6\", \"7\", \"8\", \"9\"]"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits() -> DemoSpec {
        DemoSpec {
            width: 8,
            height: 8,
            max: 1.0,
            labels: (0..10).map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn spec_must_match_the_model() {
        digits().check("demo", 64, Some(10)).unwrap();
        digits().check("demo", 64, None).unwrap();
        let err = digits()
            .check("demo", 63, Some(10))
            .unwrap_err()
            .to_string();
        assert!(err.contains("8 x 8") && err.contains("63"), "{err}");
        let err = digits().check("demo", 64, Some(3)).unwrap_err().to_string();
        assert!(err.contains("10 labels for 3"), "{err}");
        let zero_max = DemoSpec {
            max: 0.0,
            ..digits()
        };
        assert!(zero_max.check("demo", 64, None).is_err());
    }

    #[test]
    fn page_carries_the_config_and_cannot_be_broken_out_of() {
        let spec = DemoSpec {
            labels: vec!["</script><b>".into(); 10],
            ..digits()
        };
        let page = spec.page(
            "digits",
            "0.1.0",
            DemoVariant::Pyodide,
            "./pyodide/loader.mjs",
        );
        let html = String::from_utf8(page.bytes).unwrap();
        assert!(!html.contains(CONFIG_SLOT));
        assert!(html.contains(r#""variant":"pyodide""#), "{html}");
        assert!(html.contains(r#""loader":"./pyodide/loader.mjs""#));
        assert_eq!(
            html.matches("</script>").count(),
            1,
            "labels must not close the script"
        );
    }
}
