//! The built-in tools. Each respects the calling worker's sandbox: files only inside its
//! data folder and granted folders (through capability handles, so `..` and symlinks
//! cannot leave them; writes only where the grant is read-write), URLs only on its
//! network allow-list.

use std::sync::Arc;

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use serde_json::{Value, json};

use super::{Tool, ToolContext, ToolError};
use crate::sandbox::{Access, WORKER_DATA_GUEST_PATH};

/// The most bytes a tool may read for its result: half of what the worker's host memory
/// budget has left, since the result is then encoded as JSON text (charged again).
fn read_cap(ctx: &ToolContext) -> usize {
    ctx.max_result_bytes / 2
}

pub(crate) fn all() -> Vec<Arc<dyn Tool>> {
    vec![
        Arc::new(TimeNow),
        Arc::new(FilesRead),
        Arc::new(FilesWrite),
        Arc::new(FilesList),
        #[cfg(feature = "http")]
        Arc::new(HttpFetch),
    ]
}

fn string_arg<'a>(args: &'a Value, key: &str) -> Result<&'a str, ToolError> {
    args[key]
        .as_str()
        .ok_or_else(|| ToolError::InvalidArguments(format!("`{key}` must be a string")))
}

/// Opens the granted folder holding guest `path`; returns it and the path inside it.
fn resolve(ctx: &ToolContext, path: &str, write: bool) -> Result<(Dir, String), ToolError> {
    let mut mounts: Vec<(String, std::path::PathBuf, Access)> = ctx
        .dirs
        .iter()
        .map(|d| {
            (
                d.guest.trim_end_matches('/').to_owned(),
                d.host.clone(),
                d.access,
            )
        })
        .collect();
    if let Some(data) = &ctx.data_dir {
        // Made when first used: a worker's folders are created only as needed.
        std::fs::create_dir_all(data)
            .map_err(|e| ToolError::Failed(format!("cannot create '/data': {e}")))?;
        mounts.push((
            WORKER_DATA_GUEST_PATH.to_owned(),
            data.clone(),
            Access::ReadWrite,
        ));
    }
    let (guest, host, access) = mounts
        .into_iter()
        .filter(|(guest, _, _)| path == guest || path.starts_with(&format!("{guest}/")))
        .max_by_key(|(guest, _, _)| guest.len())
        .ok_or_else(|| ToolError::Failed(format!("'{path}' is not inside a granted folder")))?;
    if write && access != Access::ReadWrite {
        return Err(ToolError::Failed(format!("'{guest}' is granted read-only")));
    }
    let dir = Dir::open_ambient_dir(&host, ambient_authority())
        .map_err(|e| ToolError::Failed(format!("cannot open '{guest}': {e}")))?;
    let inner = path[guest.len()..].trim_start_matches('/');
    Ok((
        dir,
        if inner.is_empty() {
            ".".to_owned()
        } else {
            inner.to_owned()
        },
    ))
}

struct TimeNow;

#[async_trait::async_trait]
impl Tool for TimeNow {
    fn name(&self) -> &str {
        "time.now"
    }
    fn description(&self) -> &str {
        "The current date and time (UTC)."
    }
    fn parameters(&self) -> Value {
        json!({"type": "object", "properties": {}})
    }
    async fn call(&self, _ctx: &ToolContext, _args: Value) -> Result<Value, ToolError> {
        let now = chrono::Utc::now();
        Ok(json!({"rfc3339": now.to_rfc3339(), "unix": now.timestamp()}))
    }
}

struct FilesRead;

#[async_trait::async_trait]
impl Tool for FilesRead {
    fn name(&self) -> &str {
        "files.read"
    }
    fn description(&self) -> &str {
        "Read a text file from a granted folder (e.g. /data/notes.txt)."
    }
    fn parameters(&self) -> Value {
        json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]})
    }
    async fn call(&self, ctx: &ToolContext, args: Value) -> Result<Value, ToolError> {
        let path = string_arg(&args, "path")?;
        let (dir, inner) = resolve(ctx, path, false)?;
        let size = dir
            .metadata(&inner)
            .map_err(|e| ToolError::Failed(format!("{path}: {e}")))?
            .len();
        let cap = read_cap(ctx);
        if size > cap as u64 {
            return Err(ToolError::Failed(format!(
                "{path} is {size} bytes, more than the {cap} bytes the worker's host memory \
                 budget has room for"
            )));
        }
        let mut bytes = Vec::new();
        dir.open(&inner)
            .and_then(|file| {
                use std::io::Read;
                file.into_std().take(cap as u64).read_to_end(&mut bytes)
            })
            .map_err(|e| ToolError::Failed(format!("{path}: {e}")))?;
        let content = String::from_utf8(bytes)
            .map_err(|_| ToolError::Failed(format!("{path} is not UTF-8 text")))?;
        Ok(json!({"content": content}))
    }
}

