//! The default native backend, wgpu (here on lavapipe, Mesa's software Vulkan, which `make test`
//! installs), computes what the CPU backend computes: a Query2Label head with the same weights
//! gives the same logits and attention on both.

use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::{Device, DeviceKind, Distribution, Tensor};
use querylabel::head::Query2LabelConfig;
use querylabel_tests::max_abs_diff;

fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor.into_data().try_into_vec_as::<f32>().unwrap()
}

#[test]
fn query2label_gives_the_same_logits_and_attention_on_wgpu_as_on_the_cpu() {
    let cpu = Device::flex();
    let gpu = Device::wgpu(DeviceKind::DefaultDevice);
    let config = Query2LabelConfig::new(5, 16)
        .with_hidden_dim(16)
        .with_heads(2)
        .with_feedforward_dim(32);
    let head = config.init(&cpu);

    // The same parameters on the GPU, through the checkpoint format.
    let mut saved = BurnpackStore::from_bytes(None);
    head.save_into(&mut saved).unwrap();
    let mut gpu_head = config.init(&gpu);
    let result = gpu_head
        .load_from(&mut BurnpackStore::from_bytes(Some(
            saved.get_bytes().unwrap(),
        )))
        .unwrap();
    assert!(
        result.errors.is_empty() && result.missing.is_empty(),
        "{result:?}"
    );

    let features = Tensor::<4>::random([2, 16, 3, 4], Distribution::Default, &cpu);
    let on_gpu = gpu_head.forward(Tensor::from_data(features.to_data(), &gpu));
    let on_cpu = head.forward(features);

    let logits_error = max_abs_diff(&values(on_gpu.logits), &values(on_cpu.logits));
    assert!(logits_error < 1e-4, "logits differ by {logits_error}");
    for (gpu_layer, cpu_layer) in on_gpu
        .cross_attention
        .into_iter()
        .zip(on_cpu.cross_attention)
    {
        let error = max_abs_diff(&values(gpu_layer), &values(cpu_layer));
        assert!(error < 1e-5, "attention differs by {error}");
    }
}

/// Why `trainer train --device 0,1` sums its replicas' gradients itself
/// (trainer/src/data_parallel.rs) instead of through Burn's `all_reduce`: in Burn 0.22.1 the
/// collective reaches cubecl's compute client, and only CUDA has a transport between devices
/// there; wgpu refuses it, on a thread of Burn's own, while the caller gets a tensor back as if
/// it had worked. When this test fails, Burn can reduce across wgpu devices, and the trainer
/// should use it.
#[test]
fn burn_all_reduce_has_no_transport_between_wgpu_devices() {
    use burn::tensor::distributed::{ReduceOperation, all_reduce};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    // The refusal is a panic on the thread that runs the collective, not on this one: collect
    // every thread's panic messages while the reduction runs.
    let panics = Arc::new(Mutex::new(Vec::<String>::new()));
    let previous_hook = std::panic::take_hook();
    let seen = panics.clone();
    std::panic::set_hook(Box::new(move |info| {
        seen.lock().unwrap().push(info.to_string())
    }));
    let gpu = Device::wgpu(DeviceKind::DefaultDevice);
    let gradient = Tensor::<1>::ones([4], &gpu);
    let _unreduced = all_reduce(gradient, ReduceOperation::Sum, vec![gpu.clone()]).resolve();
    let start = Instant::now();
    let refusal = loop {
        let found = (panics.lock().unwrap().iter())
            .find(|m| m.contains("all_reduce"))
            .cloned();
        if found.is_some() || start.elapsed() > Duration::from_secs(20) {
            break found;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    std::panic::set_hook(previous_hook);
    let refusal = refusal.expect("Burn reduced across wgpu devices: the replica path can go");
    assert!(
        refusal.contains("no transport between its devices"),
        "refused for another reason: {refusal}"
    );
}
