//! ResNet-50/101: output shapes, torchvision parameter names, a safetensors round trip, and
//! frozen batch norm.

use std::collections::BTreeSet;
use std::path::PathBuf;

use burn::module::Module;
use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot};
use burn::tensor::{Device, Distribution, Tensor};
use querylabel::backbone::{
    Backbone, BackboneConfig, BackboneKind, ResNet, ResNetConfig, ResNetDepth,
};
use querylabel_trainer::weights::{load_safetensors, save_safetensors};

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("querylabel-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().unwrap()
}

/// The keys of torchvision's `resnet50()/resnet101().state_dict()` without
/// `num_batches_tracked`.
fn torchvision_keys(blocks: [usize; 4], with_fc: bool) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let bn = |keys: &mut BTreeSet<String>, prefix: &str| {
        for s in ["weight", "bias", "running_mean", "running_var"] {
            keys.insert(format!("{prefix}.{s}"));
        }
    };
    keys.insert("conv1.weight".to_string());
    bn(&mut keys, "bn1");
    for (stage, &n) in blocks.iter().enumerate() {
        for b in 0..n {
            let p = format!("layer{}.{b}", stage + 1);
            for c in 1..=3 {
                keys.insert(format!("{p}.conv{c}.weight"));
                bn(&mut keys, &format!("{p}.bn{c}"));
            }
            if b == 0 {
                keys.insert(format!("{p}.downsample.0.weight"));
                bn(&mut keys, &format!("{p}.downsample.1"));
            }
        }
    }
    if with_fc {
        keys.insert("fc.weight".to_string());
        keys.insert("fc.bias".to_string());
    }
    keys
}

fn pytorch_names(model: &ResNet) -> BTreeSet<String> {
    model
        .collect(None, Some(Box::new(BurnToPyTorchAdapter)), true)
        .into_iter()
        .map(|t| t.name)
        .collect()
}

/// Trainable parameters (running statistics excluded), as torchvision counts them.
fn trainable_params(model: &ResNet) -> usize {
    model
        .collect(None, None, true)
        .into_iter()
        .filter(|t| !t.name.contains(".running_"))
        .map(|t| t.shape.num_elements())
        .sum()
}

