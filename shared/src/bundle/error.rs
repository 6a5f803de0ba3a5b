//! Why a bundle cannot be read, built or assembled: one variant per problem, each saying what
//! is wrong and, where it helps, what to do.

use std::fmt;

use super::format_version::BUNDLE_FORMAT_VERSION;

#[derive(Debug, Clone, PartialEq)]
pub enum BundleError {
    /// The manifest is not valid JSON of the expected shape.
    Manifest(String),
    /// A single-model export of format 1, from before bundles.
    SingleModelExport,
    /// A format version this code does not read.
    Version(u32),
    /// A bundle needs at least one head.
    NoHeads,
    /// A head name that is not 1-32 lowercase letters, digits, `-` or `_`, starting with a
    /// letter.
    HeadName(String),
    /// Two heads with one name.
    DuplicateHead(String),
    /// A head predicts another number of classes than the label space has.
    ClassCount {
        head: String,
        predicts: usize,
        labels: usize,
    },
    /// A head reads another number of feature channels than the backbone gives.
    Channels {
        head: String,
        reads: usize,
        backbone: usize,
    },
    /// A head's own weights file that cannot be: not a plain file name, shared, or placed before
    /// a head of the main file.
    HeadFile { head: String, why: String },
    /// A decision threshold that is not a probability.
    Threshold { head: String, value: f32 },
    /// No head of this name.
    UnknownHead { name: String, known: Vec<String> },
    /// Two models to bundle differ in something a shared backbone needs to be equal: `what`
    /// says in what (backbone, its weights, input size and normalisation, label space).
    Mismatch {
        first: String,
        other: String,
        what: String,
    },
    /// A field of the manifest holds a value no network can be built from.
    Field { field: String, why: String },
    /// The weights are not safetensors, or do not fit the network the manifest describes.
    Weights(String),
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Manifest(why) => write!(f, "not a model manifest: {why}"),
            Self::SingleModelExport => write!(
                f,
                "a single-model export (format 1), not a bundle (format {BUNDLE_FORMAT_VERSION}); \
                 convert it with `trainer export --model DIR --out NEW_DIR`"
            ),
            Self::Version(found) => write!(
                f,
                "export format {found} is not the {BUNDLE_FORMAT_VERSION} this code reads"
            ),
            Self::NoHeads => write!(f, "the bundle has no heads"),
            Self::HeadName(name) => write!(
                f,
                "head name {name:?}: a name is 1 to 32 lowercase letters, digits, '-' or '_', \
                 starting with a letter"
            ),
            Self::DuplicateHead(name) => write!(f, "two heads are named {name:?}"),
            Self::ClassCount {
                head,
                predicts,
                labels,
            } => write!(
                f,
                "head {head:?} predicts {predicts} classes but the label space has {labels}"
            ),
            Self::Channels {
                head,
                reads,
                backbone,
            } => write!(
                f,
                "head {head:?} reads {reads} feature channels but the backbone gives {backbone}"
            ),
            Self::HeadFile { head, why } => write!(f, "head {head:?}'s weights file: {why}"),
            Self::Threshold { head, value } => write!(
                f,
                "head {head:?}: decision threshold {value} is not a probability in [0, 1]"
            ),
            Self::UnknownHead { name, known } => write!(
                f,
                "no head {name:?} in this bundle; its heads are {}",
                known.join(", ")
            ),
            Self::Mismatch { first, other, what } => {
                write!(f, "{first} and {other} cannot share one backbone: {what}")
            }
            Self::Field { field, why } => write!(f, "{field}: {why}"),
            Self::Weights(why) => write!(f, "weights do not match the bundle: {why}"),
        }
    }
}

impl std::error::Error for BundleError {}
