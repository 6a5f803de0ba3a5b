//! Label spaces: the ordered class names a model predicts, and reading label strings into
//! multi-hot vectors.
//!
//! Canonical class names are single tokens with `_` for spaces (`traffic_light`), as in the
//! dataset class lists, so that a space-separated label string can name any class. Lookups also
//! accept the spaced form and ignore ASCII case (`"Traffic Light"`), and
//! [`LabelSpace::display_name`] gives the spaced form for people.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An ordered list of class names with a name for the whole space (`"coco80"`, `"voc20"`).
///
/// Class `i` of a model's output is `class_names()[i]`. Names are unique after
/// [normalisation](LabelSpace::index_of); deserialising checks this too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "UncheckedLabelSpace")]
pub struct LabelSpace {
    name: String,
    class_names: Vec<String>,
}

/// The serialised form, checked by [`LabelSpace::new`] on the way in.
#[derive(Deserialize)]
struct UncheckedLabelSpace {
    name: String,
    class_names: Vec<String>,
}

impl TryFrom<UncheckedLabelSpace> for LabelSpace {
    type Error = LabelSpaceError;

    fn try_from(unchecked: UncheckedLabelSpace) -> Result<Self, Self::Error> {
        LabelSpace::new(unchecked.name, unchecked.class_names)
    }
}

/// Why a list of class names cannot form a label space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelSpaceError {
    NoClasses,
    /// A class name that is empty or contains whitespace other than single inner spaces.
    InvalidClassName(String),
    /// Two names that are equal once normalised (`"traffic light"` and `"traffic_light"`).
    DuplicateClassName(String),
}

impl fmt::Display for LabelSpaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelSpaceError::NoClasses => write!(f, "a label space needs at least one class"),
            LabelSpaceError::InvalidClassName(name) => write!(f, "invalid class name {name:?}"),
            LabelSpaceError::DuplicateClassName(name) => {
                write!(f, "class name {name:?} appears twice")
            }
        }
    }
}

impl std::error::Error for LabelSpaceError {}

/// A label string named a class that the label space does not have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownLabelError {
    pub label: String,
    pub label_space: String,
}

impl fmt::Display for UnknownLabelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown label {:?}: not a class of label space {:?}",
            self.label, self.label_space
        )
    }
}

impl std::error::Error for UnknownLabelError {}

/// The 80 COCO detection categories in their standard order (category ids 1…90 with the gaps
/// removed), as used by every COCO multi-label benchmark.
#[rustfmt::skip]
const COCO80: [&str; 80] = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic_light", "fire_hydrant", "stop_sign", "parking_meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack",
    "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports_ball",
    "kite", "baseball_bat", "baseball_glove", "skateboard", "surfboard", "tennis_racket",
    "bottle", "wine_glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot_dog", "pizza", "donut", "cake", "chair",
    "couch", "potted_plant", "bed", "dining_table", "toilet", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell_phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy_bear", "hair_drier", "toothbrush",
];

/// The 20 PASCAL VOC classes in their standard (alphabetical) order.
#[rustfmt::skip]
const VOC20: [&str; 20] = [
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
];

