//! [`Divergence`]: where a replayed guest stopped asking what it asked when recorded.

use serde::Serialize;
use serde_json::Value;

use super::StepKind;

/// How many characters of each differing value a divergence quotes.
const QUOTE_CHARS: usize = 200;

/// A replayed guest did not do what the recording says it did at step `step`.
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[error("replay diverged at step {step}: {detail}")]
pub struct Divergence {
    /// The step (from 1) where it diverged.
    pub step: u64,
    /// The call the recording has there (none: the recording ended before).
    pub recorded: Option<StepKind>,
    /// The call the guest made there (none: it ended without making one).
    pub called: Option<StepKind>,
    /// Where and how the requests differ, in words.
    pub detail: String,
}

impl Divergence {
    /// The guest made `called` where the recording has `recorded`.
    pub(crate) fn other_call(step: u64, recorded: StepKind, called: StepKind) -> Self {
        Self {
            step,
            recorded: Some(recorded),
            called: Some(called),
            detail: format!("the recording has {recorded} here, the guest called {called}"),
        }
    }

    /// The guest called `called` after the recording's last step.
    pub(crate) fn past_the_end(step: u64, called: StepKind, request: &Value) -> Self {
        let ends = match step {
            1 => "the recording has no step (was the worker recorded?)".to_owned(),
            _ => format!("the recording ends after step {}", step - 1),
        };
        Self {
            step,
            recorded: None,
            called: Some(called),
            detail: format!("{ends}, the guest called {called} with {}", quote(request)),
        }
    }

    /// The recording was cut at its bound here.
    pub(crate) fn cut(step: u64) -> Self {
        Self {
            step,
            recorded: Some(StepKind::Cut),
            called: None,
            detail: "the recording was cut here at its size bound; nothing after it can be \
                     replayed"
                .into(),
        }
    }

    /// The recorded answer at `step` cannot be read as a `kind` answer.
    pub(crate) fn unreadable(step: u64, kind: StepKind, why: &str) -> Self {
        Self {
            step,
            recorded: Some(kind),
            called: Some(kind),
            detail: format!("the recorded answer to {kind} cannot be read: {why}"),
        }
    }

    /// The guest ended at `step` while the recording goes on with `next`.
    pub(crate) fn ended_early(step: u64, next: StepKind) -> Self {
        Self {
            step,
            recorded: Some(next),
            called: None,
            detail: format!("the guest ended; the recording goes on with {next} here"),
        }
    }

    /// Same call, another request: `recorded` (if kept) against `now`.
    pub(crate) fn other_request(
        step: u64,
        kind: StepKind,
        recorded: Option<&Value>,
        now: &Value,
    ) -> Self {
        let detail = match recorded {
            Some(recorded) => match first_difference(recorded, now, String::new()) {
                Some((path, was, is)) => {
                    let path = if path.is_empty() {
                        "the request".into()
                    } else {
                        path
                    };
                    format!("{kind} asked something else: at {path}, recorded {was}, now {is}")
                }
                None => format!("{kind} asked something else (same JSON, other hash)"),
            },
            None => format!(
                "{kind} asked something else (the recorded request was too large to keep; \
                 now {})",
                quote(now)
            ),
        };
        Self {
            step,
            recorded: Some(kind),
            called: Some(kind),
            detail,
        }
    }
}

/// The first place `was` and `is` differ: its JSON path and both values, quoted.
fn first_difference(was: &Value, is: &Value, path: String) -> Option<(String, String, String)> {
    match (was, is) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|key| {
                let at = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => first_difference(x, y, at),
                    (x, y) => Some((at, quote_opt(x), quote_opt(y))),
                }
            })
        }
        (Value::Array(a), Value::Array(b)) => {
            let shared = a
                .iter()
                .zip(b)
                .enumerate()
                .find_map(|(i, (x, y))| first_difference(x, y, format!("{path}[{i}]")));
            shared.or_else(|| {
                (a.len() != b.len()).then(|| {
                    let i = a.len().min(b.len());
                    (
                        format!("{path}[{i}]"),
                        quote_opt(a.get(i)),
                        quote_opt(b.get(i)),
                    )
                })
            })
        }
        (a, b) if a == b => None,
        (a, b) => Some((path, quote(a), quote(b))),
    }
}

fn quote_opt(value: Option<&Value>) -> String {
    value.map_or_else(|| "nothing".to_owned(), quote)
}

/// A value as JSON, cut to [`QUOTE_CHARS`] characters.
fn quote(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= QUOTE_CHARS {
        return text;
    }
    let cut: String = text.chars().take(QUOTE_CHARS).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_first_differing_path_is_named_with_both_values() {
        let was = json!({"system": "s", "messages": [{"role": "user", "content": "Summarise A"}]});
        let is = json!({"system": "s", "messages": [{"role": "user", "content": "Summarise B"}]});
        let d = Divergence::other_request(3, StepKind::Llm, Some(&was), &is);
        assert_eq!(
            d.detail,
            "llm.complete asked something else: at messages[0].content, recorded \
             \"Summarise A\", now \"Summarise B\""
        );
        let longer = json!({"system": "s", "messages": [{"role": "user", "content": "Summarise A"}, {"role": "user", "content": "more"}]});
        let d = Divergence::other_request(3, StepKind::Llm, Some(&was), &longer);
        assert!(
            d.detail.contains("at messages[1], recorded nothing, now {"),
            "{}",
            d.detail
        );
    }

    #[test]
    fn long_values_are_quoted_cut() {
        let d = Divergence::other_request(1, StepKind::Tool, None, &json!("x".repeat(10_000)));
        assert!(d.detail.len() < 600, "{}", d.detail.len());
    }
}
