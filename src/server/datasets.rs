//! embedeval.v1.DatasetService.

use std::sync::Arc;

use tonic::{Request, Response, Status, Streaming};

use std::path::PathBuf;

use super::AppState;
use crate::data::content_id;
use crate::data::dataset::{Format, Manifest};
use crate::data::{Dataset, LoadedDataset};
use crate::error::Error;
use crate::proto;
use crate::proto::dataset_service_server::DatasetService;
use crate::proto::register_dataset_request;
use crate::registry::upload::{StagedFile, Staging};
use crate::registry::validate_name;

/// The DatasetService implementation.
#[derive(Debug)]
pub struct DatasetApi {
    state: Arc<AppState>,
}

impl DatasetApi {
    /// Serves the state's dataset registry.
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl DatasetService for DatasetApi {
    async fn list_datasets(
        &self,
        _: Request<proto::ListDatasetsRequest>,
    ) -> Result<Response<proto::ListDatasetsResponse>, Status> {
        self.state.ensure_ready()?;
        Ok(Response::new(proto::ListDatasetsResponse {
            datasets: self.state.registries.listing::<LoadedDataset>().await?,
        }))
    }

    async fn get_dataset(
        &self,
        request: Request<proto::GetDatasetRequest>,
    ) -> Result<Response<proto::DatasetInfo>, Status> {
        self.state.ensure_ready()?;
        Ok(Response::new(
            self.state.dataset(&request.get_ref().name).await?.info(),
        ))
    }

    async fn register_dataset(
        &self,
        request: Request<Streaming<proto::RegisterDatasetRequest>>,
    ) -> Result<Response<proto::DatasetInfo>, Status> {
        self.state.ensure_ready()?;
        Ok(Response::new(self.register(request.into_inner()).await?))
    }

    async fn delete_dataset(
        &self,
        request: Request<proto::DeleteDatasetRequest>,
    ) -> Result<Response<proto::DeleteDatasetResponse>, Status> {
        self.state.ensure_ready()?;
        let name = request.into_inner().name;
        validate_name("dataset", &name)?;
        self.state
            .registries
            .remove_named::<crate::data::LoadedDataset>(&name)
            .await?;
        tracing::info!(dataset = %name, "dataset deleted");
        Ok(Response::new(proto::DeleteDatasetResponse { name }))
    }
}

/// Checks a file path inside an upload: relative, at most three parts
/// (split/class/file), each of `[A-Za-z0-9._-]` and not starting with '.'.
fn checked_path(path: &str) -> Result<PathBuf, Error> {
    let parts: Vec<&str> = path.split('/').collect();
    let ok = !path.is_empty()
        && parts.len() <= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && !p.starts_with('.')
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        });
    if ok {
        Ok(parts.iter().collect())
    } else {
        Err(Error::InvalidArgument(format!(
            "file path {path:?} is not allowed: use up to three '/'-separated parts of [A-Za-z0-9._-], none starting with '.'"
        )))
    }
}

