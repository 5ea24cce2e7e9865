//! `colony serve` over HTTP: the JSON API the page uses, its live streams and their
//! resumption, the controls and their token, and the bounds a hostile client meets.
//! The colonies it watches run in other `colony` processes on the same home.

mod serve;
mod support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

use serve::{Running, Served, TOKEN};

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// The SSE frames of a live stream until `enough` says stop (or 60 s pass): each frame's
/// fields as (name, value) pairs.
async fn frames(
    response: reqwest::Response,
    enough: impl Fn(&[Vec<(String, String)>]) -> bool,
) -> Vec<Vec<(String, String)>> {
    assert!(response.status().is_success(), "{response:?}");
    let mut body = response.bytes_stream();
    let (mut text, mut frames) = (String::new(), Vec::new());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !enough(&frames) {
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .expect("the stream said enough in time")
            .expect("the stream is open")
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let frame: Vec<(String, String)> = text[..end]
                .lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.to_owned(), v.trim_start().to_owned()))
                .collect();
            text.drain(..end + 2);
            frames.push(frame);
        }
    }
    frames
}

fn field<'a>(frame: &'a [(String, String)], name: &str) -> Option<&'a str> {
    frame
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The ids of the `event` frames.
fn event_ids(frames: &[Vec<(String, String)>]) -> Vec<i64> {
    frames
        .iter()
        .filter(|f| field(f, "event") == Some("event"))
        .map(|f| field(f, "id").unwrap().parse().unwrap())
        .collect()
}

/// Asserts `response` is refused with `status` and the API's error shape,
/// `{"error": "…"}`; the error's words.
async fn refused_with(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status(), status, "{response:?}");
    assert!(
        response
            .headers()
            .get("content-type")
            .is_some_and(|t| t.as_bytes().starts_with(b"application/json")),
        "{response:?}"
    );
    let body: Value = response.json().await.expect("a JSON error");
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {body}"))
        .to_owned()
}

