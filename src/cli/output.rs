//! What the client prints: `--format table|json|csv|markdown`. Tables are a
//! header and rows of cells, rendered as aligned columns, RFC 4180 CSV or a
//! Markdown table; JSON is the server's messages themselves, every field,
//! in the protobuf JSON mapping (names as in the .proto files, 64-bit
//! integers as strings, timestamps in RFC 3339), derived from the protos'
//! descriptors so that it cannot drift from them.

use std::sync::OnceLock;

use anyhow::Context;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

use crate::proto;
pub use crate::report::listing::Listing;

/// How a listing is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns.
    #[default]
    Table,
    /// The server's messages as JSON (protobuf JSON mapping, every field).
    Json,
    /// Comma-separated values with a header row (RFC 4180).
    Csv,
    /// A Markdown table.
    Markdown,
}

/// The embedeval protos' descriptors, decoded once.
fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(proto::FILE_DESCRIPTOR_SET)
            .expect("the embedded descriptor set decodes")
    })
}

/// A message as protobuf JSON; `name` is its full name without the package
/// (e.g. "ModelInfo").
pub fn to_json(name: &str, message: &impl prost::Message) -> anyhow::Result<serde_json::Value> {
    let full = format!("embedeval.v1.{name}");
    let descriptor = pool()
        .get_message_by_name(&full)
        .with_context(|| format!("no descriptor for {full}"))?;
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())?;
    let options = SerializeOptions::new()
        .skip_default_fields(false)
        .use_proto_field_name(true);
    let mut out = serde_json::Serializer::new(Vec::new());
    dynamic.serialize_with_options(&mut out, &options)?;
    Ok(serde_json::from_slice(&out.into_inner())?)
}

impl Listing {
    /// The listing rendered as `format` (JSON is printed from the messages,
    /// not from the cells; asked for here it gives the table).
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Table | Format::Json => self.to_table(),
            Format::Csv => self.to_csv(),
            Format::Markdown => self.to_markdown(),
        }
    }
}

/// Prints a JSON value, indented.
pub fn print_json(v: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Prints a message as protobuf JSON.
pub fn print_message(name: &str, message: &impl prost::Message) -> anyhow::Result<()> {
    print_json(&to_json(name, message)?)
}

/// Prints messages as a JSON array.
pub fn print_messages<M: prost::Message>(name: &str, messages: &[M]) -> anyhow::Result<()> {
    let values = messages
        .iter()
        .map(|m| to_json(name, m))
        .collect::<anyhow::Result<Vec<_>>>()?;
    print_json(&serde_json::Value::Array(values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_it_and_markdown_escapes_pipes() {
        use super::Listing;
        let listing = Listing::new(
            &["name", "note"],
            vec![
                vec!["a".into(), "x, \"y\"".into()],
                vec!["b|c".into(), "".into()],
            ],
        );
        assert_eq!(
            listing.render(Format::Csv),
            "name,note\na,\"x, \"\"y\"\"\"\nb|c,\n"
        );
        assert_eq!(
            listing.render(Format::Markdown),
            "| name | note |\n| --- | --- |\n| a | x, \"y\" |\n| b\\|c |  |\n"
        );
    }

    #[test]
    fn json_has_every_field_by_its_proto_name_and_rfc3339_times() {
        let report = proto::EvaluationReport {
            id: "e1".into(),
            created_at: Some(prost_types::Timestamp {
                seconds: 1_764_288_000,
                nanos: 0,
            }),
            ..Default::default()
        };
        let v = to_json("EvaluationReport", &report).unwrap();
        assert_eq!(v["id"], "e1");
        assert_eq!(v["created_at"], "2025-11-28T00:00:00Z");
        // Unset fields are present with their defaults.
        assert!(v.get("model_sha256").is_some(), "{v}");
        assert!(v.get("histograms").is_some(), "{v}");
    }
}
