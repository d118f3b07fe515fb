//! The live dashboard in a real browser: Debian's Chromium, headless, driven over WebDriver
//! (chromedriver) with fantoccini.
//!
//! * `the_dashboard_shows_the_injected_incident_live`: `tidewatch run --logi2` on the built-in
//!   generator in real time (its first incident, slow deliveries at wh-01, is under way at
//!   start-up). The page must go live over server-sent events, show the incident in the
//!   active-alerts table (the same alert `/api/alerts` serves), draw wh-01's charts, keep
//!   updating without a reload, and a screenshot is saved (to `$TIDEWATCH_SCREENSHOT` too
//!   when set: that is how README's docs/dashboard.png is made).
//! * `the_dashboard_stays_live_at_100k_events_per_second`: the generator at 100,000 events/s;
//!   the page must keep receiving ticks and showing new data, every API answer must stay
//!   bounded in size, and the test prints the answer times it saw (a liveness check with
//!   generous limits; BENCHMARKS.md has the measured figures).
//!
//! Needs /usr/bin/chromium and /usr/bin/chromedriver (`tests/setup.sh` installs them); fails,
//! never skips, without them. Chromium runs with the flags this machine needs (no sandbox as
//! root, no background networking: the network is closed).

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};
use support::brokers::free_port;
use support::http::get;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A child process killed (SIGINT first, so tidewatch flushes) when dropped.
struct Running(Child);

