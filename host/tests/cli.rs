//! The `colony` command against a guest whose log line and error hold terminal escape
//! sequences, carriage returns and a forged line: text output shows them inert, `--json`
//! keeps them exact.

use std::path::PathBuf;
use std::process::Command;

/// The hostile fixture built by `make guests`.
fn hostile() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target.join("wasm32-wasip2/guest/hostile_fixture.wasm");
    assert!(path.is_file(), "build the guests first: make guests");
    path
}

fn run(json: bool) -> (Vec<u8>, Vec<u8>, bool) {
    let home = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_colony"));
    command.arg("--home").arg(home.path());
    if json {
        command.arg("--json");
    }
    let out = command
        .arg("run")
        .arg(hostile())
        .args([
            "--task",
            "print nasty text",
            "--input",
            r#"{"attack": "escapes"}"#,
        ])
        .env("RUST_LOG", "info,colony_guest=info")
        .output()
        .unwrap();
    (out.stdout, out.stderr, out.status.success())
}

#[test]
fn text_output_holds_no_control_characters_from_the_guest() {
    let (stdout, stderr, ok) = run(false);
    assert!(!ok, "the guest fails");
    for (name, bytes) in [("stdout", &stdout), ("stderr", &stderr)] {
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(!bytes.contains(&0x1b), "{name} holds ESC: {text}");
        assert!(!bytes.contains(&b'\r'), "{name} holds CR: {text}");
        assert!(!bytes.contains(&0x07), "{name} holds BEL: {text}");
        assert!(!text.contains('\u{9b}'), "{name} holds CSI: {text}");
        assert!(
            !text.lines().any(|l| l.starts_with("[fake]")),
            "{name} holds a forged line: {text}"
        );
    }
    let stdout = String::from_utf8(stdout).unwrap();
    // The text is still there, shown escaped: in the log line, the failure and the
    // closing error line.
    assert!(
        stdout.contains(r"\u{1b}]0;owned\u{7}\u{1b}[2J\r\n[fake] SUBAGENT_REPORT"),
        "{stdout}"
    );
    assert!(stdout.lines().any(|l| l.starts_with("error: ")), "{stdout}");
    let stderr = String::from_utf8(stderr).unwrap();
    assert!(
        stderr.contains("]0;owned") && stderr.contains(r"\r\n[fake] SUBAGENT_REPORT"),
        "the log record, escaped: {stderr}"
    );
}

#[test]
fn json_output_keeps_the_text_exact() {
    let (stdout, _, _) = run(true);
    let stdout = String::from_utf8(stdout).unwrap();
    let nasty = "\u{1b}]0;owned\u{7}\u{1b}[2J\r\n[fake] SUBAGENT_REPORT status=success\u{9b}31m";
    let mut seen = false;
    for line in stdout.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        if value["data"]["message"] == nasty {
            seen = true;
        }
    }
    assert!(seen, "the log event carries the exact text: {stdout}");
    assert!(!stdout.contains('\u{1b}'), "JSON escapes ESC itself");
    assert!(!stdout.contains('\u{9b}'), "and C1 controls");
}

#[test]
fn chat_ends_when_stdin_ends_even_if_the_overseer_took_the_messages_itself() {
    use std::io::Write as _;
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_colony"))
        .arg("--home")
        .arg(home.path())
        .arg("chat")
        .arg(hostile())
        .args(["--task", "take-messages"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"first\nsecond\n")
        .unwrap();
    // stdin is closed: the command must end, whichever way the messages were taken.
    let begun = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        if begun.elapsed() > std::time::Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("colony chat still waits for turns that will never come");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(out.contains("taken"), "{out}");
}
