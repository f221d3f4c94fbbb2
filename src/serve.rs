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
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Where a page under measurement POSTs its result (JSON); see [`Server::serve_until_result`].
pub const RESULT_PATH: &str = "/__wpi/result";

/// Threads answering requests: browsers fetch a page's files over several connections at once.
const WORKERS: usize = 6;

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
            return Err(input_error(format!(
                "{} is not a directory",
                root.display()
            )));
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
    pub fn serve_forever(&self, log: impl Fn(&Served) + Sync) -> Result<()> {
        self.answer_in_pool(&AtomicBool::new(false), &|served, _| log(served))
    }

    /// Answers requests until a page POSTs to [`RESULT_PATH`] and returns that body, or fails
    /// once `timeout` passes or `alive` says the client is gone (e.g. the browser exited).
    pub fn serve_until_result(
        &self,
        timeout: Duration,
        mut alive: impl FnMut() -> Result<()>,
    ) -> Result<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let stop = AtomicBool::new(false);
        let result = Mutex::new(None);
        let on_served = |_: &Served, posted: Option<Vec<u8>>| {
            if let Some(body) = posted {
                *result.lock().unwrap_or_else(|e| e.into_inner()) = Some(body);
                stop.store(true, Ordering::Relaxed);
            }
        };
        std::thread::scope(|scope| {
            let pool = scope.spawn(|| self.answer_in_pool(&stop, &on_served));
            let waited = loop {
                if stop.load(Ordering::Relaxed) {
                    break Ok(());
                }
                if Instant::now() >= deadline {
                    break Err(anyhow::anyhow!("no result within {} s", timeout.as_secs()));
                }
                if let Err(error) = alive() {
                    break Err(error);
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            stop.store(true, Ordering::Relaxed);
            pool.join().expect("server threads panicked")?;
            waited
        })?;
        Ok(result
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or_default())
    }

    /// [`WORKERS`] threads answering requests until `stop` is set; `on_served` hears of each,
    /// with the body of a POST to [`RESULT_PATH`].
    fn answer_in_pool(
        &self,
        stop: &AtomicBool,
        on_served: &(dyn Fn(&Served, Option<Vec<u8>>) + Sync),
    ) -> Result<()> {
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..WORKERS)
                .map(|_| {
                    scope.spawn(|| -> Result<()> {
                        while !stop.load(Ordering::Relaxed) {
                            let request = self
                                .http
                                .recv_timeout(Duration::from_millis(100))
                                .context("accepting a connection")?;
                            if let Some(request) = request {
                                let (served, posted) = self.answer(request);
                                on_served(&served, posted);
                            }
                        }
                        Ok(())
                    })
                })
                .collect();
            workers
                .into_iter()
                .try_for_each(|worker| worker.join().expect("server thread panicked"))
        })
    }

    /// Responds to one request: what was served, and the body when it POSTed a result.
    fn answer(&self, mut request: tiny_http::Request) -> (Served, Option<Vec<u8>>) {
        let mut posted = None;
        let method = request.method().to_string();
        let path = request
            .url()
            .split(['?', '#'])
            .next()
            .unwrap_or("/")
            .to_string();
        let (status, body, mime) = if request.method() == &tiny_http::Method::Post {
            if path == RESULT_PATH {
                let mut body = Vec::new();
                match std::io::Read::read_to_end(request.as_reader(), &mut body) {
                    Ok(_) => {
                        posted = Some(body);
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
        // Always Content-Length: Chromium stalled on tiny_http's chunked encoding of multi-MB
        // files (Pyodide's runtime) and never finished loading them.
        let mut response = tiny_http::Response::from_data(body)
            .with_status_code(status)
            .with_chunked_threshold(usize::MAX);
        for (name, value) in [
            ("Content-Type", mime),
            ("Cache-Control", "no-store"),
            ("Cross-Origin-Opener-Policy", "same-origin"),
            ("Cross-Origin-Embedder-Policy", "require-corp"),
            ("X-Content-Type-Options", "nosniff"),
        ] {
            let header =
                tiny_http::Header::from_bytes(name, value).expect("static header is valid");
            response.add_header(header);
        }
        // A client that hung up is its own problem; the server goes on.
        let _ = request.respond(response);
        let served = Served {
            method,
            path,
            status,
            bytes,
        };
        (served, posted)
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
        let address = server
            .url()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let request = server.http.recv().unwrap();
        server.answer(request);
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
    fn serving_until_a_page_posts_its_result() {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::bind(dir.path(), 0).unwrap();
        let address = server
            .url()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let poster = std::thread::spawn(move || {
            let mut stream = std::net::TcpStream::connect(&address).unwrap();
            write!(
                stream,
                "POST {RESULT_PATH} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 7\r\nConnection: close\r\n\r\n{{\"a\":1}}"
            )
            .unwrap();
            let mut reply = String::new();
            stream.read_to_string(&mut reply).unwrap();
            reply
        });
        let body = server
            .serve_until_result(Duration::from_secs(20), || Ok(()))
            .unwrap();
        assert_eq!(body, br#"{"a":1}"#);
        assert!(poster.join().unwrap().starts_with("HTTP/1.1 204"));

        let err = server
            .serve_until_result(Duration::from_secs(20), || anyhow::bail!("browser exited"))
            .unwrap_err();
        assert_eq!(err.to_string(), "browser exited");
        let err = server
            .serve_until_result(Duration::from_millis(1), || Ok(()))
            .unwrap_err();
        assert!(err.to_string().starts_with("no result within"), "{err}");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("/a%20b").as_deref(), Some("/a b"));
        assert_eq!(percent_decode("/a%2"), None);
    }
}
