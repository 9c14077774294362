//! The database an earlier release left behind reads in this one as that
//! release answered it: `tests/data/previous-release/` holds the SQLite file
//! of the release before the domain records (reports stored as protobuf,
//! row format 0) and what its CLI printed for them (`make.sh` there makes
//! both). Opening the copy rewrites every row as a domain record; the
//! reports then convert back into the very messages the earlier release
//! sent.

use std::path::Path;

use embedeval::database::ReportStore;
use embedeval::proto;

fn earlier(file: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/previous-release")
        .join(file)
}

/// `now` without the fields added since the earlier release (keys `then`
/// lacks) where they hold their default, as such rows leave them (null, an
/// empty list or string, false, zero), at any depth.
fn without_added_empties(now: &mut serde_json::Value, then: &serde_json::Value) {
    use serde_json::Value;
    match (now, then) {
        (Value::Object(now), Value::Object(then)) => {
            now.retain(|key, value| {
                let default = match value {
                    Value::Null => true,
                    Value::Array(a) => a.is_empty(),
                    Value::String(s) => s.is_empty(),
                    Value::Bool(b) => !*b,
                    Value::Number(n) => n.as_f64() == Some(0.0),
                    Value::Object(_) => false,
                };
                then.contains_key(key) || !default
            });
            for (key, value) in now.iter_mut() {
                if let Some(t) = then.get(key) {
                    without_added_empties(value, t);
                }
            }
        }
        (Value::Array(now), Value::Array(then)) => {
            for (n, t) in now.iter_mut().zip(then) {
                without_added_empties(n, t);
            }
        }
        _ => {}
    }
}

fn json(file: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(earlier(file)).unwrap()).unwrap()
}

#[tokio::test]
async fn an_earlier_releases_database_answers_as_that_release_did() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(earlier("embedeval.db"), dir.path().join("embedeval.db")).unwrap();
    let url = ReportStore::default_url(dir.path());
    // Twice: the first opening migrates, the second finds nothing to do;
    // both answer the same.
    for opening in 0..2 {
        let store = ReportStore::open(&url).await.unwrap();
        let (page, next) = store.list("", "digits", 50, "").await.unwrap();
        assert_eq!(page.len(), 4, "opening {opening}");
        let now = proto::ListEvaluationsResponse {
            evaluations: page.into_iter().map(Into::into).collect(),
            next_page_token: next,
        };
        let mut now = embedeval::cli::output::to_json("ListEvaluationsResponse", &now).unwrap();
        let then = json("evaluations.json");
        without_added_empties(&mut now, &then);
        assert_eq!(
            now, then,
            "opening {opening}: the reports as the earlier release answered them"
        );

        let (comparisons, _) = store.comparisons("", 0, "").await.unwrap();
        let then = json("comparisons.json");
        assert_eq!(comparisons.len(), 1);
        let rows = store.reports_of(&comparisons[0].id).await.unwrap();
        let summary: embedeval::proto::ComparisonSummary =
            embedeval::views::summary(comparisons[0].clone(), &rows).into();
        let now = embedeval::cli::output::to_json("ComparisonSummary", &summary).unwrap();
        assert_eq!(now, then["comparisons"][0], "opening {opening}");
        store.close().await;
    }
}
