//! The dashboard's side of `--auth-token-file`: with a token configured,
//! every page, image and event stream needs it, as `Authorization: Bearer
//! <token>` or as the cookie the login form sets (HttpOnly,
//! SameSite=Strict, Secure over TLS). The cookie holds a digest of the
//! token, never the token itself. Without a token the dashboard is open,
//! as gRPC is.

use axum::extract::{Form, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::layout::{page, Nav};
use super::Web;

/// The cookie's name.
const COOKIE: &str = "embedeval_session";

/// The cookie's value for `token`: a digest, so that the cookie does not
/// carry the token (nor its characters, whatever they are).
fn session(token: &str) -> String {
    hex::encode(Sha256::digest(format!("embedeval dashboard\n{token}")))
}

/// Whether the request carries the token, as a bearer header or the
/// login cookie.
fn allowed(token: &str, headers: &HeaderMap) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let Some(given) = bearer {
        return super::super::constant_time_eq(given.trim().as_bytes(), token.as_bytes());
    }
    let want = session(token);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .any(|(name, value)| {
            name == COOKIE && super::super::constant_time_eq(value.as_bytes(), want.as_bytes())
        })
}

/// Lets a request through when no token is configured or it carries the
/// token; else answers 401 with the login page (a wrong bearer token: 401
/// saying so).
pub(super) async fn require(State(web): State<Web>, request: Request, next: Next) -> Response {
    let Some(token) = &web.token else {
        return next.run(request).await;
    };
    if allowed(token, request.headers()) {
        return next.run(request).await;
    }
    let wrong = request.headers().contains_key(header::AUTHORIZATION);
    let next_page = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let message = wrong.then_some("wrong token");
    (StatusCode::UNAUTHORIZED, login_form(&next_page, message)).into_response()
}

/// The login form, back to `next` once signed in.
fn login_form(next: &str, message: Option<&str>) -> maud::Markup {
    page(
        "Sign in",
        Nav::None,
        html! {
            @if let Some(message) = message { p.error { (message) } }
            p { "This server needs its access token (the file given to " code { "--auth-token-file" } ")." }
            form.login method="post" action="/login" {
                input type="hidden" name="next" value=(next);
                label { "Token " input type="password" name="token" autocomplete="current-password" autofocus; }
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// The query of the login page.
#[derive(Deserialize)]
pub(super) struct LoginQuery {
    #[serde(default)]
    next: String,
}

/// GET /login: the form.
pub(super) async fn login_page(Query(q): Query<LoginQuery>) -> maud::Markup {
    login_form(&safe_next(&q.next), None)
}

/// The login form's fields.
#[derive(Deserialize)]
pub(super) struct LoginForm {
    token: String,
    #[serde(default)]
    next: String,
}

/// A page of this server to go back to: a path, never another origin.
fn safe_next(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next.to_string()
    } else {
        "/".into()
    }
}

/// POST /login: sets the cookie for the right token and goes back; a wrong
/// one gets the form again, 401.
pub(super) async fn login(State(web): State<Web>, Form(form): Form<LoginForm>) -> Response {
    let next = safe_next(&form.next);
    let Some(token) = &web.token else {
        return Redirect::to(&next).into_response();
    };
    if !super::super::constant_time_eq(form.token.trim().as_bytes(), token.as_bytes()) {
        return (
            StatusCode::UNAUTHORIZED,
            login_form(&next, Some("wrong token")),
        )
            .into_response();
    }
    let secure = if web.secure { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/{secure}",
        session(token)
    );
    let mut response = Redirect::to(&next).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_passes_as_a_bearer_header_or_the_cookie_and_nothing_else_does() {
        let mut h = HeaderMap::new();
        assert!(!allowed("s3cret", &h));
        h.insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
        assert!(allowed("s3cret", &h));
        h.insert(header::AUTHORIZATION, "Bearer s3cre".parse().unwrap());
        assert!(!allowed("s3cret", &h));
        let mut h = HeaderMap::new();
        let cookie = format!("a=b; {COOKIE}={}", session("s3cret"));
        h.insert(header::COOKIE, cookie.parse().unwrap());
        assert!(allowed("s3cret", &h));
        assert!(!allowed("other", &h));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, format!("{COOKIE}=s3cret").parse().unwrap());
        assert!(
            !allowed("s3cret", &h),
            "the cookie holds the digest, not the token"
        );
    }

    #[test]
    fn login_goes_back_to_this_server_only() {
        assert_eq!(
            safe_next("/comparisons/c1?by=seed"),
            "/comparisons/c1?by=seed"
        );
        for other in ["https://evil.example/", "//evil.example", "/\\evil", ""] {
            assert_eq!(safe_next(other), "/", "{other}");
        }
    }
}
