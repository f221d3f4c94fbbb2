//! A static file server for one bundle on 127.0.0.1: what `serve` runs for people trying a bundle,
//! and what `measure --browser` points headless Chromium at.
//!
//! Files are served with the MIME types browsers need (`application/wasm` lets the loader use
//! `WebAssembly.instantiateStreaming`, `text/javascript` lets `<script type="module">` run) and
//! with cross-origin isolation headers, which give `performance.now()` 5 µs resolution instead of
//! 100 µs, so browser timings of µs-scale kernels mean something.

use crate::exit::input_error;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

/// Where a page under measurement POSTs its result (JSON); see [`Server::serve_until_result`].
pub const RESULT_PATH: &str = "/__wpi/result";

/// The MIME type of a bundle file, by extension.
pub fn mime_of(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "wasm" => "application/wasm",
        "mjs" | "js" => "text/javascript; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        "json" => "application/json",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ts" => "text/plain; charset=utf-8",
        "zip" => "application/zip",
        "zst" => "application/zstd",
        "tar" => "application/x-tar",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// One request as the server saw it, for the log `serve` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub bytes: u64,
}

/// Serves the files under one directory; pages generated in memory may be added on top.
pub struct Server {
    http: tiny_http::Server,
    root: PathBuf,
    extra: BTreeMap<String, (Vec<u8>, &'static str)>,
    url: String,
}

impl Server {
    /// Binds 127.0.0.1:`port` (0 picks a free port) over `root`.
    pub fn bind(root: &Path, port: u16) -> Result<Server> {
        let root = root
            .canonicalize()
            .map_err(|e| input_error(format!("{}: {e}", root.display())))?;
        if !root.is_dir() {
            return Err(input_error(format!("{} is not a directory", root.display())));
        }
        let http = tiny_http::Server::http(("127.0.0.1", port))
            .map_err(|e| anyhow::anyhow!("cannot listen on 127.0.0.1:{port}: {e}"))?;
        let port = http
            .server_addr()
            .to_ip()
            .map(|addr| addr.port())
            .context("the server has no TCP address")?;
        Ok(Server {
            http,
            root,
            extra: BTreeMap::new(),
            url: format!("http://127.0.0.1:{port}/"),
        })
    }

    /// The server's base URL, ending in `/`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Serves `bytes` at `path` (absolute, e.g. `/__wpi/bench.html`) instead of a file.
    pub fn add_page(&mut self, path: &str, bytes: Vec<u8>) {
        let mime = mime_of(Path::new(path));
        self.extra.insert(path.to_string(), (bytes, mime));
    }

    /// Answers requests until the process ends, telling `log` about each.
    pub fn serve_forever(&self, mut log: impl FnMut(&Served)) -> Result<()> {
        loop {
            let request = self.http.recv().context("accepting a connection")?;
            if let Some(served) = self.answer(request, &mut |_| {}) {
                log(&served);
            }
        }
    }

