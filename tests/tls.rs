//! TLS: with --tls-cert and --tls-key the server speaks only TLS; a client
//! that trusts the certificate's CA is served, a plain one is not, and the
//! `health` subcommand works over https with --ca-cert. The web dashboard
//! is served over the same TLS (checked with `openssl s_client`).

mod common;

use std::process::Command;
use std::time::Duration;

use common::copy_model;
use embedeval::proto::model_service_client::ModelServiceClient;
use embedeval::proto::ListModelsRequest;
use embedeval::ServeConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_trusting_clients_only() {
    let dir = tempfile::tempdir().unwrap();
    // A CA, and a server certificate for localhost signed by it.
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (ca, cert, key) = (path("ca.pem"), path("cert.pem"), path("key.pem"));
    std::fs::write(
        path("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    for args in [
        vec![
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=embedeval test CA",
            "-keyout",
            &path("ca.key"),
            "-out",
            &ca,
        ],
        vec![
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            &key,
            "-out",
            &path("leaf.csr"),
        ],
        vec![
            "x509",
            "-req",
            "-in",
            &path("leaf.csr"),
            "-CA",
            &ca,
            "-CAkey",
            &path("ca.key"),
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            &path("ext.cnf"),
            "-out",
            &cert,
        ],
    ] {
        let out = Command::new("openssl").args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (ca, cert, key) = (
        std::path::PathBuf::from(ca),
        std::path::PathBuf::from(cert),
        std::path::PathBuf::from(key),
    );
    let models = dir.path().join("models");
    copy_model("infonce-t0.5", &models, "m");
    let mut config = ServeConfig::with_models_dir(&models);
    config.data_dir = dir.path().join("data");
    config.tls_cert = Some(cert.clone());
    config.tls_key = Some(key);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let web = embedeval::server::web::Listening::on(web).unwrap();
    let web_port = web.addr.port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(embedeval::serve_with_dashboard(
        config,
        listener,
        Some(web),
        async {
            let _ = stopped.await;
        },
    ));

    let url = format!("https://localhost:{port}");
    let mut last = None;
    let mut channel = None;
    for _ in 0..100 {
        let endpoint = embedeval::cli::endpoint(&url, Some(&ca)).unwrap();
        match endpoint.connect().await {
            Ok(ch) => {
                channel = Some(ch);
                break;
            }
            Err(e) => {
                last = Some(format!("{e:?}"));
                tokio::time::sleep(Duration::from_millis(50)).await
            }
        }
    }
    let channel = channel.unwrap_or_else(|| panic!("no TLS connection: {last:?}"));
    let mut listed = None;
    for _ in 0..200 {
        match ModelServiceClient::new(channel.clone())
            .list_models(ListModelsRequest::default())
            .await
        {
            Ok(r) => {
                listed = Some(r.into_inner());
                break;
            }
            Err(s) if s.code() == tonic::Code::Unavailable => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(s) => panic!("{s}"),
        }
    }
    assert_eq!(listed.unwrap().models.len(), 1);

    // A plain-text client gets nowhere.
    let plain = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2))
        .connect()
        .await;
    if let Ok(ch) = plain {
        assert!(ModelServiceClient::new(ch)
            .list_models(ListModelsRequest::default())
            .await
            .is_err());
    }
    // https without the CA is refused by the client before it connects.
    assert!(embedeval::cli::endpoint(&url, None).is_err());

    // The dashboard over the same TLS: a client trusting the CA is served
    // (over HTTP/1.1 here), one that does not is refused, plain HTTP gets
    // no page.
    let fetch = |ca: &std::path::Path| {
        let mut child = Command::new("openssl")
            .args([
                "s_client",
                "-quiet",
                "-verify_return_error",
                "-servername",
                "localhost",
            ])
            .args(["-connect", &format!("127.0.0.1:{web_port}"), "-CAfile"])
            .arg(ca)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"GET /models HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let page = fetch(&ca);
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("href=\"/models/m\""), "{page}");
    let other_ca = dir.path().join("other-ca.pem");
    std::fs::copy(&cert, &other_ca).unwrap();
    assert!(
        !fetch(&other_ca).contains("HTTP/1.1"),
        "a client that trusts another CA"
    );
    let plain = std::net::TcpStream::connect(("127.0.0.1", web_port)).and_then(|mut s| {
        use std::io::{Read, Write};
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"GET /models HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        Ok(got)
    });
    assert!(
        !String::from_utf8_lossy(&plain.unwrap_or_default()).contains("200 OK"),
        "plain HTTP gets no page"
    );

    // The health subcommand over TLS.
    let out = Command::new(env!("CARGO_BIN_EXE_embedeval"))
        .args(["health", "--server", &url, "--ca-cert"])
        .arg(&ca)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "SERVING",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
