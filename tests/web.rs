//! The web dashboard against a real server over the digits zoo, through
//! plain HTTP: every page answers with its content and the security
//! headers; the comparison page's numbers are GetComparison's and its
//! figures carry one tooltip target per mark RenderFigure counts; the
//! sample images are PNGs of the dataset's size; a running evaluation's
//! event stream ends in its status; a class named like HTML is shown as
//! text; and with a token every page needs it (bearer or login cookie).
//! (Browser tests, with Chromium over WebDriver, drive the same pages.)

mod common;

use std::net::SocketAddr;
use std::path::Path;

use embedeval::proto::evaluation_service_client::EvaluationServiceClient;
use embedeval::proto::{self, compare_event, FigureFormat, FigureSize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An HTTP answer.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("the page is UTF-8")
    }
}

/// One HTTP/1.1 request on a fresh connection, read to its end.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in extra {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        request.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

/// The body of a chunked transfer.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(std::str::from_utf8(&raw[..end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[end + 2 + size + 2..];
    }
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    http(addr, "GET", path, &[], "").await
}

/// A copy of the digits dataset whose class 0 is named
/// like HTML, beside the real one.
fn datasets_with_a_hostile_class(dir: &Path) {
    let digits = common::zoo().join("../datasets/digits");
    let hostile = dir.join("hostile");
    std::fs::create_dir_all(&hostile).unwrap();
    for f in [
        "test_images.npy",
        "test_labels.npy",
        "train_images.npy",
        "train_labels.npy",
    ] {
        std::fs::copy(digits.join(f), hostile.join(f)).unwrap();
    }
    let manifest = std::fs::read_to_string(digits.join("dataset.toml"))
        .unwrap()
        .replace("name = \"digits\"", "name = \"hostile\"")
        .replace(
            "num_classes = 10",
            "num_classes = 10\nclass_names = [\"<img src=x onerror=alert(1)>\", \"1\", \"2\", \"3\", \"4\", \"5\", \"6\", \"7\", \"8\", \"9\"]",
        );
    std::fs::write(hostile.join("dataset.toml"), manifest).unwrap();
    std::os::unix::fs::symlink(digits.canonicalize().unwrap(), dir.join("digits")).unwrap();
}

