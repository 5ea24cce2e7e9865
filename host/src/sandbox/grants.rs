//! Capability grants: what a plugin's workers may reach beyond their own sandbox.
//!
//! Deny by default. A plugin with no grants gets the worker's own data folder (mounted at
//! `/data`, when the worker has a storage folder) and nothing else: no other files, no
//! environment variables, no network. Grants come from the plugin's
//! [`Manifest`](crate::Manifest) and are applied to each worker's WASI context when the
//! worker starts (see `wasi.rs`). In code, [`Grants::builder`] builds them checked.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where the worker's own data folder appears to the guest.
pub const WORKER_DATA_GUEST_PATH: &str = "/data";

/// What a plugin may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Host directories mounted into the guest.
    #[serde(default)]
    pub dirs: Vec<DirGrant>,
    /// Names of host environment variables the guest may read (their values are taken
    /// from the host's environment when a worker starts; unset ones are left out).
    #[serde(default)]
    pub env: Vec<String>,
    /// Outbound network destinations: `host`, `host:port`, `*.domain`, `*.domain:port`,
    /// or an IP address (with optional port). Empty: no network at all.
    #[serde(default)]
    pub network: Vec<String>,
    /// Names of host tools the guest may call (see `ToolRegistry`).
    #[serde(default)]
    pub tools: Vec<String>,
    /// Whether the guest may create symbolic links in its data folder and in folders
    /// granted read-write. Off by default: Colony never follows a link out of a granted
    /// folder, but another program walking that folder later would.
    #[serde(default)]
    pub symlinks: bool,
}

/// One host directory mounted into the guest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// The host directory (relative paths resolve against the manifest's folder).
    pub host: PathBuf,
    /// Where the guest sees it: an absolute guest path such as `/shared`.
    pub guest: String,
    /// Read-only unless stated otherwise.
    #[serde(default)]
    pub access: Access,
}

/// How a granted directory may be used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// List and read files.
    #[default]
    ReadOnly,
    /// Also create, write, rename and delete.
    ReadWrite,
}

/// Builds [`Grants`] in code, each checked when built — the other way to grant than a
/// manifest's `[grants]` table. Everything starts denied: no folders but the worker's
/// own `/data`, no environment variables, no network, no tools, no symbolic links.
///
/// ```
/// use colony::{Access, Grants};
/// let grants = Grants::builder()
///     .dir("/srv/shared", "/shared", Access::ReadOnly)
///     .env("LANG")
///     .network("api.example.com:443")
///     .tool("files.read")
///     .build()?;
/// assert_eq!(grants.network, ["api.example.com:443"]);
/// # Ok::<(), colony::GrantsError>(())
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct GrantsBuilder {
    grants: Grants,
}

/// A grant that cannot be given: its field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid grant: {0}")]
pub struct GrantsError(String);

impl GrantsBuilder {
    /// Mounts the host folder `host` (an absolute path) at the absolute guest path
    /// `guest`, read-only unless `access` is [`Access::ReadWrite`].
    pub fn dir(
        mut self,
        host: impl Into<PathBuf>,
        guest: impl Into<String>,
        access: Access,
    ) -> Self {
        self.grants.dirs.push(DirGrant {
            host: host.into(),
            guest: guest.into(),
            access,
        });
        self
    }

    /// Lets the guest read the host's environment variable `name` (its value when a
    /// worker starts; left out when unset).
    pub fn env(mut self, name: impl Into<String>) -> Self {
        self.grants.env.push(name.into());
        self
    }

    /// Lets the guest reach `pattern`: `host`, `host:port`, `*.domain`, `*.domain:port`
    /// or an IP address (with an optional port).
    pub fn network(mut self, pattern: impl Into<String>) -> Self {
        self.grants.network.push(pattern.into());
        self
    }

    /// Lets the guest call the host tool `name`.
    pub fn tool(mut self, name: impl Into<String>) -> Self {
        self.grants.tools.push(name.into());
        self
    }

    /// Lets the guest create symbolic links (and link or move existing ones) in its
    /// writable folders.
    pub fn symlinks(mut self, allowed: bool) -> Self {
        self.grants.symlinks = allowed;
        self
    }

    /// The grants, every one checked; the first bad one is the error.
    pub fn build(self) -> Result<Grants, GrantsError> {
        if let Some(dir) = self.grants.dirs.iter().find(|d| d.host.is_relative()) {
            return Err(GrantsError(format!(
                "grants.dirs: host folder '{}' must be an absolute path",
                dir.host.display()
            )));
        }
        self.grants.resolve(Path::new("/")).map_err(GrantsError)
    }
}

impl Grants {
    /// A [`GrantsBuilder`], with everything denied.
    pub fn builder() -> GrantsBuilder {
        GrantsBuilder::default()
    }

