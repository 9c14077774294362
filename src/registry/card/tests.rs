//! The cards' tests: parsing, resolution from the graph, checks, diffs.

use super::*;

pub(crate) const CARD: &str = r#"
description = "test"
[training]
loss = "infonce"
temperature = 0.2
dataset = "digits"
epochs = 3
seed = 0
batch_size = 256
[input]
name = "images"
dtype = "float32"
shape = [-1, 1, 8, 8]
layout = "NCHW"
scale = 0.0625
mean = [0.0]
std = [1.0]
[outputs]
names = ["embedding", "features"]
embedding = "embedding"
features = "features"
"#;

fn spec(name: &str, dtype: ElementType, shape: &[i64]) -> TensorSpec {
    TensorSpec {
        name: name.into(),
        dtype: Some(dtype),
        shape: shape.to_vec(),
    }
}

/// The digits zoo's graph: one 1×8×8 float input, two outputs.
fn digits_graph() -> (Vec<TensorSpec>, Vec<TensorSpec>) {
    (
        vec![spec("images", ElementType::Float32, &[-1, 1, 8, 8])],
        vec![
            spec("embedding", ElementType::Float32, &[-1, 128]),
            spec("features", ElementType::Float32, &[-1, 64]),
        ],
    )
}

fn parse(text: &str) -> Result<ModelCard> {
    let (inputs, outputs) = digits_graph();
    CardFile::parse(text)?.resolve(&inputs, &outputs)
}