#[tokio::test]
async fn every_page_answers_and_shows_what_the_api_says() {
    let datasets = tempfile::tempdir().unwrap();
    datasets_with_a_hostile_class(datasets.path());
    let mut config = common::zoo_config();
    config.datasets_dir = datasets.path().to_path_buf();
    let server = common::TestServer::start_with_web(config).await;
    server.wait_serving().await;
    let web = server.web.expect("the dashboard");
    let mut client = EvaluationServiceClient::new(server.channel.clone());

    let models = ["infonce-t0.1", "infonce-t1", "simple"];
    let mut stream = client
        .compare(proto::CompareRequest {
            models: models.iter().map(|m| m.to_string()).collect(),
            dataset: "digits".into(),
            spec: Some(proto::MetricSpec {
                skip_linear: true,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut id = String::new();
    while let Some(e) = stream.message().await.unwrap() {
        if let Some(compare_event::Event::Comparison(c)) = e.event {
            id = c.id;
        }
    }
    let stored = client
        .get_comparison(proto::GetComparisonRequest {
            id: id.clone(),
            by: String::new(),
        })
        .await
        .unwrap()
        .into_inner();

    // The list and the comparison, with the security headers.
    let list = get(web, "/comparisons").await;
    assert_eq!(list.status, 200);
    let csp = list.header("content-security-policy").expect("a CSP");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert_eq!(list.header("x-content-type-options"), Some("nosniff"));
    assert!(list.text().contains(&id));
    let page = get(web, &format!("/comparisons/{id}")).await;
    assert_eq!(page.status, 200);
    let html = page.text();
    for r in &stored.rows {
        assert!(
            html.contains(&format!("href=\"/models/{}\"", r.model)),
            "{}",
            r.model
        );
        let tolerance = format!("{:.4}", r.tolerance.unwrap());
        let knn = format!("{:.1}%", 100.0 * r.knn.as_ref().unwrap().top1);
        assert!(
            html.contains(&tolerance) && html.contains(&knn),
            "{}: {tolerance} {knn}",
            r.model
        );
    }
    // One tooltip target per mark of every figure RenderFigure draws.
    let mut marks = 0;
    for kind in embedeval::report::figures::Kind::ALL {
        if let Ok(f) = client
            .render_figure(proto::RenderFigureRequest {
                id: id.clone(),
                kind: kind.code(),
                format: FigureFormat::Svg as i32,
                size: FigureSize::Screen as i32,
                ..Default::default()
            })
            .await
        {
            marks += f.into_inner().marks;
        }
    }
    assert!(marks > 0);
    assert_eq!(html.matches("<circle class=\"hit\"").count() as u32, marks);
    assert!(
        html.contains("data-tip=\"infonce-t0.1\ninfonce τ 0.1"),
        "a tooltip names the model and its values"
    );
    // The figure choices reach the figures; a bad one is a 400 page.
    let by_seed = get(
        web,
        &format!("/comparisons/{id}?x=seed&group_by=temperature"),
    )
    .await;
    assert_eq!(by_seed.status, 200);
    assert_eq!(
        get(web, &format!("/comparisons/{id}?x=a%20b")).await.status,
        400
    );

    // The embedding space: the smallest and the largest τ, every test row
    // (540 < 2,000), the same picture again from the store; t-SNE too.
    let project =
        |method: proto::ProjectionMethod, models: Vec<String>| proto::ProjectEmbeddingsRequest {
            comparison_id: id.clone(),
            models,
            method: method as i32,
            seed: 3,
            ..Default::default()
        };
    let pca = client
        .project_embeddings(project(proto::ProjectionMethod::Pca, vec![]))
        .await
        .unwrap()
        .into_inner();
    let drawn: Vec<&str> = pca.projections.iter().map(|p| p.model.as_str()).collect();
    assert_eq!(drawn, ["infonce-t0.1", "infonce-t1"]);
    assert_eq!(
        (pca.rows.len(), pca.labels.len(), pca.split.as_str()),
        (540, 540, "test")
    );
    for p in &pca.projections {
        assert_eq!(p.coordinates.len(), 2 * 540);
        let [a, b] = [p.explained_variance[0], p.explained_variance[1]];
        assert!(a >= b && b > 0.0 && a + b <= 1.0, "{a} {b}");
    }
    assert_eq!(
        pca.svg.matches("<circle cx").count(),
        2 * 540 + 10,
        "a point per row and model, a legend mark per class"
    );
    let again = client
        .project_embeddings(project(proto::ProjectionMethod::Pca, vec![]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, pca, "the same request, the same picture");
    let tsne = client
        .project_embeddings(project(
            proto::ProjectionMethod::Tsne,
            vec!["infonce-t0.1".into()],
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(tsne.projections[0].kl_divergence.is_some() && tsne.perplexity == 30.0);
    let err = client
        .project_embeddings(project(
            proto::ProjectionMethod::Pca,
            vec!["infonce-t0.5".into()],
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert!(
        err.message()
            .contains("embedeval eval infonce-t0.5 --dataset digits"),
        "{}",
        err.message()
    );
    let space = get(web, &format!("/comparisons/{id}/space?method=tsne")).await;
    assert_eq!(space.status, 200);
    assert_eq!(space.text().matches("<circle cx").count(), 2 * 540 + 10);

    // The neighbours of a test image: the query, then k per model.
    let near = get(web, &format!("/comparisons/{id}/neighbours?row=3&k=4")).await;
    assert_eq!(near.status, 200);
    assert_eq!(
        near.text().matches("<figure class=\"thumb").count(),
        1 + 4 * 3
    );
    assert_eq!(
        get(web, &format!("/comparisons/{id}/neighbours?row=540"))
            .await
            .status,
        400
    );

    // Evaluations: the list and a report with its per-class table.
    let evaluations = get(web, "/evaluations?dataset=digits").await.text();
    for r in &stored.rows {
        assert!(evaluations.contains(&r.id));
    }
    let report = get(web, &format!("/evaluations/{}", stored.rows[0].id)).await;
    assert_eq!(report.status, 200);
    let report = report.text();
    assert!(
        report.contains("Per class") && report.contains("knn_k"),
        "the settings are echoed"
    );
    assert_eq!(get(web, "/evaluations/nope").await.status, 404);

    // Models, datasets and their images.
    assert!(get(web, "/models")
        .await
        .text()
        .contains("href=\"/models/infonce-t0.5\""));
    assert!(get(web, "/models/infonce-t0.1")
        .await
        .text()
        .contains("Input and preprocessing"));
    assert_eq!(get(web, "/models/nope").await.status, 404);
    let digits = get(web, "/datasets/digits").await.text();
    assert_eq!(
        digits
            .matches("<img src=\"/datasets/digits/images/test/")
            .count(),
        80,
        "8 per class"
    );
    let png = get(web, "/datasets/digits/images/test/0").await;
    assert_eq!(png.header("content-type"), Some("image/png"));
    assert_eq!(&png.body[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&png.body[16..24], &[0, 0, 0, 8, 0, 0, 0, 8], "8 × 8");
    assert_eq!(
        get(web, "/datasets/digits/images/test/540").await.status,
        404
    );

    // A class named like HTML is text.
    let hostile = get(web, "/datasets/hostile").await.text();
    assert!(!hostile.contains("<img src=x"), "unescaped");
    assert!(
        hostile.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{hostile}"
    );

    // Runs.
    assert!(get(web, "/runs")
        .await
        .text()
        .contains("href=\"/runs/infonce-t0.2-run\""));
    assert_eq!(
        get(web, "/runs/infonce-t0.2-run?dataset=digits")
            .await
            .status,
        200
    );

    // Assets and what is not a page.
    let js = get(web, "/assets/app.js").await;
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(get(web, "/nope").await.status, 404);

    // A running evaluation's events: progress, then its end.
    let accepted = client
        .evaluate(proto::EvaluateRequest {
            model: "infonce-t0.5".into(),
            dataset: "digits".into(),
            detach: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .unwrap()
        .unwrap();
    let Some(proto::evaluate_event::Event::Accepted(a)) = accepted.event else {
        panic!("a detached evaluation is accepted")
    };
    let events = get(web, &format!("/evaluations/{}/events", a.evaluation_ids[0])).await;
    assert_eq!(events.header("content-type"), Some("text/event-stream"));
    let text = events.text();
    assert!(
        text.trim_end().ends_with("event: end\ndata: COMPLETED"),
        "{text}"
    );
}

#[tokio::test]
async fn with_a_token_every_page_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let mut config = common::zoo_config();
    config.auth_token_file = Some(token);
    let server = common::TestServer::start_with_web(config).await;
    server.wait_serving().await;
    let web = server.web.unwrap();

    let denied = get(web, "/comparisons").await;
    assert_eq!(denied.status, 401);
    assert!(
        denied.text().contains("action=\"/login\""),
        "the login page"
    );
    let wrong = http(
        web,
        "GET",
        "/comparisons",
        &[("Authorization", "Bearer nope")],
        "",
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.text().contains("wrong token"));
    let bearer = http(
        web,
        "GET",
        "/comparisons",
        &[("Authorization", "Bearer s3cret")],
        "",
    )
    .await;
    assert_eq!(bearer.status, 200);
    assert_eq!(
        get(web, "/assets/app.css").await.status,
        200,
        "the login page's style is open"
    );
    assert_eq!(get(web, "/evaluations/x/events").await.status, 401);
    assert_eq!(get(web, "/datasets/digits/images/test/0").await.status, 401);

    let refused = http(web, "POST", "/login", &[], "token=nope&next=%2Fruns").await;
    assert_eq!(refused.status, 401);
    assert!(refused.header("set-cookie").is_none());
    let login = http(web, "POST", "/login", &[], "token=s3cret&next=%2Fruns").await;
    assert_eq!(login.status, 303);
    assert_eq!(login.header("location"), Some("/runs"));
    let cookie = login.header("set-cookie").unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("s3cret"), "the cookie holds a digest");
    let session = cookie.split(';').next().unwrap();
    let page = http(web, "GET", "/runs", &[("Cookie", session)], "").await;
    assert_eq!(page.status, 200);
    let away = http(
        web,
        "POST",
        "/login",
        &[],
        "token=s3cret&next=https%3A%2F%2Fevil.example",
    )
    .await;
    assert_eq!(away.header("location"), Some("/"));
}
