//! `colony serve` in a real browser: Debian's chromium, headless, driven through
//! chromedriver (WebDriver, with fantoccini). The page watches colonies that other
//! `colony` processes run on the same home, as a user would: rows change state live, a
//! control without the token is refused, with it a worker stops and an overseer takes
//! a message, a hostile summary stays text, a model's streamed text shows, and a page
//! whose server went away and came back has every event once.
//!
//! Screenshots of the pages go to `target/screenshots/` (for people, not compared).

mod serve;
mod support;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use serve::{Running, Served, TOKEN, target_dir};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long the page may take to show what the test waits for.
const PATIENCE: Duration = Duration::from_secs(30);

/// chromedriver on a free loopback port; killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Self {
        assert!(
            std::path::Path::new(CHROMEDRIVER).exists(),
            "{CHROMEDRIVER} is missing: install Debian's chromium and chromium-driver \
             (scripts/install-toolchains.sh does)"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// A headless browser session, once chromedriver answers.
    async fn browser(&self) -> Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--disable-gpu", "--window-size=1400,1000"],
            }),
        );
        let begun = Instant::now();
        loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&self.url)
                .await
            {
                Ok(client) => return client,
                Err(e) if begun.elapsed() < PATIENCE => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("no browser session from chromedriver: {e}"),
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `script` (a JavaScript function body returning a value) until it returns
/// something truthy; that value.
async fn until(page: &Client, what: &str, script: &str) -> Value {
    let begun = Instant::now();
    loop {
        let value = page.execute(script, vec![]).await.unwrap_or(Value::Null);
        let truthy = match &value {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64() != Some(0.0),
            Value::String(s) => !s.is_empty(),
            _ => true,
        };
        if truthy {
            return value;
        }
        if begun.elapsed() > PATIENCE {
            let _ = shot(page, &format!("failed-{}", what.replace(' ', "-"))).await;
            panic!("the page never showed {what} ({script})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn shot(page: &Client, name: &str) -> PathBuf {
    let dir = target_dir().join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, page.screenshot().await.unwrap()).unwrap();
    path
}

async fn click(page: &Client, css: &str) {
    page.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap();
}

/// A worker's row on the list, by its task (the row's `data-state` is its state).
fn row_of(task: &str) -> String {
    format!(
        "return [...document.querySelectorAll('#workers tbody tr')]
            .find(tr => tr.querySelector('td.task').textContent === {task:?})"
    )
}

/// Waits (reading the journal itself: the server may be down) until worker `id` has
/// completed `turns` turns.
async fn wait_for_turns(home: &std::path::Path, id: &str, turns: usize) {
    let journal = colony::Journal::open(home.join("journal.db")).unwrap();
    let begun = Instant::now();
    loop {
        let done = journal
            .events(Some(id), 0, usize::MAX)
            .unwrap()
            .iter()
            .filter(|(_, e)| e.event_type == colony::EventType::TurnCompleted)
            .count();
        if done >= turns {
            return;
        }
        assert!(begun.elapsed() < PATIENCE, "{done} turns of {turns}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Opens `url` and waits until its live stream is open.
async fn open_live(page: &Client, url: &str) {
    page.goto(url).await.unwrap();
    until(
        page,
        "a live stream",
        "return document.body.dataset.live === 'open'",
    )
    .await;
}

/// Waits until the row of `task` is in `state`.
async fn row_in_state(page: &Client, task: &str, state: &str) {
    let script = format!("{}?.dataset.state === '{state}'", row_of(task));
    until(page, &format!("{task} {state}"), &script).await;
}

/// Clicks the stop button of the row of `task`.
async fn click_stop(page: &Client, task: &str) {
    let row = row_of(task);
    let script = format!(
        "{}.querySelector('button.stop').click()",
        row.trim_start_matches("return ")
    );
    page.execute(&script, vec![]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_colonies_live_and_controls_them_with_the_token() {
    let home = tempfile::tempdir().unwrap();
    support::write_scripted_host_config(home.path());
    let mut served = Served::start(home.path());
    let driver = Driver::start();
    let page = driver.browser().await;

    // The list, live, before anything runs (no token in this tab yet).
    open_live(&page, &served.url("/")).await;

    // A fan-out in another process: rows appear and change state as it runs.
    let hostile = "<script>window.pwned=1</script><img src=x onerror=\"window.pwned=2\">";
    let tasks = vec![
        json!({"task": "hostile", "input": {"action": "report",
            "reports": [{"status": "success", "summary": hostile}]}}),
        json!({"task": "short 1", "input": {"action": "wait_ms", "ms": 3000}}),
        json!({"task": "short 2", "input": {"action": "wait_ms", "ms": 3000}}),
        json!({"task": "long", "input": {"action": "wait"}}),
    ];
    let mut fanout = Running::fanout(home.path(), "probe_fixture", &tasks, 4);
    row_in_state(&page, "short 1", "running").await;
    row_in_state(&page, "short 1", "completed").await;
    row_in_state(&page, "short 2", "completed").await;
    until(&page, "the colony counted", "return document.querySelector('#colonies tr[data-colony=cli]')?.textContent.includes('completed 3')").await;

    // The hostile summary is text on the page: no script ran, no element was made.
    let inert = until(
        &page,
        "the hostile summary as text",
        &format!(
            "const tr = {}; return tr && tr.querySelector('td.report').textContent.includes({hostile:?})
                 && window.pwned === undefined && !document.querySelector('#workers script, #workers img')",
            row_of("hostile").trim_start_matches("return ")
        ),
    )
    .await;
    assert_eq!(inert, Value::Bool(true));

    // A control without the token is refused, and the worker runs on.
    click_stop(&page, "long").await;
    let said = until(
        &page,
        "the refusal",
        "return document.querySelector('#notice.error')?.textContent",
    )
    .await;
    assert!(said.as_str().unwrap().contains("token"), "{said}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let long = served
        .wait_for_worker("long", |w| w["task"] == "long")
        .await;
    assert_eq!(long["state"], "running", "a refused stop stopped it");
    shot(&page, "index").await;

    // With the token (the URL the server printed): the stop goes through.
    page.goto(&served.url(&format!("/?token={TOKEN}")))
        .await
        .unwrap();
    until(
        &page,
        "a live stream",
        "return document.body.dataset.live === 'open'",
    )
    .await;
    let url = page.current_url().await.unwrap();
    assert!(
        !url.as_str().contains("token"),
        "the token stays in the address bar: {url}"
    );
    row_in_state(&page, "long", "running").await;
    click_stop(&page, "long").await;
    row_in_state(&page, "long", "stopped").await;
    until(
        &page,
        "the stop's answer",
        "return document.querySelector('#notice.ok')?.textContent.includes('stopped')",
    )
    .await;
    fanout.wait_exit();

    // A model's streamed text, on the worker's page.
    let mut agent = Running::fanout(
        home.path(),
        "agent_loop",
        &[json!({"task": "summarise the notes"})],
        1,
    );
    agent.wait_exit();
    let agent_id = served
        .wait_for_worker("the agent loop", |w| w["plugin"] == "agent_loop")
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    page.goto(&served.url(&format!("/workers/{agent_id}")))
        .await
        .unwrap();
    until(
        &page,
        "the model's text",
        "return document.querySelector('#stream').textContent.includes('I will check the time')",
    )
    .await;
    until(
        &page,
        "the tokens used",
        "return document.querySelector('dd[data-field=tokens]')?.textContent === '388'",
    )
    .await;
    shot(&page, "worker-model-text").await;

    // An overseer in `colony chat`: opened from the list, a message injected from its page.
    let mut chat = Running::chat(home.path(), "chat_agent");
    page.goto(&served.url("/")).await.unwrap();
    until(
        &page,
        "the overseer's row",
        "return document.querySelector('#workers tr.persistent[data-state=running] a')",
    )
    .await;
    click(&page, "#workers tr.persistent[data-state=running] a").await;
    until(
        &page,
        "the worker's stream",
        "return document.body.dataset.live === 'open' && document.body.dataset.state === 'running'",
    )
    .await;
    let overseer = page
        .find(Locator::Id("worker-id"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    page.find(Locator::Id("message"))
        .await
        .unwrap()
        .send_keys("hello from the page")
        .await
        .unwrap();
    click(&page, "#inject button").await;
    until(&page, "the turn", "return [...document.querySelectorAll('#turns li')].some(li => li.textContent.includes('hello from the page'))").await;
    until(&page, "the conversation", "return document.querySelector('#conversation').textContent.includes('hello from the page')").await;

    // The server goes away while the overseer works on; the page reconnects and has
    // every event exactly once.
    served.kill();
    until(
        &page,
        "the lost stream",
        "return document.body.dataset.live === 'closed'",
    )
    .await;
    chat.say("while the server is down 1");
    chat.say("while the server is down 2");
    wait_for_turns(home.path(), &overseer, 3).await;
    served.restart();
    let journaled = served.event_seqs(&overseer).await;
    assert!(journaled.len() >= 5, "{journaled:?}");
    let shown = until(
        &page,
        "every event after reconnecting",
        &format!(
            "const seqs = [...document.querySelectorAll('#events li')].map(li => +li.dataset.seq);
             return seqs.length >= {} && seqs",
            journaled.len()
        ),
    )
    .await;
    let shown: Vec<i64> = serde_json::from_value(shown).unwrap();
    assert_eq!(shown, journaled, "events on the page vs the journal");
    let duplicates = page
        .execute("return document.body.dataset.duplicates", vec![])
        .await
        .unwrap();
    assert_eq!(duplicates, json!("0"));
    until(
        &page,
        "three turns",
        "return document.querySelectorAll('#turns li').length === 3",
    )
    .await;
    shot(&page, "worker").await;

    // Stop all, from the list.
    open_live(&page, &served.url("/")).await;
    click(&page, "#stop-all").await;
    page.accept_alert().await.unwrap();
    until(
        &page,
        "stop all's answer",
        "return document.querySelector('#notice.ok')?.textContent.includes('workers stopped')",
    )
    .await;
    chat.wait_exit();
    until(
        &page,
        "the overseer stopped",
        "return document.querySelector('#workers tr.persistent')?.dataset.state === 'stopped'",
    )
    .await;
    shot(&page, "index-stopped").await;
    page.close().await.unwrap();
}