impl Running {
    fn stop(mut self) -> std::process::ExitStatus {
        support::brokers::send_signal(self.0.id(), "INT");
        let start = Instant::now();
        loop {
            if let Some(status) = self.0.try_wait().expect("poll child") {
                return status;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = self.0.kill();
                panic!("did not stop within 30 s of SIGINT");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `tidewatch run ARGS --dashboard 127.0.0.1:P`; returns it and the dashboard address
/// once `/api/summary` answers.
fn start_tidewatch(args: &[&str], log: &Path) -> (Running, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let metrics = format!("127.0.0.1:{}", free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .arg("run")
        .args(args)
        .args(["--dashboard", &addr, "--metrics-addr", &metrics])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("spawn tidewatch");
    let running = Running(child);
    wait_for(Duration::from_secs(60), "the dashboard to answer", || {
        get(&addr, "/api/summary").is_ok_and(|r| r.status == 200)
    });
    (running, addr)
}

fn wait_for(timeout: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts chromedriver and a headless Chromium session in it, on the dashboard at `addr`.
async fn browser(profile: &Path, addr: &str) -> (Running, Client) {
    for program in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(program).exists(),
            "{program} is missing: install Debian's chromium and chromium-driver (tests/setup.sh does)"
        );
    }
    let port = free_port();
    let driver = Running(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chromedriver"),
    );
    let driver_addr = format!("127.0.0.1:{port}");
    wait_for(Duration::from_secs(30), "chromedriver", || {
        get(&driver_addr, "/status").is_ok_and(|r| r.status == 200)
    });
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--window-size=1400,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        },
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!("an object literal")
    };
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://{driver_addr}"))
        .await
        .expect("a Chromium session through chromedriver");
    client
        .goto(&format!("http://{addr}/"))
        .await
        .expect("open the dashboard");
    (driver, client)
}

/// What the page shows, read in the page.
const PAGE_STATE: &str = r#"
    const rows = [...document.querySelectorAll('#alerts-table tr.alert-row')].map(tr => ({
        rule: tr.dataset.rule, warehouse: tr.dataset.warehouse, kind: tr.dataset.kind,
        cells: [...tr.cells].map(td => td.textContent.trim()),
    }));
    const card = document.querySelector('.warehouse-card[data-warehouse="wh-01"]');
    const delivery = card && card.querySelector('svg.chart[data-metric="delivery"]');
    return {
        connection: document.getElementById('status-connection').textContent.trim(),
        ticks: Number(document.body.dataset.ticks || 0),
        watermark: document.getElementById('watermark').textContent.trim(),
        eventsIn: document.getElementById('events-in').textContent.trim(),
        throughput: document.getElementById('throughput').textContent.trim(),
        cards: document.querySelectorAll('.warehouse-card').length,
        deliveryPaths: delivery ? delivery.querySelectorAll('path').length : 0,
        marker: window.__tidewatchTestMarker === 1,
        rows,
    };
"#;

async fn page_state(client: &Client) -> Value {
    client
        .execute(PAGE_STATE, Vec::new())
        .await
        .expect("read the page")
}

async fn poll_page(
    client: &Client,
    timeout: Duration,
    what: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let state = page_state(client).await;
        if ready(&state) {
            return state;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out waiting for {what}; the page shows {state:#}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn is_incident_row(row: &Value) -> bool {
    row["warehouse"] == "wh-01"
        && row["rule"]
            .as_str()
            .is_some_and(|r| r.contains("delivery_duration"))
}

#[tokio::test]
async fn the_dashboard_shows_the_injected_incident_live() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (tidewatch, addr) = start_tidewatch(
        &["--logi2", "--workers", "2", "--quiet"],
        &tmp.path().join("run.log"),
    );
    let (driver, client) = browser(&tmp.path().join("profile"), &addr).await;
    client
        .execute("window.__tidewatchTestMarker = 1;", Vec::new())
        .await
        .expect("mark the page");

    let state = poll_page(
        &client,
        Duration::from_secs(90),
        "the incident in the alerts table",
        |s| {
            s["connection"] == "live"
                && s["ticks"].as_u64().unwrap_or(0) >= 2
                && s["rows"]
                    .as_array()
                    .is_some_and(|rows| rows.iter().any(is_incident_row))
        },
    )
    .await;
    eprintln!("the page: {state:#}");
    let row = state["rows"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| is_incident_row(r)))
        .expect("the incident row")
        .clone();
    // Rule, warehouse, window, actual, expected, detail: actual and expected are filled in.
    let cells: Vec<&str> = row["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(cells.len(), 6, "{row}");
    assert_eq!(cells[1], "wh-01");
    assert!(
        !cells[3].is_empty() && cells[4] != "—",
        "actual and expected: {row}"
    );
    // The server agrees: the same alert is active in /api/alerts.
    let alerts = get(&addr, "/api/alerts").expect("alerts").json();
    assert!(
        alerts["active"].as_array().is_some_and(|active| active
            .iter()
            .any(|a| a["warehouse"] == "wh-01"
                && a["rule"] == row["rule"]
                && a["actual"].as_f64().is_some_and(|actual| actual > 0.0))),
        "{alerts:#}"
    );
    assert_eq!(state["cards"].as_u64(), Some(8), "one card per warehouse");
    assert!(
        state["deliveryPaths"].as_u64().unwrap_or(0) >= 2,
        "wh-01's delivery chart has no line and band: {state:#}"
    );

    // Live: more ticks arrive and the page is the same page (no reload).
    let ticks = state["ticks"].as_u64().unwrap_or(0);
    let later = poll_page(&client, Duration::from_secs(20), "more ticks", |s| {
        s["ticks"].as_u64().unwrap_or(0) >= ticks + 4
    })
    .await;
    assert!(
        later["marker"].as_bool().unwrap_or(false),
        "the page was reloaded"
    );
    assert_eq!(later["connection"], "live");

    let png = client.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::write(&shot, &png).expect("save the screenshot");
    eprintln!("screenshot: {}", shot.display());
    if let Ok(path) = std::env::var("TIDEWATCH_SCREENSHOT") {
        std::fs::write(&path, &png).expect("save the screenshot");
    }
    client.close().await.expect("close the browser");
    drop(driver);
    let status = tidewatch.stop();
    let log = std::fs::read_to_string(tmp.path().join("run.log")).unwrap_or_default();
    assert!(status.success(), "tidewatch exited with {status}: {log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test]
async fn the_dashboard_stays_live_at_100k_events_per_second() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (tidewatch, addr) = start_tidewatch(
        &[
            "--rate",
            "100000",
            "--workers",
            "2",
            "--quiet",
            "--detect",
            "--logi2",
        ],
        &tmp.path().join("run.log"),
    );
    let (driver, client) = browser(&tmp.path().join("profile"), &addr).await;
    let first = poll_page(
        &client,
        Duration::from_secs(60),
        "the page to go live",
        |s| s["connection"] == "live" && s["ticks"].as_u64().unwrap_or(0) >= 2,
    )
    .await;

    // For 10 s, poll the API as a second client would, and time every answer.
    let mut times: Vec<Duration> = Vec::new();
    let mut largest = 0usize;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        for path in [
            "/api/summary",
            "/api/alerts",
            "/api/windows?warehouse=wh-01",
        ] {
            let asked = Instant::now();
            let response = get(&addr, path).expect("an answer");
            times.push(asked.elapsed());
            assert_eq!(response.status, 200, "{path}: {}", response.body);
            largest = largest.max(response.body.len());
            if path.starts_with("/api/windows") {
                let rows = response.json()["windows"].as_array().map_or(0, Vec::len);
                assert!(rows <= 360, "{rows} windows");
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let last = page_state(&client).await;
    times.sort();
    let p50 = times[times.len() / 2];
    let p99 = times[times.len() * 99 / 100];
    let ticks = last["ticks"].as_u64().unwrap_or(0) - first["ticks"].as_u64().unwrap_or(0);
    let summary = get(&addr, "/api/summary").expect("summary").json();
    eprintln!(
        "at --rate 100000: {} API answers, p50 {p50:?}, p99 {p99:?}, max {:?}, largest {largest} bytes; \
         {ticks} ticks in the browser over ~10 s; server throughput {:.0} events/s",
        times.len(),
        times.last().copied().unwrap_or_default(),
        summary["events_per_second"].as_f64().unwrap_or(0.0)
    );
    assert!(ticks >= 10, "the page got {ticks} ticks in 10 s: {last:#}");
    assert_eq!(last["connection"], "live");
    assert_ne!(
        last["eventsIn"], first["eventsIn"],
        "the page's counts did not move"
    );
    assert!(largest < 512 * 1024, "an answer of {largest} bytes");
    assert!(p99 < Duration::from_secs(2), "p99 {p99:?}");
    client.close().await.expect("close the browser");
    drop(driver);
    let status = tidewatch.stop();
    assert!(status.success(), "tidewatch exited with {status}");
}