struct FilesWrite;

#[async_trait::async_trait]
impl Tool for FilesWrite {
    fn name(&self) -> &str {
        "files.write"
    }
    fn description(&self) -> &str {
        "Write a text file in a folder granted read-write (e.g. /data/out.txt)."
    }
    fn parameters(&self) -> Value {
        json!({"type": "object", "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
            "required": ["path", "content"]})
    }
    async fn call(&self, ctx: &ToolContext, args: Value) -> Result<Value, ToolError> {
        let path = string_arg(&args, "path")?;
        let content = string_arg(&args, "content")?;
        let (dir, inner) = resolve(ctx, path, true)?;
        ctx.disk
            .charge(content.len() as u64, &format!("writing {path}"))
            .map_err(|e| ToolError::Failed(e.to_string()))?;
        dir.write(&inner, content)
            .map_err(|e| ToolError::Failed(format!("{path}: {e}")))?;
        Ok(json!({"written": content.len()}))
    }
}

struct FilesList;

#[async_trait::async_trait]
impl Tool for FilesList {
    fn name(&self) -> &str {
        "files.list"
    }
    fn description(&self) -> &str {
        "List the entries of a granted folder."
    }
    fn parameters(&self) -> Value {
        json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]})
    }
    async fn call(&self, ctx: &ToolContext, args: Value) -> Result<Value, ToolError> {
        let path = string_arg(&args, "path")?;
        let (dir, inner) = resolve(ctx, path, false)?;
        let cap = read_cap(ctx);
        let (mut names, mut bytes, mut truncated) = (Vec::new(), 0usize, false);
        for entry in dir
            .read_dir(&inner)
            .map_err(|e| ToolError::Failed(format!("{path}: {e}")))?
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            // A name costs its text plus a string's bookkeeping.
            bytes += name.len() + 32;
            if bytes > cap {
                truncated = true;
                break;
            }
            names.push(name);
        }
        names.sort();
        Ok(json!({"entries": names, "truncated": truncated}))
    }
}

#[cfg(feature = "http")]
struct HttpFetch;

#[cfg(feature = "http")]
#[async_trait::async_trait]
impl Tool for HttpFetch {
    fn name(&self) -> &str {
        "http.fetch"
    }
    fn description(&self) -> &str {
        "GET a URL on the plugin's allowed hosts; returns the status and the body as text."
    }
    fn parameters(&self) -> Value {
        json!({"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]})
    }
    async fn call(&self, ctx: &ToolContext, args: Value) -> Result<Value, ToolError> {
        let url = reqwest::Url::parse(string_arg(&args, "url")?)
            .map_err(|e| ToolError::InvalidArguments(format!("`url`: {e}")))?;
        let host = url
            .host_str()
            .unwrap_or_default()
            .trim_matches(['[', ']'])
            .to_owned();
        let port = url.port_or_known_default().unwrap_or(0);
        let allowed = ctx
            .network
            .iter()
            .any(|p| p.matches_host(&host) && p.port().is_none_or(|allowed| allowed == port));
        if !allowed || !matches!(url.scheme(), "http" | "https") {
            return Err(ToolError::Failed(format!(
                "{host}:{port} is not on this plugin's network allow-list"
            )));
        }
        // Redirects could leave the allow-list: they are not followed.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ToolError::Failed(e.to_string()))?;
        let response = client
            .get(url)
            .send()
            .await
            .map_err(|e| ToolError::Failed(e.to_string()))?;
        let status = response.status().as_u16();
        // Read no more than the cap (plus one chunk to tell whether there was more).
        use futures_util::StreamExt;
        let cap = read_cap(ctx);
        let mut body = Vec::new();
        let mut more = false;
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ToolError::Failed(e.to_string()))?;
            let room = cap - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if chunk.len() > room {
                more = true;
                break;
            }
        }
        let (text, cut) = crate::text::utf8_prefix(&body, cap);
        Ok(json!({"status": status, "body": text, "truncated": more || cut}))
    }
}
