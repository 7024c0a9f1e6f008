//! `edgekv demo --secure`, run as a person runs it: the lines it prints (the CA file and an
//! admin token to export, then kvctl commands) work as printed, a kvctl without the token
//! is refused, and Ctrl-C (SIGTERM) stops the nodes and removes the temporary directory.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use edgekv_tests::{binary, without_kvctl_environment};

/// The demo process, stopped with SIGTERM (so it removes its data) when dropped.
struct Demo(Child);

impl Demo {
    fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on the PID of a child this test started and has not reaped.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
        self.0.wait().expect("wait for the demo")
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            self.terminate();
        }
    }
}

/// What the demo printed up to its ready line.
fn start_secure_demo() -> (Demo, Vec<String>) {
    let mut child = Command::new(binary("edgekv"))
        .args(["demo", "--secure", "--regions", "us-east,eu-west"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start edgekv demo");
    let stdout = child.stdout.take().expect("piped stdout");
    let demo = Demo(child);
    let (lines_tx, lines_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = Vec::new();
    loop {
        let line = lines_rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the demo did not become ready; it printed:\n{}", printed.join("\n")));
        let ready = line.starts_with("edgekv demo ready");
        printed.push(line);
        if ready {
            return (demo, printed);
        }
    }
}

/// The value of `export NAME=VALUE` among the printed lines.
fn exported(printed: &[String], name: &str) -> String {
    let prefix = format!("export {name}=");
    printed
        .iter()
        .find_map(|line| line.trim().strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("the demo prints `export {name}=...`:\n{}", printed.join("\n")))
        .to_string()
}

/// Runs a printed `kvctl ...` line with `env` set, as a shell that ran the exports would.
fn run_printed(line: &str, env: &[(&str, &str)]) -> Output {
    let mut words = line.split_whitespace();
    assert_eq!(words.next(), Some("kvctl"), "{line}");
    let mut command = Command::new(binary("kvctl"));
    without_kvctl_environment(command.args(words));
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run kvctl")
}

#[test]
fn secure_demo_prints_commands_that_work() {
    let (mut demo, printed) = start_secure_demo();
    let cacert = exported(&printed, "EDGEKV_CACERT");
    let token = exported(&printed, "EDGEKV_TOKEN");
    let data_dir = PathBuf::from(&cacert)
        .ancestors()
        .nth(2)
        .expect("the CA lives in the demo's directory")
        .to_path_buf();
    let kvctl_lines: Vec<&str> = printed
        .iter()
        .filter_map(|line| line.split_once("kvctl --endpoint https://").map(|_| line.trim()))
        .map(|line| line.trim_start_matches("try:").trim())
        .collect();
    let put = kvctl_lines
        .iter()
        .find(|line| line.ends_with("put greeting hello"))
        .expect("a put line");
    let status = kvctl_lines
        .iter()
        .find(|line| line.ends_with("cluster status"))
        .expect("a cluster status line");

    let env = [("EDGEKV_CACERT", cacert.as_str()), ("EDGEKV_TOKEN", token.as_str())];
    for line in [*put, *status] {
        let output = run_printed(line, &env);
        assert!(
            output.status.success(),
            "`{line}` as printed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let get = put.replace("put greeting hello", "get greeting -o json");
    let output = run_printed(&get, &env);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let entry: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(entry["value"], "hello", "{entry}");

    // Without the token the node refuses; without the CA kvctl does not trust the node.
    let refused = run_printed(&get, &[("EDGEKV_CACERT", cacert.as_str())]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("UNAUTHENTICATED"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let untrusted = run_printed(&get, &[("EDGEKV_TOKEN", token.as_str())]);
    assert!(!untrusted.status.success(), "a kvctl without the demo CA is refused");

    assert!(data_dir.is_dir(), "{}", data_dir.display());
    assert!(demo.terminate().success(), "the demo stops cleanly on SIGTERM");
    assert!(!data_dir.exists(), "the demo removed {}", data_dir.display());
}
