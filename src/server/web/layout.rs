//! The page shell every dashboard page shares (navigation, the stylesheet
//! and the script) and the small pieces of markup the pages repeat:
//! numbers, times, statuses, tags, progress bars.

use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::domain::{Report, Status, Timestamp};

/// Which part of the navigation a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Nav {
    /// None (login, errors).
    None,
    /// The comparisons.
    Comparisons,
    /// The evaluations.
    Evaluations,
    /// The models.
    Models,
    /// The datasets.
    Datasets,
    /// The training runs.
    Runs,
}

/// A whole page: `title` as its heading, `body` under it.
pub(super) fn page(title: &str, nav: Nav, body: Markup) -> Markup {
    let link = |to: Nav, href: &str, name: &str| {
        html! { a href=(href) aria-current=[(nav == to).then_some("page")] { (name) } }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · embedeval" }
                link rel="icon" href="/assets/favicon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/app.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "embedeval" }
                    nav {
                        (link(Nav::Comparisons, "/comparisons", "Comparisons"))
                        (link(Nav::Evaluations, "/evaluations", "Evaluations"))
                        (link(Nav::Runs, "/runs", "Runs"))
                        (link(Nav::Models, "/models", "Models"))
                        (link(Nav::Datasets, "/datasets", "Datasets"))
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A number with `digits` decimals; "–" for none, "NaN" kept as is.
pub(super) fn num(value: Option<f64>, digits: usize) -> String {
    match value {
        None => "–".into(),
        Some(v) if v.is_nan() => "NaN".into(),
        Some(v) => format!("{v:.digits$}"),
    }
}

/// `key=value` for a link's query string, the value percent-encoded (a
/// dataset named `a&b` or a page token with `+` or `/` survives the trip).
pub(super) fn query_pair(key: &str, value: &str) -> String {
    format!(
        "{key}={}",
        percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
    )
}

/// A share as a percentage with one decimal.
pub(super) fn pct(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{:.1}%", 100.0 * v),
        other => num(other, 1),
    }
}

/// τ as the tables show it ("–" for the τ-free losses).
pub(super) fn tau(value: f64) -> String {
    if value > 0.0 && value.is_finite() {
        format!("{value}")
    } else {
        "–".into()
    }
}

/// The value a sortable cell sorts by (empty sorts last).
pub(super) fn sort_key(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v}"),
        _ => String::new(),
    }
}

/// A time as UTC, to the second.
pub(super) fn time(t: Option<Timestamp>) -> String {
    let Some(t) = t else { return "–".into() };
    let secs = t.seconds;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The calendar date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A status badge.
pub(super) fn status(s: Status) -> Markup {
    let name = s.name();
    html! { span class={ "status " (name.to_ascii_lowercase()) } { (name) } }
}

/// Tags as `key=value` chips.
pub(super) fn tags<'a>(tags: impl IntoIterator<Item = (&'a String, &'a String)>) -> Markup {
    html! {
        @for (k, v) in tags { span.tag { (k) "=" (v) } " " }
    }
}

/// A progress bar that the script keeps moving from the evaluation's event
/// stream (`data-events`) and, at its end, replaces `data-replace` with the
/// report.
pub(super) fn live_progress(report: &Report) -> Markup {
    html! {
        div.live data-events={ "/evaluations/" (report.id) "/events" }
            data-report={ "/evaluations/" (report.id) "/report" } {
            progress max="1" value="0" {}
            " "
            span.stage { (report.status.name().to_ascii_lowercase()) }
        }
    }
}

/// Markup that is already HTML (an SVG drawn by the figures module).
pub(super) fn trusted(svg: String) -> PreEscaped<String> {
    PreEscaped(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            query_pair("dataset", "a&b c/+=é"),
            "dataset=a%26b%20c%2F%2B%3D%C3%A9"
        );
        assert_eq!(query_pair("page", ""), "page=");
    }

    #[test]
    fn times_read_as_utc_dates() {
        let at = |seconds| time(Some(Timestamp { seconds, nanos: 0 }));
        assert_eq!(at(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(at(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(at(1_796_601_599), "2026-12-06 23:59:59 UTC");
        assert_eq!(time(None), "–");
    }

    #[test]
    fn numbers_keep_none_and_nan_apart() {
        assert_eq!(num(None, 3), "–");
        assert_eq!(num(Some(f64::NAN), 3), "NaN");
        assert_eq!(num(Some(0.12345), 3), "0.123");
        assert_eq!(pct(Some(0.9876)), "98.8%");
        assert_eq!(tau(0.0), "–");
        assert_eq!(tau(0.2), "0.2");
    }
}
