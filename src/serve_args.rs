//! `tidewatch run`'s serving options: where `/metrics` and the live dashboard listen, and
//! starting them (the server itself is the library's [`tidewatch::serve`]).

use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use tidewatch::serve;
use tidewatch::telemetry::Telemetry;

/// The serving options of `tidewatch run`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Serve Prometheus metrics at http://ADDR/metrics [default: 127.0.0.1:9464, plus the
    /// process index in a cluster; if that port is taken, a warning and no metrics].
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Do not serve metrics.
    #[arg(long, conflicts_with = "metrics_addr")]
    pub no_metrics: bool,
    /// Serve the live dashboard and its JSON API (/api/alerts, /api/windows?warehouse=) at
    /// http://ADDR/ [default in the demo: 127.0.0.1:8080; elsewhere off].
    #[arg(long, value_name = "ADDR")]
    pub dashboard: Option<std::net::SocketAddr>,
    /// Do not serve the dashboard in the demo.
    #[arg(long, conflicts_with = "dashboard")]
    pub no_dashboard: bool,
    /// Allow --metrics-addr and --dashboard on non-loopback addresses (e.g. 0.0.0.0:9464):
    /// anyone who can reach the address sees the metrics, windows and alerts.
    #[arg(long)]
    pub allow_remote: bool,
}

/// What [`start_serving`] started: the telemetry it serves (none when nothing is served), the
/// server, and the URLs to tell the user.
pub struct Serving {
    pub telemetry: Option<Arc<Telemetry>>,
    pub server: Option<serve::Server>,
    pub urls: Vec<String>,
    /// Defaults not served (their port was taken), to warn of once the run starts.
    pub warnings: Vec<String>,
}

/// Starts `/metrics` and the dashboard as `args` say.
pub fn start_serving(
    args: &ServeArgs,
    demo: bool,
    process: u32,
    workers: u32,
) -> anyhow::Result<Serving> {
    let mut warnings = Vec::new();
    let metrics = if args.no_metrics {
        None
    } else {
        match args.metrics_addr {
            Some(addr) => Some(serve::bind(addr, "--metrics-addr", args.allow_remote)?),
            None => {
                let mut addr: std::net::SocketAddr = serve::DEFAULT_METRICS_ADDR
                    .parse()
                    .context("default metrics address")?;
                addr.set_port(addr.port().saturating_add(process as u16));
                bind_default(addr, "--metrics-addr", &mut warnings)
            }
        }
    };
    let dashboard = match args.dashboard {
        Some(addr) if process != 0 => {
            warnings.push(format!(
                "not serving --dashboard {addr}: only process 0 serves the dashboard (it writes the outputs)"
            ));
            None
        }
        Some(addr) => Some(serve::bind(addr, "--dashboard", args.allow_remote)?),
        None if demo && !args.no_dashboard => {
            let addr = serve::DEFAULT_DASHBOARD_ADDR
                .parse()
                .context("default dashboard address")?;
            bind_default(addr, "--dashboard", &mut warnings)
        }
        None => None,
    };
    if metrics.is_none() && dashboard.is_none() {
        return Ok(Serving {
            telemetry: None,
            server: None,
            urls: Vec::new(),
            warnings,
        });
    }
    let mut urls = Vec::new();
    if let Some(bound) = &dashboard {
        urls.push(format!("dashboard http://{}/", bound.addr));
    }
    if let Some(bound) = &metrics {
        urls.push(format!("metrics http://{}/metrics", bound.addr));
    }
    let telemetry = Arc::new(Telemetry::new(workers as usize));
    let server = serve::start(Arc::clone(&telemetry), metrics, dashboard)?;
    Ok(Serving {
        telemetry: Some(telemetry),
        server: Some(server),
        urls,
        warnings,
    })
}

/// Binds a default address: a busy port is a warning (in `warnings`), not an error (the user
/// did not ask for this address; two runs on one machine must not fail for it).
fn bind_default(
    addr: std::net::SocketAddr,
    what: &'static str,
    warnings: &mut Vec<String>,
) -> Option<serve::Bound> {
    match serve::bind(addr, what, false) {
        Ok(bound) => Some(bound),
        Err(error) => {
            warnings.push(format!(
                "{error}; not serving it (give another address with {what} ADDR)"
            ));
            None
        }
    }
}
