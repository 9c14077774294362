//! The read-only web dashboard that `embedeval serve` serves beside gRPC
//! (`--http-addr`): the models, datasets, evaluations, comparisons and runs
//! as pages rendered on the server (maud: every value a user gave is
//! escaped), the assets embedded in the binary (no CDN, works offline), and
//! a little JavaScript for sorting tables, tooltips and live progress
//! (Server-Sent Events from the engine's event stream).
//!
//! It is an edge like the gRPC services: each handler reads through
//! [`crate::views`], the registries or the engine and renders; no request
//! changes state. It sits behind the same TLS and token as gRPC
//! ([`auth`]), and every answer carries a strict Content-Security-Policy
//! (no inline script, no eval).

mod assets;
mod auth;
mod comparisons;
mod datasets;
mod evaluations;
mod layout;
mod models;
mod neighbours;
mod runs;
mod space;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use super::AppState;
use crate::error::{Error, Result};

/// What every handler reads from.
#[derive(Clone)]
pub(crate) struct Web {
    state: Arc<AppState>,
    token: Option<Arc<str>>,
    /// Served over TLS (the login cookie is then `Secure`).
    secure: bool,
}

/// The policy every answer carries: scripts and styles from this server
/// only (no inline script, no eval), images from here or `data:`.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The dashboard's routes over `state`; with `token`, every page but the
/// login page and the assets needs it.
pub(crate) fn router(state: Arc<AppState>, token: Option<Arc<str>>, secure: bool) -> Router {
    let web = Web {
        state,
        token,
        secure,
    };
    let pages = Router::new()
        .route("/", get(|| async { Redirect::to("/comparisons") }))
        .route("/models", get(models::list))
        .route("/models/{name}", get(models::show))
        .route("/datasets", get(datasets::list))
        .route("/datasets/{name}", get(datasets::show))
        .route(
            "/datasets/{name}/images/{split}/{row}",
            get(datasets::image),
        )
        .route("/evaluations", get(evaluations::list))
        .route("/evaluations/{id}", get(evaluations::show))
        .route("/evaluations/{id}/report", get(evaluations::fragment))
        .route("/evaluations/{id}/events", get(evaluations::events))
        .route("/comparisons", get(comparisons::list))
        .route("/comparisons/{id}", get(comparisons::show))
        .route("/comparisons/{id}/space", get(space::show))
        .route("/comparisons/{id}/neighbours", get(neighbours::show))
        .route("/runs", get(runs::list))
        .route("/runs/{name}", get(runs::show))
        .route("/runs/{name}/table", get(runs::table))
        .route_layer(axum::middleware::from_fn_with_state(
            web.clone(),
            auth::require,
        ));
    Router::new()
        .merge(pages)
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/assets/{file}", get(assets::serve))
        .route(
            "/favicon.ico",
            get(|| async { Redirect::permanent("/assets/favicon.svg") }),
        )
        .fallback(|| async {
            PageError(Error::NotFound {
                kind: "page",
                name: String::new(),
                hint: String::new(),
            })
        })
        .layer(axum::middleware::from_fn(security_headers))
        // Figures are SVG text: gzip takes a comparison of 100 models' page
        // from about 1.5 MiB to a fraction of it. The default predicate
        // leaves event streams, images and small answers as they are.
        .layer(tower_http::compression::CompressionLayer::new())
        .with_state(web)
}

/// Adds the Content-Security-Policy and its companions to every answer.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// An error as a page: the HTTP status of its gRPC code and the message
/// the API would give.
pub(crate) struct PageError(pub Error);

impl From<Error> for PageError {
    fn from(err: Error) -> Self {
        PageError(err)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        use tonic::Code;
        let status = tonic::Status::from(&self.0);
        let http = match status.code() {
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
                StatusCode::BAD_REQUEST
            }
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = if status.message().is_empty() {
            "no such page".to_string()
        } else {
            status.message().to_string()
        };
        let body = layout::page(
            http.canonical_reason().unwrap_or("error"),
            layout::Nav::None,
            maud::html! { p.error { (message) } },
        );
        (http, body).into_response()
    }
}

/// The result of a page handler.
pub(crate) type Page = std::result::Result<maud::Markup, PageError>;

/// Where the dashboard listens, once bound.
pub struct Listening {
    /// The address.
    pub addr: SocketAddr,
    listener: TcpListener,
}

impl Listening {
    /// The dashboard on a listener bound already.
    pub fn on(listener: TcpListener) -> Result<Self> {
        Ok(Self {
            addr: listener
                .local_addr()
                .map_err(|e| Error::io("read the dashboard's address", e))?,
            listener,
        })
    }
}

/// Binds the dashboard's address: `Off` none, `Auto` the default or none
/// when it is taken (with a warning), `At` that one or an error.
pub async fn bind(addr: crate::config::HttpAddr) -> Result<Option<Listening>> {
    use crate::config::HttpAddr;
    let (at, lenient) = match addr {
        HttpAddr::Off => return Ok(None),
        HttpAddr::Auto => (HttpAddr::DEFAULT.parse().expect("a valid address"), true),
        HttpAddr::At(at) => (at, false),
    };
    match TcpListener::bind(at).await {
        Ok(listener) => Ok(Some(Listening {
            addr: listener.local_addr().unwrap_or(at),
            listener,
        })),
        Err(err) if lenient => {
            tracing::warn!(addr = %at, %err, "the web dashboard is not served: its default address is taken; give --http-addr HOST:PORT (or off)");
            Ok(None)
        }
        Err(err) => Err(Error::io(
            format!("bind the dashboard's --http-addr {at}"),
            err,
        )),
    }
}

/// Serves `router` on `listening` until `stop` resolves, over TLS with the
/// certificate and key given.
pub async fn serve(
    listening: Listening,
    router: Router,
    tls: Option<(&Path, &Path)>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let Some((cert, key)) = tls else {
        return axum::serve(listening.listener, router)
            .with_graceful_shutdown(stop)
            .await
            .map_err(|e| Error::io("serve the dashboard", e));
    };
    let acceptor = tls_acceptor(cert, key)?;
    let service = hyper_util::service::TowerToHyperService::new(router);
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut stop => return Ok(()),
            accepted = listening.listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::debug!(%err, "dashboard accept");
                    continue;
                }
            },
        };
        let (acceptor, service) = (acceptor.clone(), service.clone());
        tokio::spawn(async move {
            let stream = match acceptor.accept(stream).await {
                Ok(stream) => stream,
                Err(err) => {
                    tracing::debug!(%peer, %err, "dashboard TLS handshake");
                    return;
                }
            };
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            if let Err(err) = builder
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, %err, "dashboard connection");
            }
        });
    }
}

/// The TLS acceptor of the server's certificate chain and key (PEM).
fn tls_acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| Error::Config(format!("TLS certificate {}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| Error::Config(format!("TLS key {}: {e}", key.display())))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::Config(format!("TLS: {e}")))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| Error::Config(format!("TLS: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
