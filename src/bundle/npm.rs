//! `package.json` of a bundle: what a JavaScript project needs to `npm install` the WASM variant
//! and `import { load } from "<name>"` — the loader, its types, the modules it may pick and the
//! manifest, nothing native.

use crate::exit::input_error;
use anyhow::Result;
use serde::Deserialize;
use serde_json::json;

pub const PACKAGE_FILE: &str = "package.json";

/// npm's limit on a package name.
const MAX_NAME_LEN: usize = 214;

/// `[package.metadata.wasmpack-infer.npm]` or `[tool.wasmpack-infer.npm]`, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NpmSettings {
    /// e.g. "@acme/digits"; the crate's or project's name when absent.
    pub name: Option<String>,
}

/// An npm package made of bundle files.
#[derive(Debug, Clone)]
pub struct NpmPackage {
    pub name: String,
    pub version: String,
    pub description: String,
    /// Bundle-relative files the package ships (package.json itself is always included).
    pub files: Vec<String>,
    /// The module the package's root export is.
    pub main: String,
    /// Its TypeScript declarations.
    pub types: String,
    /// `build --npm`: also write the package's tarball, entries dated this (`SOURCE_DATE_EPOCH`).
    pub tarball_mtime: Option<u64>,
}

impl NpmPackage {
    /// The tarball's file name as `npm pack` names it: `@acme/digits` 1.0.0 →
    /// `acme-digits-1.0.0.tgz`.
    pub fn tarball_name(&self) -> String {
        format!(
            "{}-{}.tgz",
            self.name.trim_start_matches('@').replace('/', "-"),
            self.version
        )
    }

    /// The package.json text, recording the sha256 of the manifest written beside it: the
    /// manifest lists every other file with its hash, so this one hash pins the package.
    pub fn package_json(&self, manifest_sha256: &str) -> String {
        let mut files = self.files.clone();
        files.sort();
        files.dedup();
        let main = format!("./{}", self.main);
        let types = format!("./{}", self.types);
        crate::manifest::pretty_json(&json!({
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "type": "module",
            "main": main,
            "types": types,
            "exports": {
                ".": { "types": types, "default": main },
                "./manifest.json": "./manifest.json",
                "./package.json": "./package.json",
            },
            "files": files,
            "sideEffects": false,
            "wasmpackInfer": { "manifestSha256": manifest_sha256 },
        }))
    }
}

/// The npm name of a package: `requested` (`[…wasmpack-infer.npm] name`, checked against npm's
/// rules) or, without one, the crate or project name lower-cased.
pub fn package_name(requested: Option<&str>, own_name: &str, key: &str) -> Result<String> {
    let name = match requested {
        Some(name) => name.to_string(),
        None => own_name.to_lowercase(),
    };
    check_name(&name).map_err(|why| {
        let fix = if requested.is_some() {
            format!("change {key}")
        } else {
            format!(
                "set {key} to a valid one, e.g. \"@your-scope/{}\"",
                sanitized(&name)
            )
        };
        input_error(format!("npm package name {name:?} {why}: {fix}"))
    })?;
    Ok(name)
}

/// Why `name` is not a valid npm package name, if it is not: lower case, URL-safe, at most 214
/// characters, optionally `@scope/`, not starting with `.` or `_`.
fn check_name(name: &str) -> std::result::Result<(), String> {
    if name.len() > MAX_NAME_LEN {
        return Err(format!("is longer than {MAX_NAME_LEN} characters"));
    }
    let bare = match name.strip_prefix('@') {
        Some(scoped) => {
            let (scope, bare) = scoped
                .split_once('/')
                .ok_or("has a scope but no `/name` after it")?;
            check_part(scope, "scope")?;
            bare
        }
        None => name,
    };
    check_part(bare, "name")
}

fn check_part(part: &str, what: &str) -> std::result::Result<(), String> {
    if part.is_empty() {
        return Err(format!("has an empty {what}"));
    }
    if part.starts_with('.') || part.starts_with('_') {
        return Err(format!("has a {what} starting with `.` or `_`"));
    }
    match part
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "-._~".contains(*c)))
    {
        Some(c) => Err(format!(
            "has {c:?} in its {what} (npm takes lower-case letters, digits and -._~)"
        )),
        None => Ok(()),
    }
}

/// `name` with what npm refuses replaced, for a suggestion.
fn sanitized(name: &str) -> String {
    let kept: String = name
        .trim_start_matches(['@', '.', '_'])
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || "-._~".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    if kept.is_empty() {
        "model".into()
    } else {
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_npm_rules() {
        assert_eq!(package_name(None, "digits_mlp", "k").unwrap(), "digits_mlp");
        assert_eq!(package_name(None, "Digits", "k").unwrap(), "digits");
        assert_eq!(
            package_name(Some("@acme/digits-mlp"), "x", "k").unwrap(),
            "@acme/digits-mlp"
        );
        for (bad, why) in [
            ("@acme", "no `/name`"),
            ("Acme", "'A'"),
            ("_private", "starting with"),
            ("@acme/", "empty name"),
            ("a b", "' '"),
        ] {
            let err = package_name(Some(bad), "x", "[npm] name").unwrap_err();
            assert!(err.is::<crate::exit::InputError>());
            let message = err.to_string();
            assert!(message.contains(why), "{bad}: {message}");
            assert!(message.contains("change [npm] name"), "{message}");
        }
    }

    #[test]
    fn package_json_exports_the_loader_and_pins_the_manifest() {
        let package = NpmPackage {
            name: "@acme/k".into(),
            version: "1.2.3".into(),
            description: "k".into(),
            files: vec!["loader.mjs".into(), "k.wasm".into(), "loader.d.ts".into()],
            main: "loader.mjs".into(),
            types: "loader.d.ts".into(),
            tarball_mtime: None,
        };
        assert_eq!(package.tarball_name(), "acme-k-1.2.3.tgz");
        let json: serde_json::Value = serde_json::from_str(&package.package_json("abc")).unwrap();
        assert_eq!(json["type"], "module");
        assert_eq!(json["exports"]["."]["default"], "./loader.mjs");
        assert_eq!(json["exports"]["."]["types"], "./loader.d.ts");
        assert_eq!(
            json["files"],
            serde_json::json!(["k.wasm", "loader.d.ts", "loader.mjs"])
        );
        assert_eq!(json["sideEffects"], false);
        assert_eq!(json["wasmpackInfer"]["manifestSha256"], "abc");
    }
}
