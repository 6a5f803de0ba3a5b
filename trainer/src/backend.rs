//! Choosing where tensors live: Burn picks the backend from the device at run time.

use std::path::PathBuf;
use std::sync::OnceLock;

use burn::tensor::{Device, DeviceKind};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainerError};

/// The private runtime directory given to the Vulkan loader when the environment had none.
static PROVIDED_RUNTIME_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Gives the process a private `XDG_RUNTIME_DIR` when it has no usable one. Without it the
/// Vulkan loader prints "error: XDG_RUNTIME_DIR is invalid or not set" whenever it is loaded,
/// which reads as a failure though nothing failed. Call it first thing in `main`, before any
/// thread starts. (Only Unix has the variable.)
#[cfg(unix)]
pub fn provide_runtime_dir() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    let usable = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .is_some_and(|dir| dir.is_absolute() && dir.is_dir());
    if usable {
        return;
    }
    let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
    let dir = std::env::temp_dir().join(format!("querylabel-runtime-{uid}"));
    let created = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)));
    if created.is_ok() {
        // SAFETY: called at the start of main, while the process has one thread, so nothing
        // reads the environment concurrently.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
        let _ = PROVIDED_RUNTIME_DIR.set(dir);
    }
}

#[cfg(not(unix))]
pub fn provide_runtime_dir() {}

/// Says once, when a GPU backend is asked for, that the Vulkan loader runs with a provided
/// runtime directory.
fn explain_runtime_dir() {
    static SAID: OnceLock<()> = OnceLock::new();
    if let Some(dir) = PROVIDED_RUNTIME_DIR.get() {
        SAID.get_or_init(|| {
            eprintln!(
                "note: XDG_RUNTIME_DIR was not set, so the Vulkan loader uses {}",
                dir.display()
            )
        });
    }
}

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

/// Says once, when wgpu is asked for and every adapter it finds is a software renderer (Mesa's
/// lavapipe, where no GPU is), that the CPU backend is the faster choice there: on this
/// project's 2-core machine `trainer predict` took 110 s on lavapipe, mostly compiling shaders,
/// and 0.5 s with `--backend flex`.
fn point_to_the_cpu_backend_without_a_gpu() {
    static SAID: OnceLock<()> = OnceLock::new();
    SAID.get_or_init(|| {
        let instance = wgpu::Instance::default();
        // Native enumeration finishes at once; if it did not, say nothing rather than wait.
        let mut listing = std::pin::pin!(instance.enumerate_adapters(wgpu::Backends::all()));
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        let std::task::Poll::Ready(adapters) = listing.as_mut().poll(&mut context) else {
            return;
        };
        let infos: Vec<wgpu::AdapterInfo> = adapters.iter().map(|a| a.get_info()).collect();
        if !infos.is_empty() && infos.iter().all(|i| i.device_type == wgpu::DeviceType::Cpu) {
            // One renderer may be listed once per graphics API (Vulkan, OpenGL).
            let mut names: Vec<&str> = infos.iter().map(|i| i.name.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            eprintln!(
                "note: wgpu found no GPU, only a software renderer ({}); on this machine \
                 `--backend flex` computes on the CPU directly and is many times faster",
                names.join(", ")
            );
        }
    });
}

impl BackendChoice {
    /// The device with this index (GPU order as wgpu lists them; ignored on the CPU).
    pub fn device(self, index: usize) -> Device {
        if self == BackendChoice::Wgpu {
            explain_runtime_dir();
            point_to_the_cpu_backend_without_a_gpu();
        }
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

/// Where a command computes: the backend, and the device indices for wgpu. Saved in a run's
/// `options.json` as `backend` and `devices`.
#[derive(Clone, Debug, Serialize, Deserialize, clap::Args)]
pub struct DeviceOptions {
    /// Compute backend: wgpu (GPU, or software Vulkan) or flex (CPU).
    #[arg(long, value_enum, default_value_t = BackendChoice::Wgpu)]
    pub backend: BackendChoice,
    /// Device index for wgpu. `trainer train` takes several (`--device 0,1`) and trains
    /// data-parallel across them.
    #[arg(long = "device", value_delimiter = ',', default_value = "0")]
    pub devices: Vec<usize>,
}

impl DeviceOptions {
    /// The one device of a command that runs on one.
    pub fn single(&self) -> Result<Device> {
        Ok(self.backend.device(self.single_index()?))
    }

    /// The index of the one device of a command that runs on one.
    pub fn single_index(&self) -> Result<usize> {
        match self.devices.as_slice() {
            [index] => Ok(*index),
            several => Err(
                TrainerError::new("only `trainer train` runs on several devices")
                    .at_flag_value("--device", format!("{several:?}"))
                    .with_hint("give one --device"),
            ),
        }
    }
}
