//! Logs: where they go and in which format. Metrics are served by the
//! HTTP layer (`http::metrics`).

use crate::config::Checked;

/// Sends logs to stderr, as text or one JSON object per line.
pub fn init_logging(checked: &Checked) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&checked.settings.log))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    match checked.settings.log_format {
        crate::config::LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        // One object per line for log shippers; each request's lines carry
        // its span (`request` with `id`).
        crate::config::LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init(),
    }
}
