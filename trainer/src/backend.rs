//! Choosing where tensors live: Burn picks the backend from the device at run time.

use burn::tensor::{Device, DeviceKind};
use serde::{Deserialize, Serialize};

/// The compute backends the trainer can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum BackendChoice {
    /// GPU through wgpu (Vulkan, Metal, DirectX); software Vulkan (lavapipe) where no GPU is.
    Wgpu,
    /// Burn's pure-Rust CPU backend.
    Flex,
    /// Burn's older CPU backend, deprecated by Burn in favour of flex (which was about 9× faster
    /// here); built with `--features ndarray`.
    #[cfg(feature = "ndarray")]
    Ndarray,
}

impl BackendChoice {
    /// The device with this index (GPU order as wgpu lists them; ignored on the CPU).
    pub fn device(self, index: usize) -> Device {
        match self {
            BackendChoice::Wgpu if index == 0 => Device::wgpu(DeviceKind::DefaultDevice),
            BackendChoice::Wgpu => Device::wgpu(DeviceKind::DiscreteGpu(index)),
            BackendChoice::Flex => Device::flex(),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)] // asked for by name; flex is the default CPU backend
            BackendChoice::Ndarray => Device::ndarray(),
        }
    }
}

impl std::fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendChoice::Wgpu => "wgpu",
            BackendChoice::Flex => "flex",
            #[cfg(feature = "ndarray")]
            BackendChoice::Ndarray => "ndarray",
        })
    }
}