#[test]
fn training_keys_and_the_tags_table_are_the_tags() {
    let text = "[training]\nloss = \"infonce\"\ntemperature = 0.2\nseed = 3\n\
                epochs = 300\narchitecture = \"cnn\"\nfinal_loss = 2.1\ntrain_seconds = 9.5\n\
                [tags]\naugmentation = \"crop+flip\"\nbatch = 512\n";
    let card = parse(text).unwrap();
    let want: BTreeMap<String, String> = [
        ("loss", "infonce"),
        ("temperature", "0.2"),
        ("seed", "3"),
        ("epochs", "300"),
        ("architecture", "cnn"),
        ("augmentation", "crop+flip"),
        ("batch", "512"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(
        card.tags, want,
        "measured keys are not tags; unset keys are absent"
    );
    let again = "[training]\nloss = \"simple\"\n[tags]\nloss = \"x\"\n";
    assert!(parse(again)
        .unwrap_err()
        .to_string()
        .contains("repeats a [training] key"));
    let bad = "[training]\nloss = \"simple\"\n[tags]\n\"a b\" = \"x\"\n";
    assert!(parse(bad).unwrap_err().to_string().contains("tag key"));
    assert_eq!(parse_tag("seed=1").unwrap(), ("seed".into(), "1".into()));
    assert_eq!(parse_tag(" arch = resnet18 ").unwrap().1, "resnet18");
    assert!(parse_tag("seed").is_err());
    assert!(parse_tag("=1").is_err());
    assert!(parse_tag("k=a\nb").is_err());
}

#[test]
fn a_card_of_only_the_loss_is_completed_from_the_graph() {
    let (_, outputs) = digits_graph();
    let inputs = [spec("x", ElementType::Float32, &[-1, 3, 224, 224])];
    let text = "[training]\nloss = \"infonce\"\ntemperature = 0.2\n";
    let card = CardFile::parse(text)
        .unwrap()
        .resolve(&inputs, &outputs)
        .unwrap();
    assert_eq!(card.input.name, "x");
    assert_eq!(card.input.shape, vec![-1, 3, 224, 224]);
    assert_eq!(card.input.layout, Layout::NCHW);
    assert_eq!(card.input.dtype, InputDType::Float32);
    assert_eq!(card.input.scale, 1.0 / 255.0);
    assert_eq!(card.input.mean, vec![0.0; 3]);
    assert_eq!(card.input.resize, Resize::Bilinear);
    assert_eq!(card.outputs.embedding, "embedding");
    assert_eq!(card.outputs.features.as_deref(), Some("features"));
    assert_eq!(card.training.temperature, 0.2);
    assert_eq!(card.training.epochs, 0);
    for key in [
        "input.name",
        "input.shape",
        "outputs.embedding",
        "input.preset",
    ] {
        assert!(card.inferred.contains(&key.to_string()), "{key}");
    }
    card.check_against(&inputs, &outputs).unwrap();

    // Channels last, and a lone output of any name.
    let nhwc = [spec("pixels", ElementType::Uint8, &[-1, 32, 32, 3])];
    let lone = [spec("out", ElementType::Float32, &[-1, 2048])];
    let card = CardFile::parse("[training]\nloss = \"simple\"\n")
        .unwrap()
        .resolve(&nhwc, &lone)
        .unwrap();
    assert_eq!(card.input.layout, Layout::NHWC);
    assert_eq!(card.input.dtype, InputDType::Uint8);
    assert_eq!(card.outputs.embedding, "out");
    assert_eq!(card.outputs.features, None);
    assert_eq!(card.training.temperature, 0.0);
}

#[test]
fn presets_give_scale_mean_and_std_and_explicit_values_win() {
    let (_, outputs) = digits_graph();
    let rgb = [spec("x", ElementType::Float32, &[-1, 3, 32, 32])];
    let resolve = |input: &str| {
        let text = format!("[training]\nloss = \"simple\"\n[input]\n{input}");
        CardFile::parse(&text).and_then(|f| f.resolve(&rgb, &outputs))
    };
    let card = resolve("preset = \"imagenet\"").unwrap();
    assert_eq!(card.input.mean, vec![0.485, 0.456, 0.406]);
    assert_eq!(card.input.std, vec![0.229, 0.224, 0.225]);
    assert_eq!(card.input.scale, 1.0 / 255.0);
    assert_eq!(card.input.preset, Some(Preset::Imagenet));
    let card = resolve("preset = \"cifar10\"\nstd = [1.0, 1.0, 1.0]").unwrap();
    assert_eq!(card.input.mean, vec![0.4914, 0.4822, 0.4465]);
    assert_eq!(card.input.std, vec![1.0; 3]);
    let err = resolve("preset = \"imagenet\"")
        .and_then(|_| {
            CardFile::parse("[training]\nloss = \"simple\"\n[input]\npreset = \"imagenet\"")?
                .resolve(&digits_graph().0, &outputs)
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("3 channels but the input has 1"), "{err}");
    assert!(resolve("preset = \"vgg\"").is_err());
}

#[test]
fn outputs_that_cannot_be_told_apart_need_the_card() {
    let (inputs, _) = digits_graph();
    let two = [
        spec("a", ElementType::Float32, &[-1, 128]),
        spec("b", ElementType::Float32, &[-1, 64]),
    ];
    let file = CardFile::parse("[training]\nloss = \"simple\"\n").unwrap();
    let err = file.resolve(&inputs, &two).unwrap_err().to_string();
    assert!(
        err.contains("[\"a\", \"b\"]") && err.contains("`outputs.embedding`"),
        "{err}"
    );
    let named = CardFile::parse("[training]\nloss = \"simple\"\n[outputs]\nembedding = \"b\"\n")
        .unwrap()
        .resolve(&inputs, &two)
        .unwrap();
    assert_eq!(named.outputs.names, vec!["b".to_string()]);
    let two_inputs = [
        inputs[0].clone(),
        spec("mask", ElementType::Float32, &[-1, 8]),
    ];
    let err = file
        .resolve(&two_inputs, &digits_graph().1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("exactly one input"), "{err}");
    let fixed = [spec("x", ElementType::Float32, &[1, 3, 32, 32])];
    let err = file
        .resolve(&fixed, &digits_graph().1)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("fixed batch axis") && err.contains("dynamic_axes"),
        "{err}"
    );
    let free = [spec("x", ElementType::Float32, &[-1, 3, -1, -1])];
    let err = file
        .resolve(&free, &digits_graph().1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("give input.shape"), "{err}");
}

#[test]
fn the_graphs_metadata_gives_the_normalisation_the_card_does_not() {
    let (inputs, outputs) = digits_graph();
    let card = CardFile::parse("[training]\nloss = \"simple\"\n").unwrap();
    let meta = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let none = card.resolve_with(&inputs, &outputs, &meta(&[])).unwrap();
    assert_eq!(none.warnings, [ASSUMED_NORMALISATION]);
    let given = card
        .resolve_with(
            &inputs,
            &outputs,
            &meta(&[
                (METADATA_MEAN, "0.5"),
                (METADATA_STD, "[0.25]"),
                (METADATA_SCALE, "0.0625"),
            ]),
        )
        .unwrap();
    assert!(given.warnings.is_empty());
    assert_eq!(
        (
            given.input.scale,
            given.input.mean.clone(),
            given.input.std.clone()
        ),
        (0.0625, vec![0.5], vec![0.25])
    );
    assert!(given.inferred.contains(&"input.normalisation".to_string()));
    let preset = card
        .resolve_with(&inputs, &outputs, &meta(&[(METADATA_PRESET, "none")]))
        .unwrap();
    assert!(preset.warnings.is_empty());
    assert_eq!(preset.input.preset, Some(Preset::None));
    // The card wins over the graph.
    let own = CardFile::parse("[training]\nloss = \"simple\"\n[input]\npreset = \"none\"\n")
        .unwrap()
        .resolve_with(
            &inputs,
            &outputs,
            &meta(&[(METADATA_MEAN, "0.5"), (METADATA_STD, "0.25")]),
        )
        .unwrap();
    assert_eq!(own.input.mean, vec![0.0]);
    assert!(card
        .resolve_with(&inputs, &outputs, &meta(&[(METADATA_PRESET, "vgg")]))
        .is_err());
}

#[test]
fn a_loss_with_a_temperature_needs_one() {
    let err = CardFile::parse("[training]\nloss = \"infonce\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("temperature is required") && err.contains("`training.temperature`"),
        "{err}"
    );
    let err = CardFile::parse("[input]\nname = \"x\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing field `training`"), "{err}");
}

#[test]
fn parses_a_card_and_keeps_extra_training_keys() {
    let card = parse(CARD).unwrap();
    assert_eq!(card.training.temperature, 0.2);
    assert_eq!(card.input.chw(), (1, 8, 8));
    assert_eq!(
        card.training.extra.get("batch_size"),
        Some(&toml::Value::Integer(256))
    );
}

#[test]
fn the_probe_prefers_backbone_features() {
    let card = parse(CARD).unwrap();
    assert_eq!(card.probe_output(), "features");
    let without = CARD.replace("features = \"features\"\n", "").replace(
        "names = [\"embedding\", \"features\"]",
        "names = [\"embedding\"]",
    );
    assert_eq!(parse(&without).unwrap().probe_output(), "embedding");
}

#[test]
fn a_missing_field_is_named() {
    let text = CARD.replace("loss = \"infonce\"\n", "");
    let err = parse(&text).unwrap_err().to_string();
    assert!(err.contains("missing field `loss`"), "{err}");
}

#[test]
fn an_unknown_field_is_named() {
    let text = CARD.replace("layout = \"NCHW\"", "layout = \"NCHW\"\nlayuot = 1");
    let err = parse(&text).unwrap_err().to_string();
    assert!(err.contains("layuot"), "{err}");
}

#[test]
fn bad_values_are_rejected() {
    for (from, to, needle) in [
        (
            "shape = [-1, 1, 8, 8]",
            "shape = [8, 1, 8, 8]",
            "batch axis",
        ),
        ("mean = [0.0]", "mean = [0.0, 0.0]", "one value per channel"),
        ("std = [1.0]", "std = [0.0]", "std values must be > 0"),
        (
            "embedding = \"embedding\"",
            "embedding = \"emb\"",
            "not in outputs.names",
        ),
        ("temperature = 0.2", "temperature = -1.0", "temperature"),
    ] {
        let err = parse(&CARD.replace(from, to)).unwrap_err().to_string();
        assert!(err.contains(needle), "{to}: {err}");
    }
}

#[test]
fn checks_against_the_graph() {
    let card = parse(CARD).unwrap();
    let inputs = [spec("images", ElementType::Float32, &[-1, 1, 8, 8])];
    let outputs = [
        spec("embedding", ElementType::Float32, &[-1, 128]),
        spec("features", ElementType::Float32, &[-1, 64]),
    ];
    card.check_against(&inputs, &outputs).unwrap();

    let wrong_shape = [spec("images", ElementType::Float32, &[-1, 3, 32, 32])];
    let err = card
        .check_against(&wrong_shape, &outputs)
        .unwrap_err()
        .to_string();
    assert!(err.contains("[-1, 3, 32, 32]"), "{err}");

    let wrong_type = [spec("images", ElementType::Uint8, &[-1, 1, 8, 8])];
    let err = card
        .check_against(&wrong_type, &outputs)
        .unwrap_err()
        .to_string();
    assert!(err.contains("uint8"), "{err}");

    let err = card
        .check_against(&inputs, &outputs[..1])
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"features\" is not an output"), "{err}");
}