impl LabelSpace {
    /// A label space from class names in output order. Spaces in names are stored as `_`.
    pub fn new(
        name: impl Into<String>,
        class_names: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<Self, LabelSpaceError> {
        let mut canonical: Vec<String> = Vec::new();
        for class_name in class_names {
            let class_name = class_name.into();
            let valid = !class_name.is_empty()
                && class_name.split(' ').all(|word| !word.is_empty())
                && !class_name.chars().any(|c| c.is_whitespace() && c != ' ');
            if !valid {
                return Err(LabelSpaceError::InvalidClassName(class_name));
            }
            let key = normalise(&class_name);
            if canonical.iter().any(|existing| normalise(existing) == key) {
                return Err(LabelSpaceError::DuplicateClassName(class_name));
            }
            canonical.push(class_name.replace(' ', "_"));
        }
        if canonical.is_empty() {
            return Err(LabelSpaceError::NoClasses);
        }
        Ok(Self {
            name: name.into(),
            class_names: canonical,
        })
    }

    /// MS-COCO's 80 classes, named as in the dataset's `classes.txt`.
    pub fn coco80() -> Self {
        Self::new("coco80", COCO80).expect("COCO class list is valid")
    }

    /// PASCAL VOC's 20 classes in alphabetical order.
    pub fn voc20() -> Self {
        Self::new("voc20", VOC20).expect("VOC class list is valid")
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Canonical names (with `_`), in output order.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    pub fn n_classes(&self) -> usize {
        self.class_names.len()
    }

    /// The canonical name of class `index`.
    pub fn class_name(&self, index: usize) -> Option<&str> {
        self.class_names.get(index).map(String::as_str)
    }

    /// The name of class `index` for people (see [`display_label`]).
    pub fn display_name(&self, index: usize) -> Option<String> {
        self.class_name(index).map(display_label)
    }

    /// The index of a class, accepting `_` or spaces between words and any ASCII case.
    pub fn index_of(&self, class_name: &str) -> Option<usize> {
        let key = normalise(class_name.trim());
        self.class_names
            .iter()
            .position(|candidate| normalise(candidate) == key)
    }

    /// A multi-hot vector (1.0 for each named class, 0.0 elsewhere) from a whitespace-separated
    /// list of canonical names such as `"person traffic_light"`. Repeats are harmless; an empty
    /// string gives all zeros.
    pub fn parse_multi_hot(&self, labels: &str) -> Result<Vec<f32>, UnknownLabelError> {
        let mut multi_hot = vec![0.0; self.n_classes()];
        for label in labels.split_whitespace() {
            let index = self.index_of(label).ok_or_else(|| UnknownLabelError {
                label: label.to_owned(),
                label_space: self.name.clone(),
            })?;
            multi_hot[index] = 1.0;
        }
        Ok(multi_hot)
    }
}

/// The form in which names are compared: lower-case ASCII, words joined by `_`.
fn normalise(class_name: &str) -> String {
    class_name.replace(' ', "_").to_ascii_lowercase()
}

/// A class name for people: `_` shown as a space (`"traffic_light"` → `"traffic light"`).
pub fn display_label(name: &str) -> String {
    name.replace('_', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coco_has_the_standard_order() {
        let coco = LabelSpace::coco80();
        assert_eq!(coco.n_classes(), 80);
        assert_eq!(coco.class_name(0), Some("person"));
        assert_eq!(coco.class_name(9), Some("traffic_light"));
        assert_eq!(coco.class_name(62), Some("tv"));
        assert_eq!(coco.class_name(79), Some("toothbrush"));
        assert_eq!(coco.display_name(9).as_deref(), Some("traffic light"));
        assert_eq!(coco.class_name(80), None);
    }

    #[test]
    fn voc_is_alphabetical() {
        let voc = LabelSpace::voc20();
        assert_eq!(voc.n_classes(), 20);
        let mut sorted = voc.class_names().to_vec();
        sorted.sort();
        assert_eq!(sorted, voc.class_names());
        assert_eq!(voc.index_of("tvmonitor"), Some(19));
    }

    #[test]
    fn lookup_accepts_spaces_underscores_and_case() {
        let coco = LabelSpace::coco80();
        assert_eq!(coco.index_of("traffic light"), Some(9));
        assert_eq!(coco.index_of("traffic_light"), Some(9));
        assert_eq!(coco.index_of("Traffic Light"), Some(9));
        assert_eq!(coco.index_of("traffic-light"), None);
    }

    #[test]
    fn parses_multi_hot_and_names_unknown_labels() {
        let voc = LabelSpace::voc20();
        let multi_hot = voc.parse_multi_hot("  person dog\tperson ").unwrap();
        let positives: Vec<usize> = (0..20).filter(|&i| multi_hot[i] == 1.0).collect();
        assert_eq!(positives, vec![11, 14]);
        assert_eq!(voc.parse_multi_hot("").unwrap(), vec![0.0; 20]);
        let error = voc.parse_multi_hot("dog unicorn").unwrap_err();
        assert_eq!(
            error,
            UnknownLabelError {
                label: "unicorn".into(),
                label_space: "voc20".into()
            }
        );
        assert!(error.to_string().contains("unicorn"));
    }

    #[test]
    fn rejects_bad_class_lists() {
        let no_names: [&str; 0] = [];
        assert_eq!(
            LabelSpace::new("x", no_names),
            Err(LabelSpaceError::NoClasses)
        );
        assert_eq!(
            LabelSpace::new("x", ["a b", "a_b"]),
            Err(LabelSpaceError::DuplicateClassName("a_b".into()))
        );
        assert!(matches!(
            LabelSpace::new("x", ["ok", "two  spaces"]),
            Err(LabelSpaceError::InvalidClassName(_))
        ));
        assert_eq!(
            LabelSpace::new("x", ["hot dog"]).unwrap().class_names(),
            ["hot_dog"]
        );
    }

    #[test]
    fn serde_round_trip_and_validation() {
        let coco = LabelSpace::coco80();
        let json = serde_json::to_string(&coco).unwrap();
        let back: LabelSpace = serde_json::from_str(&json).unwrap();
        assert_eq!(back, coco);
        let duplicate = r#"{"name":"x","class_names":["cat","Cat"]}"#;
        assert!(serde_json::from_str::<LabelSpace>(duplicate).is_err());
    }
}
