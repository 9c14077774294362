//! "Did you mean …?": the known names nearest to one a user mistyped, for
//! the messages of unknown losses, models and datasets.

/// Edit distance (insertions, deletions, substitutions) between `a` and `b`,
/// counted in characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The form names are compared in: lower case, without `-`, `_`, `.` and spaces.
fn folded(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '-' | '_' | '.' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The candidates nearest to `word`, best first, at most `most`: those equal
/// to it but for case and separators, those containing it or contained in it,
/// and those within an edit distance of a third of its length (at least 2).
pub fn nearest<'a>(word: &str, candidates: &[&'a str], most: usize) -> Vec<&'a str> {
    let w = folded(word);
    let limit = (w.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, &str)> = candidates
        .iter()
        .filter_map(|&c| {
            let f = folded(c);
            let score = if f == w {
                0
            } else if !w.is_empty() && (f.contains(&w) || w.contains(&f)) && f.len() >= 3 {
                1
            } else {
                let d = edit_distance(&w, &f);
                if d > limit {
                    return None;
                }
                1 + d
            };
            Some((score, c))
        })
        .collect();
    scored.sort();
    scored.dedup_by_key(|(_, c)| *c);
    scored.into_iter().take(most).map(|(_, c)| c).collect()
}

/// `"; did you mean a or b?"`, or nothing when no candidate is near.
pub fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    let near = nearest(word, candidates, 3);
    match near.as_slice() {
        [] => String::new(),
        [one] => format!("; did you mean {one}?"),
        [first @ .., last] => format!("; did you mean {} or {last}?", first.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("infonce", "infonce"), 0);
        assert_eq!(edit_distance("infonse", "infonce"), 1);
    }

    #[test]
    fn nearest_ignores_case_and_separators_and_ranks_by_distance() {
        let losses = [
            "infonce",
            "hard_infonce",
            "nt_xent",
            "simple",
            "hard_simple",
        ];
        assert_eq!(nearest("infoNCE", &losses, 3), ["infonce", "hard_infonce"]);
        assert_eq!(nearest("nt-xent", &losses, 3)[0], "nt_xent");
        assert!(nearest("triplet", &losses, 3).is_empty());
        let models = ["infonce-t0.2", "infonce-t0.3", "simple", "hard-simple"];
        assert_eq!(
            nearest("infonce-t02", &models, 2),
            ["infonce-t0.2", "infonce-t0.3"]
        );
        assert_eq!(
            did_you_mean("infonce-t02", &models[..1]),
            "; did you mean infonce-t0.2?"
        );
        assert_eq!(did_you_mean("zzzzzz", &models), "");
    }
}
