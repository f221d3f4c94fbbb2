//! CLI cases as fixture files, in the style of wasm-tools' `tests/cli`: each `tests/cli/*.toml`
//! holds a command line and its exit code; the blessed stdout and stderr sit beside it as
//! `<case>.stdout` and `<case>.stderr` (absent when empty). `BLESS=1` rewrites them. Every case
//! runs the real binary from the repository root, on checked-in fixtures only, so none builds.

use crate::common::*;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    args: Vec<String>,
    exit: i32,
}

/// What differs from run to run or machine to machine, replaced before comparing.
fn redact(text: &str) -> String {
    text.replace(repo_root().to_str().unwrap(), "[ROOT]")
}

#[test]
fn cli_cases_match_their_blessed_output() {
    let dir = repo_root().join("tests/cli");
    let bless = std::env::var_os("BLESS").is_some();
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 5, "no CLI cases found in {}", dir.display());
    let mut failures = Vec::new();
    for path in &cases {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let case: Case = toml::from_str(&std::fs::read_to_string(path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
        let output = wpi(&args);
        if output.status.code() != Some(case.exit) {
            failures.push(format!(
                "{name}: exit {:?}, expected {}\n--- stderr\n{}",
                output.status.code(),
                case.exit,
                stderr(&output)
            ));
        }
        for (stream, actual) in [("stdout", stdout(&output)), ("stderr", stderr(&output))] {
            let blessed = dir.join(format!("{name}.{stream}"));
            let actual = redact(&actual);
            if bless {
                if actual.is_empty() {
                    let _ = std::fs::remove_file(&blessed);
                } else {
                    std::fs::write(&blessed, &actual).unwrap();
                }
                continue;
            }
            let expected = std::fs::read_to_string(&blessed).unwrap_or_default();
            if expected != actual {
                failures.push(format!(
                    "{name}: {stream} differs (BLESS=1 to accept)\n--- expected\n{expected}\n--- actual\n{actual}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
