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
        let now = embedeval::cli::output::to_json("ListEvaluationsResponse", &now).unwrap();
        assert_eq!(
            now,
            json("evaluations.json"),
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
