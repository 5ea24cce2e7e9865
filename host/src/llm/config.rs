//! [`LlmConfig`]: which provider answers guests' model calls (host configuration only).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

#[cfg(feature = "http")]
use super::OpenAiProvider;
use super::{LlmProvider, ScriptedProvider};

/// Which provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    /// An OpenAI-compatible chat-completions endpoint.
    Openai,
    /// Responses replayed from `script`.
    Scripted,
}

/// The `[llm]` table of the host-wide config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    /// Which provider answers: an OpenAI-compatible endpoint or a replayed script.
    pub provider: ProviderKind,
    /// Endpoint base, e.g. `https://api.openai.com/v1` or `http://localhost:11434/v1`.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The model name sent to the endpoint.
    #[serde(default)]
    pub model: String,
    /// The host environment variable holding the API key (never given to guests).
    #[serde(default = "default_key_env")]
    pub api_key_env: String,
    /// Retries after a 429, a 5xx or a connection failure. Default 3.
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    /// First backoff; doubled each retry (a `Retry-After` header wins). Default 500 ms.
    #[serde(default = "default_backoff", with = "humantime_serde")]
    pub backoff: Duration,
    /// For `scripted`: the script file.
    #[serde(default)]
    pub script: Option<PathBuf>,
}

fn default_base_url() -> String {
    "https://api.openai.com/v1".to_owned()
}
fn default_key_env() -> String {
    "OPENAI_API_KEY".to_owned()
}
fn default_retries() -> u32 {
    3
}
fn default_backoff() -> Duration {
    Duration::from_millis(500)
}

impl LlmConfig {
    /// The provider this config describes.
    pub fn build(&self) -> Result<Arc<dyn LlmProvider>, String> {
        Ok(match self.provider {
            #[cfg(feature = "http")]
            ProviderKind::Openai => Arc::new(OpenAiProvider::from_config(self)?),
            #[cfg(not(feature = "http"))]
            ProviderKind::Openai => {
                return Err("the openai provider needs colony's `http` feature".into());
            }
            ProviderKind::Scripted => {
                let path = self
                    .script
                    .as_ref()
                    .ok_or("the scripted provider needs `script`")?;
                Arc::new(ScriptedProvider::load(path).map_err(|e| e.to_string())?)
            }
        })
    }
}
