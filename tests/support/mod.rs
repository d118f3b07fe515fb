//! Shared helpers for the oracle tests: a naive reference implementation of
//! LOGI-1 (`oracle`), a seeded input generator (`inputs`), change-log
//! comparison (`compare`) and a wrapper that runs the real binary.
#![allow(dead_code)]

pub mod brokers;
pub mod compare;
pub mod http;
pub mod inputs;
pub mod oracle;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long one run of the real binary may take before the test gives up.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// Runs `tidewatch run --input INPUT --out OUT --workers W [--disorder-ms D]`
/// and panics (with the program's stderr) unless it exits with status 0.
pub fn run_cli(input: &Path, out: &Path, workers: usize, disorder_ms: Option<u64>) {
    std::fs::create_dir_all(out).expect("create output directory");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tidewatch"));
    cmd.arg("run")
        .arg("--input")
        .arg(input)
        .arg("--out")
        .arg(out)
        .arg("--workers")
        .arg(workers.to_string());
    if let Some(d) = disorder_ms {
        cmd.arg("--disorder-ms").arg(d.to_string());
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the tidewatch binary");
    // Drain stderr on a thread so a chatty child never blocks on a full pipe.
    let mut err_pipe = child.stderr.take().expect("stderr is piped");
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = String::new();
        let _ = err_pipe.read_to_string(&mut buf);
        buf
    });
    let status = wait_with_deadline(&mut child, RUN_TIMEOUT);
    let stderr = reader.join().unwrap_or_default();
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!(
            "tidewatch run --input {} --workers {workers} exited with {s}\nstderr:\n{stderr}",
            input.display()
        ),
        None => panic!(
            "tidewatch run --input {} --workers {workers} did not finish within {:?}\nstderr:\n{stderr}",
            input.display(),
            RUN_TIMEOUT
        ),
    }
}

/// Waits for `child`; kills it and returns `None` if it outlives `deadline`.
fn wait_with_deadline(
    child: &mut std::process::Child,
    deadline: Duration,
) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("poll the tidewatch child process") {
            return Some(status);
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Far above any single command of the CLI tests (e.g. the 10 s connect timeout of
/// `produce`): only a hang exceeds it.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

/// Runs tidewatch with `args` (stdin closed); panics if it is still running after [`HANG_GUARD`].
pub fn tidewatch(args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the tidewatch binary");
    let pid = child.id();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    match receiver.recv_timeout(HANG_GUARD) {
        Ok(output) => output.expect("wait for tidewatch"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-s", "KILL", &pid.to_string()])
                .status();
            panic!("tidewatch {args:?} still running after {HANG_GUARD:?}");
        }
    }
}

/// Asserts a usage error: exit code 2 (or 1 for a failure found after parsing), exactly one
/// line on stderr that names `needle`, nothing that looks like a panic.
pub fn assert_one_line_error(args: &[&str], needle: &str) {
    let output = tidewatch(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "{args:?} should fail, stderr: {stderr}"
    );
    assert!(
        matches!(output.status.code(), Some(1 | 2)),
        "{args:?}: exit {:?}",
        output.status.code()
    );
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "{args:?}: not one line:\n{stderr}"
    );
    assert!(
        stderr.contains(needle),
        "{args:?}: {stderr:?} does not mention {needle:?}"
    );
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
}