impl DatasetApi {
    /// Streams the files into a staging folder, opens the dataset and reads
    /// every split (so a truncated or malformed file is refused), then moves
    /// it into the datasets root.
    async fn register(
        &self,
        mut stream: Streaming<proto::RegisterDatasetRequest>,
    ) -> Result<proto::DatasetInfo, Error> {
        let interrupted = super::convert::interrupted;
        let Some(proto::RegisterDatasetRequest {
            payload: Some(register_dataset_request::Payload::Header(header)),
        }) = stream.message().await.map_err(interrupted)?
        else {
            return Err(Error::InvalidArgument(
                "the first RegisterDataset message must carry the header".into(),
            ));
        };
        validate_name("dataset", &header.name)?;
        if !header.format.is_empty() {
            Format::parse(&header.format)?;
        }
        let fill = async |staging: &mut Staging| {
            let mut current: Option<(String, StagedFile)> = None;
            let mut written = std::collections::BTreeSet::new();
            while let Some(message) = stream.message().await.map_err(interrupted)? {
                let Some(register_dataset_request::Payload::File(chunk)) = message.payload else {
                    return Err(Error::InvalidArgument(
                        "after the header, RegisterDataset messages must carry file chunks".into(),
                    ));
                };
                staging.charge(chunk.data.len() as u64)?;
                if current.as_ref().map(|(p, _)| p) != Some(&chunk.path) {
                    if let Some((_, file)) = current.take() {
                        file.finish().await?;
                    }
                    let rel = checked_path(&chunk.path)?;
                    if !written.insert(chunk.path.clone()) {
                        return Err(Error::InvalidArgument(format!(
                            "file {:?} was sent in two separate runs of chunks",
                            chunk.path
                        )));
                    }
                    let path = staging.dir().join(rel);
                    if let Some(parent) = path.parent() {
                        tokio::fs::create_dir_all(parent)
                            .await
                            .map_err(|e| Error::io(format!("create {}", parent.display()), e))?;
                    }
                    current = Some((chunk.path.clone(), StagedFile::create(&path).await?));
                }
                if let Some((_, file)) = current.as_mut() {
                    file.write(&chunk.data).await?;
                }
            }
            if let Some((_, file)) = current.take() {
                file.finish().await?;
            }
            Ok(())
        };
        let name = header.name.clone();
        let entry_name = name.clone();
        let replace = header.replace;
        let limit = crate::memory::payload_limit(self.state.max_dataset_bytes);
        let max_bytes = limit.bytes;
        let open = move |dir: &std::path::Path, at: PathBuf| {
            let manifest = dir.join("dataset.toml");
            if manifest.exists() {
                if has_settings(&header) {
                    return Err(Error::InvalidArgument(
                        "the upload has a dataset.toml: put channels, image_size, crop_fraction and the splits in it \
                         rather than in the header (--channels, --image-size, --crop-fraction, --test-split, --train-split)"
                            .into(),
                    ));
                }
            } else {
                let text = written_manifest(&header, dir)?;
                std::fs::write(&manifest, text).map_err(|e| Error::io("write dataset.toml", e))?;
            }
            let mut opened = Dataset::open(dir)?;
            // Decoded, the images may be far larger than the upload.
            let decoded = opened.summary.decoded_bytes().unwrap_or(u64::MAX);
            if decoded > max_bytes {
                return Err(Error::ResourceExhausted(format!(
                    "dataset {name} decodes to {decoded} bytes of pixels, over the limit of {max_bytes} ({})",
                    limit.source
                )));
            }
            for split in opened.summary.splits.keys() {
                opened.load_split(split)?;
            }
            let id = content_id(dir)?;
            // It is served from where the install moves it.
            opened.dir = at;
            Ok(LoadedDataset::new(name, id, opened))
        };
        let (dataset, _) = self
            .state
            .registries
            .register(&entry_name, replace, max_bytes, fill, open)
            .await?;
        tracing::info!(dataset = %dataset.name, id = %dataset.id, "dataset registered");
        Ok(dataset.info())
    }
}

/// Whether the header carries settings that go into a dataset.toml.
fn has_settings(h: &proto::DatasetUpload) -> bool {
    h.channels != 0
        || h.image_size != 0
        || h.crop_fraction != 0.0
        || !h.test_split.is_empty()
        || !h.train_split.is_empty()
}

/// The dataset.toml written for an upload without one: the header's format
/// (or the one told from the files) and settings.
fn written_manifest(h: &proto::DatasetUpload, dir: &std::path::Path) -> Result<String, Error> {
    let format = if h.format.is_empty() {
        Format::detect(dir).ok_or_else(|| {
            Error::InvalidArgument(
                "the dataset has no dataset.toml and its format cannot be told from its files: \
                 add a dataset.toml, or give the format (--dataset-format embedeval-npy, cifar10, cifar100 or image-folder)"
                    .into(),
            )
        })?
    } else {
        Format::parse(&h.format)?
    };
    let text = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let manifest = Manifest {
        name: h.name.clone(),
        format: format.as_str().to_string(),
        channels: (h.channels != 0).then_some(h.channels as usize),
        image_size: (h.image_size != 0).then_some(h.image_size as usize),
        crop_fraction: (h.crop_fraction != 0.0).then_some(h.crop_fraction),
        test_split: text(&h.test_split),
        train_split: text(&h.train_split),
        ..Manifest::default()
    };
    toml::to_string(&manifest).map_err(|e| Error::Internal {
        task: "dataset.toml".into(),
        message: e.to_string(),
    })
}
