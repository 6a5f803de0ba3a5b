//! `model.json` of a bundle: the format version, the weights file beside it, and the
//! [`BundleDescription`].

use serde::{Deserialize, Serialize};

use super::description::BundleDescription;
use super::error::BundleError;
use super::format_version::BUNDLE_FORMAT_VERSION;
use crate::exported::EXPORT_FORMAT_VERSION;

/// [`BundleManifest::weights_precision`]: `f16` for every weight but batch-norm statistics,
/// which underflow in half precision and stay `f32`.
pub const WEIGHTS_PRECISION: &str = "f16";

/// The manifest of a bundle.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BundleManifest {
    pub format_version: u32,
    /// The weights file beside the manifest.
    pub weights: String,
    pub weights_precision: String,
    pub model: BundleDescription,
}

impl BundleManifest {
    /// The manifest of `model` with its weights in the file `weights`.
    pub fn new(model: BundleDescription, weights: impl Into<String>) -> Self {
        Self {
            format_version: BUNDLE_FORMAT_VERSION,
            weights: weights.into(),
            weights_precision: WEIGHTS_PRECISION.into(),
            model,
        }
    }
}

/// Just the version, read first so that another version's layout is named as such rather than
/// reported as a missing field.
#[derive(Deserialize)]
struct Versioned {
    format_version: u32,
}

/// Parses a bundle's `model.json` and validates its description.
pub fn parse_bundle_manifest(json: &str) -> Result<BundleManifest, BundleError> {
    let versioned: Versioned =
        serde_json::from_str(json).map_err(|e| BundleError::Manifest(e.to_string()))?;
    match versioned.format_version {
        BUNDLE_FORMAT_VERSION => {}
        EXPORT_FORMAT_VERSION => return Err(BundleError::SingleModelExport),
        other => return Err(BundleError::Version(other)),
    }
    let manifest: BundleManifest =
        serde_json::from_str(json).map_err(|e| BundleError::Manifest(e.to_string()))?;
    manifest.model.validate()?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::fixtures::two_heads;

    #[test]
    fn a_manifest_reads_back_as_written() {
        let json =
            serde_json::to_string(&BundleManifest::new(two_heads(), "model.safetensors")).unwrap();
        let manifest = parse_bundle_manifest(&json).unwrap();
        assert_eq!(manifest.format_version, 2);
        assert_eq!(manifest.weights_precision, "f16");
        assert_eq!(manifest.model.head_names(), ["full", "wan"]);
        let raw: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(raw["model"]["heads"][1]["decision_threshold"]["value"], 0.5);
        assert_eq!(raw["model"]["backbone"]["kind"], "efficientnet-lite0");
    }

    #[test]
    fn other_versions_and_broken_manifests_say_what_they_are() {
        assert!(matches!(
            parse_bundle_manifest("{\"format_version\": 2"),
            Err(BundleError::Manifest(_))
        ));
        let old = parse_bundle_manifest("{\"format_version\": 1, \"model\": {}}").unwrap_err();
        assert_eq!(old, BundleError::SingleModelExport);
        assert!(old.to_string().contains("trainer export --model"), "{old}");
        assert_eq!(
            parse_bundle_manifest("{\"format_version\": 7}").unwrap_err(),
            BundleError::Version(7)
        );
        assert!(matches!(
            parse_bundle_manifest("{\"format_version\": 2, \"weights\": \"w\"}"),
            Err(BundleError::Manifest(why)) if why.contains("missing field")
        ));
        // A description that does not validate is refused at parse time.
        let mut description = two_heads();
        description.heads[1].name = "full".into();
        let json =
            serde_json::to_string(&BundleManifest::new(description, "model.safetensors")).unwrap();
        assert_eq!(
            parse_bundle_manifest(&json).unwrap_err(),
            BundleError::DuplicateHead("full".into())
        );
    }
}
