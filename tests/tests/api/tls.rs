use std::sync::Arc;

use anyhow::{Context, Result};
use kluis_tests::{Backend, Options, TestApp, TlsFiles};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A server given a certificate speaks HTTPS only, and tells browsers so.
#[tokio::test]
async fn with_a_certificate_the_server_speaks_https_and_sends_hsts() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem())?;
    std::fs::write(&key, certified.signing_key.serialize_pem())?;
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Options {
            tls: Some(TlsFiles { cert, key }),
            ..Options::default()
        },
    )
    .await?;
    let port: u16 = app
        .address
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .context("no port")?;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone())?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let mut tls = connector
        .connect(rustls::pki_types::ServerName::try_from("localhost")?, tcp)
        .await?;
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut answer = Vec::new();
    // The server may close without a TLS close_notify; what was read counts.
    let _ignored = tls.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(
        answer.contains("strict-transport-security: max-age=63072000"),
        "{answer}"
    );

    let plain = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was served on the TLS port");
    Ok(())
}
