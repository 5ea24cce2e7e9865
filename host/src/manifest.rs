//! Plugin manifests: which component a plugin is, what it is granted, and its limits.
//!
//! A manifest is a TOML file beside the component (e.g. `summariser.toml`):
//!
//! ```toml
//! name = "summariser"                  # defaults to the manifest's file stem
//! component = "summariser.wasm"        # relative to the manifest
//! sha256 = "9f86d08…"                  # optional pin: a mismatch refuses to load
//!
//! [grants]
//! env = ["LANG"]                       # host variables the guest may read, by name
//! network = ["api.example.com:443", "*.example.org"]   # outbound hosts, exact or wildcard
//!
//! [[grants.dirs]]
//! host = "shared"                      # relative to the manifest
//! guest = "/shared"
//! access = "read-only"                 # or "read-write"
//!
//! [limits]                             # any field of `Limits`, see limits.rs
//! memory_bytes = 33554432
//! run_timeout = "30s"
//!
//! [tool]                               # how `colony mcp` offers it (optional)
//! name = "summarise"
//! description = "Summarises a text."
//! input_schema = { type = "object", properties = { text = { type = "string" } } }
//! ```
//!
//! Absent means denied (grants) or the host's default (limits). Unknown fields anywhere
//! are rejected with an error naming the field and the file, so a typo never silently
//! widens or narrows a sandbox.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::ManifestError;
use crate::sandbox::Grants;

/// A parsed plugin manifest, with paths resolved against its folder.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The plugin's name.
    pub name: String,
    /// The manifest file itself.
    pub path: PathBuf,
    /// The component file.
    pub component: PathBuf,
    /// The pinned sha256 of the component (lower-case hex), if any.
    pub sha256: Option<String>,
    /// What the plugin's workers may reach.
    pub grants: Grants,
    /// Limit overrides (a TOML table of `Limits` fields), applied over the host's.
    pub limits: toml::Table,
    /// How the plugin is offered as a tool (`colony mcp`), if the manifest says.
    pub tool: Option<ToolDescription>,
}

/// The `[tool]` table: the plugin as one tool of `colony mcp` — its name, what it does
/// and the JSON schema of its input.
///
/// ```toml
/// [tool]
/// name = "summarise"
/// description = "Summarises a text."
/// input_schema = { type = "object", properties = { text = { type = "string" } } }
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolDescription {
    /// The tool's name. Default: the plugin's name.
    pub name: Option<String>,
    /// What it does, for the model. Default: none.
    #[serde(default)]
    pub description: String,
    /// The JSON schema of its arguments (the worker's input): an object schema.
    /// Default `{"type": "object"}`.
    pub input_schema: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: Option<String>,
    component: PathBuf,
    sha256: Option<String>,
    #[serde(default)]
    grants: Grants,
    #[serde(default)]
    limits: toml::Table,
    tool: Option<ToolDescription>,
}

impl Manifest {
    /// Reads and validates the manifest at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ManifestError> {
        let path = path.as_ref();
        Self::parse(path, &read_text(path)?)
    }

    /// Parses manifest `text` as if read from `path` (relative paths resolve against
    /// its folder).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ManifestError> {
        let invalid = |reason: String| ManifestError::Invalid {
            path: path.to_owned(),
            reason,
        };
        let raw: RawManifest = toml::from_str(text).map_err(|e| invalid(e.message().to_owned()))?;
        let folder = path.parent().unwrap_or(Path::new("."));
        let name = match raw.name {
            Some(name) => name,
            None => path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("plugin")
                .to_owned(),
        };
        if name.is_empty() {
            return Err(invalid("`name` is empty".into()));
        }
        let sha256 = raw.sha256.map(|s| s.trim().to_ascii_lowercase());
        if let Some(sha) = &sha256
            && (sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(invalid(format!(
                "`sha256` must be 64 hex digits, got '{sha}'"
            )));
        }
        let grants = raw.grants.resolve(folder).map_err(invalid)?;
        // Validate the limit overrides now, so a typo fails here and not at first use.
        crate::limits::Limits::default()
            .overlay(&raw.limits)
            .map_err(|e| invalid(format!("in [limits]: {e}")))?;
        if let Some(tool) = &raw.tool {
            if tool.name.as_deref().is_some_and(|n| {
                n.is_empty()
                    || !n
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
            }) {
                return Err(invalid(
                    "[tool] `name`: letters, digits, '_', '-' and '.' only".into(),
                ));
            }
            if tool
                .input_schema
                .as_ref()
                .is_some_and(|schema| !schema.is_object())
            {
                return Err(invalid(
                    "[tool] `input_schema` must be a table (an object schema)".into(),
                ));
            }
        }
        Ok(Self {
            name,
            path: path.to_owned(),
            component: folder.join(raw.component),
            sha256,
            grants,
            limits: raw.limits,
            tool: raw.tool,
        })
    }
}

/// Reads a TOML file's text (manifests and the host-wide config).
pub(crate) fn read_text(path: &Path) -> Result<String, ManifestError> {
    std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
        path: path.to_owned(),
        source: source.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(Path::new("/plugins/summariser.toml"), text)
    }

    #[test]
    fn a_minimal_manifest_grants_nothing() {
        let m = parse("component = \"s.wasm\"").unwrap();
        assert_eq!(m.name, "summariser");
        assert_eq!(m.component, Path::new("/plugins/s.wasm"));
        assert_eq!(m.grants, Grants::default());
        assert!(m.limits.is_empty());
    }

    #[test]
    fn unknown_fields_name_the_field_and_the_file() {
        let err = parse("component = \"s.wasm\"\n[grants]\nenvs = [\"HOME\"]").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/plugins/summariser.toml"), "{text}");
        assert!(text.contains("unknown field `envs`"), "{text}");
        let err = parse("component = \"s.wasm\"\n[limits]\nmemory = 5").unwrap_err();
        assert!(err.to_string().contains("unknown field `memory`"), "{err}");
        let err = parse("componnet = \"s.wasm\"").unwrap_err();
        assert!(
            err.to_string().contains("unknown field `componnet`"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_pin_is_rejected() {
        let err = parse("component = \"s.wasm\"\nsha256 = \"abc\"").unwrap_err();
        assert!(err.to_string().contains("64 hex digits"), "{err}");
    }
}
