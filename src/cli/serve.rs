use super::bundle_dir_of;
use cargo_wasmpack_infer::serve::Server;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Serve a bundle on 127.0.0.1 to try it in a browser: the demo page (`build --demo`) at `/`, the
/// loader and module with the MIME types `instantiateStreaming` and module scripts need.
///
/// Runs until interrupted (Ctrl-C); each request is logged to stderr.
#[derive(Args)]
pub struct Opts {
    /// Bundle directory (dist/<name>-<version>), or a file in it.
    bundle: PathBuf,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 8000)]
    port: u16,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let root = bundle_dir_of(&self.bundle)?;
        let server = Server::bind(&root, self.port)?;
        let page = if root.join("index.html").is_file() {
            "demo page"
        } else {
            "no demo page: build with --demo for one"
        };
        // stdout gets the URL alone (scripts read it); the request log goes to stderr.
        println!("{}", server.url());
        eprintln!(
            "serving {} at {} ({page}); Ctrl-C stops",
            root.display(),
            server.url()
        );
        server.serve_forever(|served| {
            eprintln!(
                "{} {} {} {} bytes",
                served.status, served.method, served.path, served.bytes
            );
        })?;
        Ok(ExitCode::SUCCESS)
    }
}
