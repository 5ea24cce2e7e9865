//! The process-wide TLS crypto provider: ring, for every rustls client the host makes
//! (MCP servers over HTTP, the OTLP trace exporter) — installed once, so no client
//! panics for want of one, and no second provider (aws-lc) is built in.

/// Installs ring as rustls's process-wide provider (once; a provider already installed
/// by the embedder is kept).
pub(crate) fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