fn waiting(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"task": format!("wait {i}"), "input": {"action": "wait"}}))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controls_need_the_token_and_reach_the_process_holding_the_worker() {
    let home = tempfile::tempdir().unwrap();
    let served = Served::start(home.path());
    let mut fanout = Running::fanout(home.path(), "probe_fixture", &waiting(3), 3);
    let target = served
        .wait_for_worker("running", |w| w["state"] == "running")
        .await;
    let id = target["id"].as_str().unwrap();
    let stop = served.url(&format!("/api/workers/{id}/stop"));

    // Refused without the token, with a wrong one, and with it in the URL.
    for request in [
        client().post(&stop),
        client().post(&stop).bearer_auth("wrong-token-0123456789"),
        client().post(format!("{stop}?token={TOKEN}")),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let still = served.get(&format!("/api/workers/{id}")).await;
    assert_eq!(
        still["worker"]["row"]["state"], "running",
        "a refused stop stopped it"
    );

    // With it: answered by the fan-out's process, the worker journaled stopped.
    let response = client()
        .post(&stop)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert!(answer["answer"]["ok"].as_bool().unwrap(), "{answer}");
    assert!(
        answer["answer"]["outcome"]
            .as_str()
            .unwrap()
            .starts_with("stopped")
    );
    let row = served.get(&format!("/api/workers/{id}")).await["worker"]["row"].clone();
    assert_eq!(row["state"], "stopped");
    assert_eq!(row["report_status"], "stopped");

    // An ended worker, and one the journal does not know.
    let again = client()
        .post(&stop)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    let unknown = client()
        .post(served.url("/api/workers/w-nobody/stop"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    // Stop all: the fan-out's other workers stop, and its process ends.
    let all = client()
        .post(served.url("/api/stop-all"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(all.status(), 202);
    let answers: Value = all.json().await.unwrap();
    assert_eq!(answers["still_running"], 0, "{answers}");
    // The fan-out's colony answers, unless it exited with its last worker first.
    assert!(
        answers["answers"].as_array().unwrap().len() <= 1,
        "{answers}"
    );
    fanout.wait_exit();
    let workers = served.workers().await;
    assert_eq!(workers.len(), 3);
    for w in &workers {
        assert_eq!(w["state"], "stopped", "{w}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_injected_through_the_server_is_a_turn_of_the_overseer_in_another_process() {
    let home = tempfile::tempdir().unwrap();
    let served = Served::start(home.path());
    let mut chat = Running::chat(home.path(), "chat_agent");
    let overseer = served
        .wait_for_worker("persistent and running", |w| {
            w["mode"] == "persistent" && w["state"] == "running"
        })
        .await;
    let id = overseer["id"].as_str().unwrap().to_owned();
    let inject = served.url(&format!("/api/workers/{id}/inject"));

    let refused = client()
        .post(&inject)
        .json(&json!({"message": "no token"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let empty = client()
        .post(&inject)
        .bearer_auth(TOKEN)
        .json(&json!({"message": "  "}))
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 400);
    let oversized = client()
        .post(&inject)
        .bearer_auth(TOKEN)
        .json(&json!({"message": "x".repeat(100_000)}))
        .send()
        .await
        .unwrap();
    refused_with(oversized, 413).await;
    // Bodies that cannot be read are refused in the same JSON shape as every refusal.
    let post = |body: &'static str, json: bool| {
        let request = client().post(&inject).bearer_auth(TOKEN).body(body);
        match json {
            true => request.header("content-type", "application/json"),
            false => request,
        }
        .send()
    };
    refused_with(post("{not json", true).await.unwrap(), 400).await;
    refused_with(post(r#"{"message": "hi"}"#, false).await.unwrap(), 415).await;
    let shape = refused_with(post(r#"{"message": 7}"#, true).await.unwrap(), 422).await;
    assert!(shape.contains("message"), "{shape}");

    let response = client()
        .post(&inject)
        .bearer_auth(TOKEN)
        .json(&json!({"message": "hello from the web"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let begun = Instant::now();
    loop {
        let events = served.get(&format!("/api/workers/{id}/events")).await;
        let turned = events.as_array().unwrap().iter().any(|e| {
            e["event"]["type"] == "TURN_COMPLETED"
                && e["event"]["data"]["message"] == "hello from the web"
        });
        if turned {
            break;
        }
        assert!(
            begun.elapsed() < Duration::from_secs(20),
            "no turn: {events:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    chat.say("and one from the terminal");
    chat.close_stdin();
    chat.wait_exit();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stream_resumes_after_its_last_event_id_without_gaps_or_duplicates() {
    let home = tempfile::tempdir().unwrap();
    let served = Served::start(home.path());
    let mut chat = Running::chat(home.path(), "chat_agent");
    let overseer = served
        .wait_for_worker("persistent", |w| {
            w["mode"] == "persistent" && w["state"] == "running"
        })
        .await;
    let id = overseer["id"].as_str().unwrap().to_owned();
    let live = served.url(&format!("/api/workers/{id}/live"));

    // A first connection: the worker, then every event so far.
    let first = frames(client().get(&live).send().await.unwrap(), |f| {
        !event_ids(f).is_empty()
    })
    .await;
    assert_eq!(field(&first[0], "retry"), Some("500"));
    assert!(first.iter().any(|f| field(f, "event") == Some("worker")));
    let seen = event_ids(&first);

    // Events journaled while no stream is open (all three turns, once they are done)…
    for turn in 0..3 {
        chat.say(&format!("turn {turn}"));
    }
    let begun = Instant::now();
    let all = loop {
        let events = served.get(&format!("/api/workers/{id}/events")).await;
        let turns = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["event"]["type"] == "TURN_COMPLETED")
            .count();
        if turns == 3 {
            break served.event_seqs(&id).await;
        }
        assert!(begun.elapsed() < Duration::from_secs(60), "{events:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // …are exactly what a reconnection with Last-Event-ID gets.
    let last = *seen.last().unwrap();
    let expected: Vec<i64> = all.iter().copied().filter(|&s| s > last).collect();
    let resumed = frames(
        client()
            .get(&live)
            .header("Last-Event-ID", last.to_string())
            .send()
            .await
            .unwrap(),
        |f| event_ids(f).len() >= expected.len(),
    )
    .await;
    assert_eq!(event_ids(&resumed), expected);

    // `after` for a first connection; the header wins over it.
    let from = all[1];
    let after = frames(
        client()
            .get(format!("{live}?after={from}"))
            .send()
            .await
            .unwrap(),
        |f| event_ids(f).len() >= all.len() - 2,
    )
    .await;
    assert_eq!(event_ids(&after), all[2..].to_vec());
    let both = frames(
        client()
            .get(format!("{live}?after={from}"))
            .header("Last-Event-ID", all[all.len() - 2].to_string())
            .send()
            .await
            .unwrap(),
        |f| !event_ids(f).is_empty(),
    )
    .await;
    assert_eq!(event_ids(&both), vec![*all.last().unwrap()]);

    // Live: an event journaled while the stream is open arrives on it.
    let stream = client()
        .get(&live)
        .header("Last-Event-ID", all.last().unwrap().to_string())
        .send()
        .await
        .unwrap();
    chat.say("while you watch");
    let live_frames = frames(stream, |f| {
        f.iter()
            .any(|frame| field(frame, "data").is_some_and(|d| d.contains("while you watch")))
    })
    .await;
    let ids = event_ids(&live_frames);
    assert!(ids.iter().all(|&s| s > *all.last().unwrap()), "{ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_stream_sends_a_page_then_only_the_rows_that_changed() {
    let home = tempfile::tempdir().unwrap();
    let served = Served::start(home.path());
    let tasks: Vec<Value> = (0..4)
        .map(|i| json!({"task": format!("t{i}"), "input": {"action": "wait_ms", "ms": 300 * (i + 1)}}))
        .collect();
    let stream = client()
        .get(served.url("/api/live?limit=10"))
        .send()
        .await
        .unwrap();
    let _fanout = Running::fanout(home.path(), "probe_fixture", &tasks, 4);
    let frames = frames(stream, |f| {
        f.iter().any(|frame| {
            field(frame, "event") == Some("census")
                && field(frame, "data").is_some_and(|d| d.contains("\"completed\":4"))
        })
    })
    .await;
    let named = |name: &str| -> Vec<Value> {
        frames
            .iter()
            .filter(|f| field(f, "event") == Some(name))
            .map(|f| serde_json::from_str(field(f, "data").unwrap()).unwrap())
            .collect()
    };
    let pages = named("page");
    let rows = named("rows");
    // The empty page first, then the page of four; later changes only as rows.
    assert_eq!(pages[0]["total"], 0);
    assert_eq!(pages.last().unwrap()["total"], 4);
    assert!(!rows.is_empty(), "no row deltas: {frames:?}");
    for delta in &rows {
        assert!(delta["workers"].as_array().unwrap().len() <= 4);
    }
    let completed: usize = rows
        .iter()
        .flat_map(|d| d["workers"].as_array().unwrap().clone())
        .filter(|w| w["state"] == "completed")
        .count();
    assert!(completed >= 1, "{rows:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_workers_come_a_page_at_a_time() {
    let home = tempfile::tempdir().unwrap();
    // A journal with 10,000 workers, written as a colony writes it.
    {
        let journal = colony::Journal::open(home.path().join("journal.db")).unwrap();
        for i in 0..10_000 {
            journal.add_worker(&colony::WorkerRecord {
                id: format!("w-{i:05}"),
                colony_id: "big".into(),
                plugin: "echo".into(),
                plugin_source: None,
                task: format!("task {i}"),
                input: Value::Null,
                mode: colony::WorkerMode::Ephemeral,
                state: if i % 2 == 0 {
                    colony::RecordState::Queued
                } else {
                    colony::RecordState::Completed
                },
                storage: None,
                created_at: chrono::Utc::now(),
                started_at: None,
                ended_at: None,
                interrupted_at: None,
                result: None,
                batch: None,
                token_budget: None,
                tool_call_budget: None,
                plugin_sha256: None,
                lineage: None,
            });
        }
        journal.flush().unwrap();
    }
    let served = Served::start(home.path());
    let census = served.get("/api/colonies").await;
    assert_eq!(
        census[0]["states"],
        json!({"completed": 5000, "queued": 5000})
    );

    let page = served.get("/api/workers").await;
    assert_eq!(page["total"], 10_000);
    assert_eq!(page["workers"].as_array().unwrap().len(), 50);
    let huge = served.get("/api/workers?limit=1000000&offset=9990").await;
    assert_eq!(huge["workers"].as_array().unwrap().len(), 10);
    assert_eq!(huge["workers"][0]["id"], "w-09990");
    let capped = served.get("/api/workers?limit=1000000").await;
    assert_eq!(
        capped["workers"].as_array().unwrap().len(),
        colony::MAX_PAGE as usize
    );
    let queued = served
        .get("/api/workers?state=queued&offset=100&limit=5")
        .await;
    assert_eq!(queued["total"], 5000);
    assert_eq!(queued["workers"][0]["id"], "w-00200");

    // The live list's snapshot is one page, not the journal.
    let stream = client().get(served.url("/api/live")).send().await.unwrap();
    let first = frames(stream, |f| {
        f.iter().any(|frame| field(frame, "event") == Some("page"))
    })
    .await;
    let bytes: usize = first
        .iter()
        .map(|f| field(f, "data").map_or(0, str::len))
        .sum();
    assert!(bytes < 64 * 1024, "the snapshot is {bytes} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_are_refused() {
    let home = tempfile::tempdir().unwrap();
    let served = Served::start(home.path());
    let get = |path: &str| client().get(served.url(path));

    // Another site's name (DNS rebinding) or origin.
    let rebound = get("/api/colonies")
        .header("Host", "evil.example:80")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403);
    let foreign = client()
        .post(served.url("/api/stop-all"))
        .bearer_auth(TOKEN)
        .header("Origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    // Another site's page making the browser fetch the API (no Origin on a no-cors GET).
    let cross = get("/api/colonies")
        .header("Sec-Fetch-Site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    // No CORS opening, and the page's guards.
    let page = get("/")
        .header("Origin", format!("http://{}", served.address()))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers().get("access-control-allow-origin").is_none());
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");

    // Bad input.
    assert_eq!(
        get("/api/workers?state=bogus")
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    let limit = refused_with(get("/api/workers?limit=-1").send().await.unwrap(), 400).await;
    assert!(limit.contains("limit"), "{limit}");
    refused_with(get("/api/workers?offset=ten").send().await.unwrap(), 400).await;
    refused_with(
        get("/api/workers/x/events?after=soon")
            .send()
            .await
            .unwrap(),
        400,
    )
    .await;
    assert_eq!(
        get("/api/workers/nobody").send().await.unwrap().status(),
        404
    );
    assert_eq!(
        get("/api/workers/nobody/live")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        get("/assets/../../etc/passwd")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // Live streams are bounded: the 65th is refused while 64 are open, served again
    // once one closes.
    let mut open = Vec::new();
    for _ in 0..64 {
        let stream = get("/api/live").send().await.unwrap();
        assert_eq!(stream.status(), 200);
        open.push(stream);
    }
    assert_eq!(get("/api/live").send().await.unwrap().status(), 503);
    drop(open.pop());
    let begun = Instant::now();
    while get("/api/live").send().await.unwrap().status() != 200 {
        assert!(begun.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_loopback_every_read_needs_the_token_but_the_page_shell_does_not() {
    let home = tempfile::tempdir().unwrap();
    let served = Served::on(home.path(), "0.0.0.0:0");
    let get = |path: &str| client().get(served.url(path));
    assert_eq!(get("/api/colonies").send().await.unwrap().status(), 401);
    assert_eq!(get("/api/live").send().await.unwrap().status(), 401);
    let wrong = get("/api/colonies?token=wrong-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let by_query = get(&format!("/api/colonies?token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_query.status(), 200);
    let by_header = get("/api/colonies")
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(by_header.status(), 200);
    // The page and its files hold no data: they load, then send the token.
    for shell in [
        "/",
        "/workers/w-1",
        "/assets/colony.js",
        "/assets/style.css",
    ] {
        assert_eq!(get(shell).send().await.unwrap().status(), 200, "{shell}");
    }
    // A control still needs it in the header, not the URL.
    let in_url = client()
        .post(served.url(&format!("/api/stop-all?token={TOKEN}")))
        .send()
        .await
        .unwrap();
    assert_eq!(in_url.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_past_the_bound_wait_and_are_served_once_others_close() {
    let home = tempfile::tempdir().unwrap();
    let served = Served::start(home.path());
    // 256 connections that never send a request hold every slot.
    let mut idle: Vec<std::net::TcpStream> = (0..256)
        .map(|_| std::net::TcpStream::connect(served.address()).unwrap())
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let waiting = client()
        .get(served.url("/api/colonies"))
        .timeout(Duration::from_secs(1))
        .send()
        .await;
    assert!(
        waiting.is_err(),
        "served past the connection bound: {waiting:?}"
    );
    // One closes: the next client is served.
    drop(idle.pop());
    let served_now = client()
        .get(served.url("/api/colonies"))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .unwrap();
    assert_eq!(served_now.status(), 200);
}

/// Reads `stream` until the server closes it (or 20 s pass): how long that took.
fn closed_after(mut stream: std::net::TcpStream, begun: Instant) -> Duration {
    use std::io::Read as _;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut buf = [0u8; 1024];
    match stream.read(&mut buf) {
        Ok(0) => begun.elapsed(),
        Ok(n) => panic!(
            "the server answered a request it never got: {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => begun.elapsed(),
        Err(e) => panic!("the connection was still open after 20 s: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sending_slowly_or_nothing_loses_its_connection_at_the_idle_timeout() {
    use std::io::Write as _;
    let home = tempfile::tempdir().unwrap();
    let served = Served::with(home.path(), &["--idle-timeout", "2s"]);
    let begun = Instant::now();
    let silent = std::net::TcpStream::connect(served.address()).unwrap();
    // A request's headers, a line every 300 ms, never ending: the bytes keep coming,
    // but nothing is ever answered.
    let mut slow = std::net::TcpStream::connect(served.address()).unwrap();
    let reader = slow.try_clone().unwrap();
    let address = served.address().to_owned();
    let trickle = std::thread::spawn(move || {
        let mut lines = 0;
        let start = format!("GET /api/colonies HTTP/1.1\r\nHost: {address}\r\n");
        if slow.write_all(start.as_bytes()).is_err() {
            return lines;
        }
        while slow.write_all(b"X-Slow: 1\r\n").is_ok() && lines < 100 {
            lines += 1;
            std::thread::sleep(Duration::from_millis(300));
        }
        lines
    });
    let slow_closed = tokio::task::spawn_blocking(move || closed_after(reader, begun));
    let silent_closed = closed_after(silent, begun);
    let slow_closed = slow_closed.await.unwrap();
    for (who, after) in [("silent", silent_closed), ("slow", slow_closed)] {
        assert!(
            after >= Duration::from_millis(1900) && after < Duration::from_secs(10),
            "the {who} connection closed after {after:?}, not at the 2 s idle timeout"
        );
    }
    let lines = trickle.join().unwrap();
    assert!(
        lines >= 5,
        "the slow client sent {lines} header lines before it was cut"
    );
    // A client that asks is answered.
    assert!(served.get("/api/colonies").await.is_array());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_stream_outlives_the_idle_timeout_on_its_keep_alives() {
    let home = tempfile::tempdir().unwrap();
    let served = Served::with(home.path(), &["--idle-timeout", "2s"]);
    let begun = Instant::now();
    let stream = client().get(served.url("/api/live")).send().await.unwrap();
    // Nothing changes in an empty home: after the snapshot only keep-alive comments
    // (`:`) come, at least one a second, and the stream stays open past 2 s.
    let seen = frames(stream, |frames| {
        frames.iter().filter(|f| field(f, "").is_some()).count() >= 5
    })
    .await;
    assert!(
        begun.elapsed() >= Duration::from_secs(3),
        "five keep-alives in {:?}",
        begun.elapsed()
    );
    assert!(seen.iter().any(|f| field(f, "event") == Some("census")));
}

#[test]
fn an_idle_timeout_too_short_for_keep_alives_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let out = serve::colony(home.path())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--idle-timeout",
            "100ms",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--idle-timeout must be 1s or more"),
        "{stderr}"
    );
}