#[test]
fn resnet_shapes_and_torchvision_names() {
    let device = Device::flex();
    for depth in [ResNetDepth::ResNet50, ResNetDepth::ResNet101] {
        let model = ResNetConfig::new(depth).init(&device);
        assert_eq!(model.feature_channels(), 2048);
        let x = Tensor::<4>::random([1, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device);
        assert_eq!(
            model.forward_features(x).dims(),
            [1, 2048, 2, 2],
            "{depth:?}"
        );
        assert_eq!(
            pytorch_names(&model),
            torchvision_keys(depth.blocks(), false)
        );
        let expected_params = match depth {
            // torchvision: 25_557_032 and 44_549_160 parameters with fc (2048*1000 + 1000).
            ResNetDepth::ResNet50 => 25_557_032 - 2_049_000,
            ResNetDepth::ResNet101 => 44_549_160 - 2_049_000,
        };
        assert_eq!(trainable_params(&model), expected_params, "{depth:?}");
    }
    let model = ResNetConfig::new(ResNetDepth::ResNet50)
        .with_with_classifier(true)
        .init(&device);
    assert_eq!(pytorch_names(&model), torchvision_keys([3, 4, 6, 3], true));
    let x = Tensor::<4>::random([2, 3, 64, 96], Distribution::Normal(0.0, 1.0), &device);
    assert_eq!(model.forward_features(x.clone()).dims(), [2, 2048, 2, 3]);
    assert_eq!(model.forward_logits(x).dims(), [2, 1000]);
}

#[test]
fn resnet_safetensors_round_trip() {
    let dir = scratch_dir("resnet-round-trip");
    let plain = Device::flex();
    // Make the batch-norm statistics non-trivial with one training-mode forward pass.
    let model = ResNetConfig::new(ResNetDepth::ResNet50).init(&plain.clone().autodiff());
    let warm = Tensor::<4>::random(
        [2, 3, 64, 64],
        Distribution::Normal(0.5, 2.0),
        &plain.clone().autodiff(),
    );
    let _ = model.forward_features(warm);
    let model = model.valid();
    let mean = values(model.bn1.running_mean.value_sync());
    assert!(
        mean.iter().any(|&m| m != 0.0),
        "training forward updated the running mean"
    );

    let path = dir.join("resnet50.safetensors");
    save_safetensors(&model, &path).unwrap();
    let fresh = ResNetConfig::new(ResNetDepth::ResNet50).init(&plain);
    let loaded = load_safetensors(fresh, &path, |_| false).unwrap();

    let x = Tensor::<4>::random([1, 3, 64, 64], Distribution::Normal(0.0, 1.0), &plain);
    assert_eq!(
        values(model.forward_features(x.clone())),
        values(loaded.forward_features(x.clone()))
    );

    // The same through the Backbone enum (variant names are left out of the paths).
    let backbone: Backbone = loaded.into();
    let path2 = dir.join("backbone.safetensors");
    save_safetensors(&backbone, &path2).unwrap();
    let fresh = BackboneConfig::new(BackboneKind::ResNet50).init(&plain);
    assert_eq!(fresh.feature_channels(), 2048);
    let back = load_safetensors(fresh, &path2, |_| false).unwrap();
    assert_eq!(
        values(model.forward_features(x.clone())),
        values(back.forward_features(x))
    );

    // A file without the classifier does not load into a model with one; the error names
    // the file and the tensors.
    let err = format!(
        "{:#}",
        load_safetensors(
            ResNetConfig::new(ResNetDepth::ResNet50)
                .with_with_classifier(true)
                .init(&plain),
            &path,
            |_| false
        )
        .unwrap_err()
    );
    assert!(err.contains("fc.weight"), "{err}");
    assert!(err.contains("resnet50.safetensors"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn frozen_batch_norm_uses_running_statistics_and_is_not_trained() {
    let device = Device::flex().autodiff();
    let x = Tensor::<4>::random([2, 3, 64, 64], Distribution::Normal(0.5, 2.0), &device);

    // Trainable batch norm: the training forward uses batch statistics and updates the
    // running mean.
    let trainable = ResNetConfig::new(ResNetDepth::ResNet50).init(&device);
    let _ = trainable.forward_features(x.clone());
    assert!(
        values(trainable.bn1.running_mean.value_sync())
            .iter()
            .any(|&m| m != 0.0)
    );

    // Frozen batch norm: same output as inference, running statistics untouched, no gradient
    // for gamma/beta, while the convolutions still get one.
    let frozen = ResNetConfig::new(ResNetDepth::ResNet50)
        .with_frozen_bn(true)
        .init(&device);
    let y = frozen.forward_features(x.clone());
    assert!(
        values(frozen.bn1.running_mean.value_sync())
            .iter()
            .all(|&m| m == 0.0)
    );
    assert!(
        values(frozen.layer4[2].bn3.running_var.value_sync())
            .iter()
            .all(|&v| v == 1.0)
    );
    let inference = frozen.valid().forward_features(x.clone().inner());
    let diff = values(y.clone().inner())
        .iter()
        .zip(values(inference))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        diff < 1e-5,
        "frozen forward differs from inference by {diff}"
    );

    let grads = y.sum().backward();
    assert!(frozen.conv1.weight.val().grad(&grads).is_some());
    assert!(frozen.layer1[0].conv2.weight.val().grad(&grads).is_some());
    assert!(frozen.bn1.gamma.val().grad(&grads).is_none());
    assert!(frozen.bn1.beta.val().grad(&grads).is_none());
    assert!(
        frozen.layer1[0]
            .downsample
            .as_ref()
            .unwrap()
            .1
            .gamma
            .val()
            .grad(&grads)
            .is_none()
    );

    // Switching modes does not unfreeze.
    let again = frozen.valid().train();
    let _ = again.forward_features(x);
    assert!(
        values(again.bn1.running_mean.value_sync())
            .iter()
            .all(|&m| m == 0.0)
    );
}
