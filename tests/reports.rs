//! Report precedence, exactly as the reference: explicit (last call wins) over
//! synthesised, with the host validating what the guest reports.

use colony::{EventBus, ReportStatus, WorkerSpec, WorkerState};
use colony_tests::{probe_spec, worker};
use serde_json::{Value, json};

async fn run_probe(id: &str, input: Value) -> (colony::WorkerResult, WorkerState) {
    let bus = EventBus::new();
    let action = input["action"].as_str().unwrap().to_owned();
    let w = worker("probe-fixture", probe_spec(id, &action, input), &bus).await;
    let result = w.run().await.unwrap();
    (result, w.state())
}

#[tokio::test]
async fn explicit_report_wins_over_the_synthesised_one() {
    let bus = EventBus::new();
    let spec =
        WorkerSpec::ephemeral("echo-1", "one two three four").with_input(json!({"max_words": 2}));
    let w = worker("echo-agent", spec, &bus).await;
    let result = w.run().await.unwrap();
    assert_eq!(result.status, ReportStatus::Success);
    assert_eq!(result.summary, "Summary: one two …");
    assert_eq!(result.data["words"], 4);
    // Output still comes from the run itself.
    assert_eq!(result.output["summary"], "one two …");
    assert_eq!(result.error, None);
}

#[tokio::test]
async fn no_report_and_success_synthesises_a_success_report() {
    let bus = EventBus::new();
    let task = format!("count {}", "these words ".repeat(10));
    let w = worker(
        "silent-agent",
        WorkerSpec::ephemeral("silent-1", task.clone()),
        &bus,
    )
    .await;
    let result = w.run().await.unwrap();
    assert_eq!(result.status, ReportStatus::Success);
    let head: String = task.chars().take(80).collect();
    assert_eq!(
        result.summary,
        format!("Completed task '{head}' with 2 outputs.")
    );
    assert_eq!(result.data, result.output);
    assert_eq!(result.data["words"], 21);
}

#[tokio::test]
async fn no_report_and_failure_synthesises_a_failed_report() {
    let (result, state) =
        run_probe("fail-1", json!({"action": "fail", "error": "no network"})).await;
    assert_eq!(state, WorkerState::Failed);
    assert_eq!(result.status, ReportStatus::Failed);
    assert_eq!(result.summary, "Task 'probe fail' failed: no network");
    assert_eq!(result.error.as_deref(), Some("no network"));
    assert!(result.data.is_empty());
}

#[tokio::test]
async fn the_last_report_wins() {
    let (result, _) = run_probe(
        "twice",
        json!({"action": "report", "reports": [
            {"status": "failed", "summary": "first", "data": "{\"n\": 1}"},
            {"status": "partial", "summary": "second", "data": "{\"n\": 2}"},
        ]}),
    )
    .await;
    assert_eq!(result.status, ReportStatus::Partial);
    assert_eq!(result.summary, "second");
    assert_eq!(Value::Object(result.data), json!({"n": 2}));
}

#[tokio::test]
async fn invalid_report_data_is_refused_and_the_previous_report_stays() {
    let (result, _) = run_probe(
        "bad-json",
        json!({"action": "report", "reports": [
            {"status": "success", "summary": "good", "data": "{\"ok\": true}"},
            {"status": "failed", "summary": "bad", "data": "{not json"},
        ]}),
    )
    .await;
    let answers = &result.output["answers"];
    assert_eq!(answers[0], json!({"ok": true}));
    let error = answers[1]["error"].as_str().unwrap();
    assert!(
        error.starts_with("report data is not valid JSON"),
        "{error}"
    );
    assert_eq!(result.summary, "good");
    assert_eq!(result.status, ReportStatus::Success);
}

#[tokio::test]
async fn oversized_report_payloads_are_refused_with_the_limit() {
    let limits = colony::Limits::default();
    let (result, _) = run_probe(
        "too-big",
        json!({"action": "report", "reports": [
            {"status": "success", "summary_bytes": limits.max_report_summary_bytes},
            {"status": "success", "summary_bytes": limits.max_report_summary_bytes + 1},
        ]}),
    )
    .await;
    let answers = &result.output["answers"];
    assert_eq!(
        answers[0],
        json!({"ok": true}),
        "a summary at the limit is accepted"
    );
    assert_eq!(
        answers[1]["error"],
        format!(
            "report summary is {} bytes, over the limit of {} bytes",
            limits.max_report_summary_bytes + 1,
            limits.max_report_summary_bytes
        )
    );
    assert_eq!(result.summary.len(), limits.max_report_summary_bytes);
}

#[tokio::test]
async fn report_data_is_normalised_like_the_reference() {
    let (result, _) = run_probe(
        "normalise",
        json!({"action": "report", "reports": [{"status": "partial", "summary": "", "data": "[1, 2]"}]}),
    )
    .await;
    assert_eq!(result.summary, "(worker returned partial with no summary)");
    assert_eq!(Value::Object(result.data), json!({"value": [1, 2]}));
}

#[tokio::test]
async fn an_explicit_report_is_kept_when_the_run_then_fails() {
    let (result, state) = run_probe(
        "report-then-fail",
        json!({"action": "report", "then_fail": true,
            "reports": [{"status": "partial", "summary": "half done", "data": "{}"}]}),
    )
    .await;
    assert_eq!(state, WorkerState::Failed);
    assert_eq!(result.status, ReportStatus::Partial);
    assert_eq!(result.summary, "half done");
    assert_eq!(result.error.as_deref(), Some("failed after reporting"));
}
