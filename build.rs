//! Generates the gRPC code of `proto/embedeval/v1` into OUT_DIR, with a
//! descriptor set for server reflection. protoc comes from
//! `protoc-bin-vendored` unless PROTOC is set.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "proto/embedeval/v1/tensor.proto",
    "proto/embedeval/v1/model.proto",
    "proto/embedeval/v1/dataset.proto",
    "proto/embedeval/v1/embedding.proto",
    "proto/embedeval/v1/evaluation.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("PROTOC").is_none() {
        // SAFETY: build scripts are single-threaded; nothing reads the
        // environment concurrently.
        unsafe { std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    }
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PROTOC");

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let well_known = protoc_bin_vendored::include_path()?;
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("embedeval_descriptor.bin"))
        // Map fields as BTreeMap: a message encodes to the same bytes every
        // time (a report reads byte-identical through every replica).
        .btree_map(".")
        .emit_rerun_if_changed(false)
        .compile_protos(
            &PROTOS.iter().map(PathBuf::from).collect::<Vec<_>>(),
            &[PathBuf::from("proto"), well_known],
        )?;
    Ok(())
}