    /// Resolves relative host paths against `folder` and checks every grant.
    pub(crate) fn resolve(mut self, folder: &Path) -> Result<Self, String> {
        for dir in &mut self.dirs {
            if !dir.guest.starts_with('/') || dir.guest.split('/').any(|c| c == "..") {
                return Err(format!(
                    "grants.dirs: guest path '{}' must be absolute and without '..'",
                    dir.guest
                ));
            }
            if dir.guest == WORKER_DATA_GUEST_PATH {
                return Err(format!(
                    "grants.dirs: guest path '{WORKER_DATA_GUEST_PATH}' is the worker's own data folder"
                ));
            }
            if dir.host.is_relative() {
                dir.host = folder.join(&dir.host);
            }
        }
        for name in &self.env {
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                return Err(format!("grants.env: '{name}' is not a variable name"));
            }
        }
        if let Some(bad) = self
            .tools
            .iter()
            .find(|t| t.is_empty() || t.contains(char::is_whitespace))
        {
            return Err(format!("grants.tools: '{bad}' is not a tool name"));
        }
        for pattern in &self.network {
            HostPattern::parse(pattern).map_err(|e| format!("grants.network: {e}"))?;
        }
        Ok(self)
    }

    /// The network allow-list, parsed.
    pub(crate) fn network_patterns(&self) -> Vec<HostPattern> {
        self.network
            .iter()
            .filter_map(|p| HostPattern::parse(p).ok())
            .collect()
    }
}

/// One entry of the network allow-list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostPattern {
    /// Lower-case host name or IP literal; for a wildcard, the suffix after `*.`.
    host: String,
    wildcard: bool,
    port: Option<u16>,
}

impl HostPattern {
    pub(crate) fn parse(pattern: &str) -> Result<Self, String> {
        let (host, port) = match pattern.rsplit_once(':') {
            // An IPv6 literal has colons of its own; only `[v6]:port` carries a port.
            Some((host, port)) if !host.contains(':') || host.ends_with(']') => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| format!("'{pattern}': '{port}' is not a port"))?;
                (host, Some(port))
            }
            _ => (pattern, None),
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let (host, wildcard) = match host.strip_prefix("*.") {
            Some(suffix) => (suffix.to_owned(), true),
            None => (host, false),
        };
        let valid = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
            && !host.contains('*');
        if !valid {
            return Err(format!("'{pattern}' is not a host, *.domain or IP address"));
        }
        Ok(Self {
            host,
            wildcard,
            port,
        })
    }

    /// Whether `name` (a host name or IP literal) matches, ignoring ports.
    pub(crate) fn matches_host(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if self.wildcard {
            name.len() > self.host.len() + 1
                && name.ends_with(&self.host)
                && name[..name.len() - self.host.len()].ends_with('.')
        } else {
            name == self.host
        }
    }

    /// The pattern's address, when it is an IP literal.
    pub(crate) fn ip_literal(&self) -> Option<std::net::IpAddr> {
        if self.wildcard {
            return None;
        }
        self.host
            .parse::<std::net::IpAddr>()
            .ok()
            .map(|ip| ip.to_canonical())
    }

    /// The port the pattern is restricted to, if any.
    pub(crate) fn port(&self) -> Option<u16> {
        self.port
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns_match_exactly_or_by_suffix() {
        let exact = HostPattern::parse("API.example.com:443").unwrap();
        assert!(exact.matches_host("api.example.com"));
        assert!(!exact.matches_host("evil.api.example.com"));
        assert_eq!(exact.port(), Some(443));
        let wild = HostPattern::parse("*.example.org").unwrap();
        assert!(wild.matches_host("a.example.org") && wild.matches_host("a.b.example.org"));
        assert!(!wild.matches_host("example.org") && !wild.matches_host("badexample.org"));
        assert_eq!(wild.port(), None);
        let v6 = HostPattern::parse("[::1]:8080").unwrap();
        assert!(v6.matches_host("::1"));
        assert_eq!(v6.port(), Some(8080));
        assert!(HostPattern::parse("::1").unwrap().matches_host("::1"));
        assert!(HostPattern::parse("a b").is_err());
        assert!(HostPattern::parse("host:http").is_err());
        assert!(HostPattern::parse("*").is_err());
    }

    #[test]
    fn the_builder_checks_every_grant() {
        let grants = Grants::builder()
            .dir("/srv/x", "/x", Access::ReadWrite)
            .network("*.example.org:443")
            .symlinks(true)
            .build()
            .unwrap();
        assert_eq!(grants.dirs[0].access, Access::ReadWrite);
        assert!(grants.symlinks);
        let bad = |b: GrantsBuilder| b.build().unwrap_err().to_string();
        assert!(
            bad(Grants::builder().dir("rel", "/x", Access::ReadOnly)).contains("absolute path")
        );
        assert!(
            bad(Grants::builder().dir("/a", "x", Access::ReadOnly)).contains("must be absolute")
        );
        assert!(bad(Grants::builder().network("a b")).contains("grants.network"));
        assert!(bad(Grants::builder().env("A=B")).contains("grants.env"));
        assert!(bad(Grants::builder().tool("two words")).contains("grants.tools"));
    }

    #[test]
    fn grants_are_checked_and_resolved() {
        let grants = Grants {
            dirs: vec![DirGrant {
                host: "shared".into(),
                guest: "/shared".into(),
                access: Access::ReadOnly,
            }],
            ..Grants::default()
        };
        let resolved = grants.resolve(Path::new("/p")).unwrap();
        assert_eq!(resolved.dirs[0].host, Path::new("/p/shared"));
        let bad = Grants {
            dirs: vec![DirGrant {
                host: "x".into(),
                guest: "relative".into(),
                access: Access::ReadWrite,
            }],
            ..Grants::default()
        };
        assert!(
            bad.resolve(Path::new("/p"))
                .unwrap_err()
                .contains("must be absolute")
        );
    }
}