    /// Answers requests until a page POSTs to [`RESULT_PATH`] and returns that body, or fails
    /// once `timeout` passes or `alive` says the client is gone (e.g. the browser exited).
    pub fn serve_until_result(
        &self,
        timeout: Duration,
        mut alive: impl FnMut() -> Result<()>,
    ) -> Result<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut result = None;
        while result.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                anyhow::bail!("no result within {} s", timeout.as_secs());
            }
            alive()?;
            let request = self
                .http
                .recv_timeout(left.min(Duration::from_millis(200)))
                .context("accepting a connection")?;
            if let Some(request) = request {
                self.answer(request, &mut |body| result = Some(body));
            }
        }
        Ok(result.unwrap_or_default())
    }

    fn answer(
        &self,
        mut request: tiny_http::Request,
        on_result: &mut dyn FnMut(Vec<u8>),
    ) -> Option<Served> {
        let method = request.method().to_string();
        let path = request.url().split(['?', '#']).next().unwrap_or("/").to_string();
        let (status, body, mime) = if request.method() == &tiny_http::Method::Post {
            if path == RESULT_PATH {
                let mut body = Vec::new();
                match std::io::Read::read_to_end(request.as_reader(), &mut body) {
                    Ok(_) => {
                        on_result(body);
                        (204, Vec::new(), "text/plain")
                    }
                    Err(_) => (400, b"unreadable body".to_vec(), "text/plain"),
                }
            } else {
                (405, b"method not allowed".to_vec(), "text/plain")
            }
        } else if let Some((bytes, mime)) = self.extra.get(&path) {
            (200, bytes.clone(), *mime)
        } else {
            match self.file_for(&path) {
                Some(file) => match std::fs::read(&file) {
                    Ok(bytes) => (200, bytes, mime_of(&file)),
                    Err(_) => (404, b"not found".to_vec(), "text/plain"),
                },
                None => (404, b"not found".to_vec(), "text/plain"),
            }
        };
        let bytes = body.len() as u64;
        let mut response = tiny_http::Response::from_data(body).with_status_code(status);
        for (name, value) in [
            ("Content-Type", mime),
            ("Cache-Control", "no-store"),
            ("Cross-Origin-Opener-Policy", "same-origin"),
            ("Cross-Origin-Embedder-Policy", "require-corp"),
            ("X-Content-Type-Options", "nosniff"),
        ] {
            let header = tiny_http::Header::from_bytes(name, value).expect("static header is valid");
            response.add_header(header);
        }
        // A client that hung up is its own problem; the server goes on.
        let _ = request.respond(response);
        Some(Served {
            method,
            path,
            status,
            bytes,
        })
    }

    /// The file a URL path names inside the root: `..`, absolute parts and links out of the root
    /// are refused; a directory means its `index.html`.
    fn file_for(&self, url_path: &str) -> Option<PathBuf> {
        let decoded = percent_decode(url_path)?;
        let relative = Path::new(decoded.trim_start_matches('/'));
        if relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return None;
        }
        let mut file = self.root.join(relative);
        if file.is_dir() {
            file.push("index.html");
        }
        let file = file.canonicalize().ok()?;
        (file.starts_with(&self.root) && file.is_file()).then_some(file)
    }
}

/// `%XX` escapes decoded; `None` for a malformed escape or a path that is not UTF-8.
fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn get(server: &Server, path: &str) -> (u16, String, Vec<u8>) {
        let address = server.url().trim_start_matches("http://").trim_end_matches('/').to_string();
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").unwrap();
        let request = server.http.recv().unwrap();
        server.answer(request, &mut |_| {});
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let status = head[9..12].parse().unwrap();
        (status, head, raw[split + 4..].to_vec())
    }

    #[test]
    fn serves_files_with_their_mime_type_and_nothing_outside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("bundle");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("model.wasm"), b"\0asm").unwrap();
        std::fs::write(root.join("index.html"), b"<p>hi</p>").unwrap();
        std::fs::write(dir.path().join("secret.txt"), b"no").unwrap();
        let server = Server::bind(&root, 0).unwrap();

        let (status, head, body) = get(&server, "/model.wasm");
        assert_eq!((status, body.as_slice()), (200, &b"\0asm"[..]));
        assert!(head.contains("application/wasm"), "{head}");
        assert!(head.contains("require-corp"), "{head}");
        let (status, head, _) = get(&server, "/");
        assert_eq!(status, 200);
        assert!(head.contains("text/html"), "{head}");
        for hostile in ["/../secret.txt", "/%2e%2e/secret.txt", "/nope.js", "/%zz"] {
            assert_eq!(get(&server, hostile).0, 404, "{hostile}");
        }
    }

    #[test]
    fn pages_added_in_memory_shadow_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server::bind(dir.path(), 0).unwrap();
        server.add_page("/__wpi/bench.mjs", b"export {}".to_vec());
        let (status, head, body) = get(&server, "/__wpi/bench.mjs");
        assert_eq!((status, body.as_slice()), (200, &b"export {}"[..]));
        assert!(head.contains("text/javascript"), "{head}");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("/a%20b").as_deref(), Some("/a b"));
        assert_eq!(percent_decode("/a%2"), None);
    }
}
