//! Tool names as OpenAI-compatible endpoints accept them.
//!
//! Why: Colony's tool names carry dots, colons and slashes (`files.read`,
//! `mcp:time/get_current_time`), and real chat-completions endpoints refuse any name
//! outside `^[a-zA-Z0-9_-]{1,64}$`. The provider sends each name in that alphabet
//! (`files_read`, `mcp_time_get_current_time`; a clash gets a numeric suffix) and maps
//! the model's tool calls back, so guests and manifests keep the host's names.

use std::collections::HashMap;

use super::ChatRequest;

/// The longest name the endpoints accept.
const MAX_LEN: usize = 64;

/// One request's names: host name ↔ wire name.
#[derive(Debug, Default)]
pub(super) struct WireNames {
    to_wire: HashMap<String, String>,
    to_host: HashMap<String, String>,
    /// The next suffix to try for a base name: many names sharing one base cost one
    /// probe each, not one per earlier name.
    next_suffix: HashMap<String, usize>,
}

impl WireNames {
    /// The names of `request`'s tools and of the tool calls in its history.
    pub(super) fn of(request: &ChatRequest) -> Self {
        let mut names = Self::default();
        let called = request
            .messages
            .iter()
            .flat_map(|m| m.tool_calls.iter().map(|c| c.name.as_str()));
        for name in request.tools.iter().map(|t| t.name.as_str()).chain(called) {
            names.add(name);
        }
        names
    }

    fn add(&mut self, name: &str) {
        if self.to_wire.contains_key(name) {
            return;
        }
        let base = encode(name);
        let mut wire = base.clone();
        while self.to_host.contains_key(&wire) {
            let n = self.next_suffix.entry(base.clone()).or_insert(2);
            let suffix = format!("_{n}");
            *n += 1;
            let keep = base.len().min(MAX_LEN - suffix.len());
            wire = format!("{}{suffix}", &base[..keep]);
        }
        self.to_wire.insert(name.to_owned(), wire.clone());
        self.to_host.insert(wire, name.to_owned());
    }

    /// `name` as sent.
    pub(super) fn wire<'a>(&'a self, name: &'a str) -> &'a str {
        self.to_wire.get(name).map_or(name, String::as_str)
    }

    /// The host's name of what the model called `wire` (unknown names stay as they are).
    pub(super) fn host(&self, wire: String) -> String {
        self.to_host.get(&wire).cloned().unwrap_or(wire)
    }
}

/// `name` in `[a-zA-Z0-9_-]`, at most [`MAX_LEN`] bytes, never empty.
fn encode(name: &str) -> String {
    let mut wire: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_LEN)
        .collect();
    if wire.is_empty() {
        wire.push_str("tool");
    }
    wire
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ToolSpec;

    fn request(names: &[&str]) -> ChatRequest {
        ChatRequest {
            tools: names
                .iter()
                .map(|n| ToolSpec {
                    name: (*n).to_owned(),
                    description: String::new(),
                    parameters: serde_json::json!({}),
                })
                .collect(),
            ..ChatRequest::default()
        }
    }

    #[test]
    fn names_go_out_in_the_api_alphabet_and_come_back_as_they_were() {
        let names = WireNames::of(&request(&[
            "files.read",
            "files_read",
            "mcp:time/now",
            "x-y",
        ]));
        assert_eq!(names.wire("files.read"), "files_read");
        assert_eq!(names.wire("files_read"), "files_read_2");
        assert_eq!(names.wire("mcp:time/now"), "mcp_time_now");
        assert_eq!(names.wire("x-y"), "x-y");
        assert_eq!(names.host("files_read".into()), "files.read");
        assert_eq!(names.host("files_read_2".into()), "files_read");
        assert_eq!(names.host("mcp_time_now".into()), "mcp:time/now");
        assert_eq!(names.host("unknown".into()), "unknown");
        // Many names sharing one encoding: each gets its own suffix, all map back.
        let many: Vec<String> = (0..2000)
            .map(|i| format!("{}.{i}", "x".repeat(70)))
            .collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let names = WireNames::of(&request(&refs));
        let wires: std::collections::HashSet<&str> = many.iter().map(|n| names.wire(n)).collect();
        assert_eq!(wires.len(), 2000);
        assert!(wires.iter().all(|w| w.len() <= 64));
        for name in &many {
            assert_eq!(&names.host(names.wire(name).to_owned()), name);
        }
        let long = "é".repeat(100);
        let names = WireNames::of(&request(&[&long]));
        assert_eq!(names.wire(&long).len(), 64);
    }
}
