//! The command line's names for the settings that messages from the layers
//! below name. Those layers serve gRPC and Python callers too, so they name
//! a setting as the API and the model card do, in backticks (`` `test_split` ``,
//! `` `channels=2` ``, `` `training.temperature` ``); the CLI shows each as
//! the flag that sets it (`--test-split`, `--channels 2`, `--tau`).

/// Each setting a message may name, and its flag.
const FLAGS: [(&str, &str); 20] = [
    ("recall_ks", "--recall-ks"),
    ("retrieval_gallery", "--retrieval-gallery"),
    ("kmeans_iterations", "--kmeans-iterations"),
    ("kmeans_restarts", "--kmeans-restarts"),
    ("kmeans_seed", "--kmeans-seed"),
    ("test_split", "--test-split"),
    ("train_split", "--train-split"),
    ("channels", "--channels"),
    ("image_size", "--image-size"),
    ("crop_fraction", "--crop-fraction"),
    ("format", "--dataset-format"),
    ("replace", "--replace"),
    ("training.loss", "--loss"),
    ("training.loss_name", "--loss-name"),
    ("training.temperature", "--tau"),
    ("input.preset", "--preset"),
    ("outputs.embedding", "--embedding-output"),
    ("database_url", "--database-url"),
    ("ort_lib", "--ort-lib"),
    ("max_dataset_bytes", "--max-dataset-bytes"),
];

/// `text` with each backticked setting of [`FLAGS`] written as its flag
/// (`` `name` `` → `--flag`, `` `name=value` `` → `--flag value`); other
/// backticked text stays as it is.
pub fn as_flags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('`') {
        let Some(len) = rest[open + 1..].find('`') else {
            break;
        };
        let inner = &rest[open + 1..open + 1 + len];
        let (name, value) = match inner.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (inner, None),
        };
        out.push_str(&rest[..open]);
        match FLAGS.iter().find(|(setting, _)| *setting == name) {
            Some((_, flag)) => {
                out.push_str(flag);
                if let Some(value) = value {
                    out.push(' ');
                    out.push_str(value);
                }
            }
            None => out.push_str(&rest[open..open + len + 2]),
        }
        rest = &rest[open + len + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::as_flags;

    #[test]
    fn settings_become_flags() {
        assert_eq!(
            as_flags("no split \"a\" (`test_split`); it has [\"b\"]"),
            "no split \"a\" (--test-split); it has [\"b\"]"
        );
        assert_eq!(
            as_flags(
                "register it with `channels=2`, or `training.loss=other` `training.loss_name=x`"
            ),
            "register it with --channels 2, or --loss other --loss-name x"
        );
        assert_eq!(
            as_flags("`resize = \"none\"` and `x"),
            "`resize = \"none\"` and `x"
        );
        assert_eq!(as_flags("nothing"), "nothing");
    }
}
