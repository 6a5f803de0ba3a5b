//! The lesson's data: pooled frozen-backbone features of real COCO photos with their full
//! labels, a training and a held-out part, as shipped in `www/lesson/features.safetensors`
//! (features f16 `[N, C]`, labels u8 `[N, K]`).

use half::f16;
use safetensors::{Dtype, SafeTensors};

/// One part of the data, row-major.
pub struct LabelledFeatures {
    /// `[images, channels]`.
    pub features: Vec<f32>,
    /// `[images, classes]`, 1 for present, 0 for absent.
    pub labels: Vec<f32>,
    pub images: usize,
    pub channels: usize,
    pub classes: usize,
}

/// Training and held-out parts.
pub struct LessonData {
    pub train: LabelledFeatures,
    pub validation: LabelledFeatures,
}

impl LessonData {
    /// Parses the shipped file, checking names, types and shapes.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self, String> {
        let tensors =
            SafeTensors::deserialize(bytes).map_err(|e| format!("not a safetensors file: {e}"))?;
        let train = part(&tensors, "train")?;
        let validation = part(&tensors, "validation")?;
        if (train.channels, train.classes) != (validation.channels, validation.classes) {
            return Err("training and validation parts differ in shape".into());
        }
        Ok(LessonData { train, validation })
    }
}

fn part(tensors: &SafeTensors<'_>, name: &str) -> Result<LabelledFeatures, String> {
    let features = tensors
        .tensor(&format!("{name}_features"))
        .map_err(|e| format!("{name}_features: {e}"))?;
    let labels = tensors
        .tensor(&format!("{name}_labels"))
        .map_err(|e| format!("{name}_labels: {e}"))?;
    let (&[images, channels], &[label_rows, classes]) = (features.shape(), labels.shape()) else {
        return Err(format!("{name}: features and labels must be matrices"));
    };
    if features.dtype() != Dtype::F16 || labels.dtype() != Dtype::U8 || label_rows != images {
        return Err(format!(
            "{name}: expected f16 features and u8 labels for the same images"
        ));
    }
    Ok(LabelledFeatures {
        features: features
            .data()
            .chunks_exact(2)
            .map(|pair| f16::from_le_bytes([pair[0], pair[1]]).to_f32())
            .collect(),
        labels: labels.data().iter().map(|&b| f32::from(b.min(1))).collect(),
        images,
        channels,
        classes,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use safetensors::tensor::TensorView;

    /// A features file in the shipped layout.
    pub fn features_file(
        train: (&[f32], &[u8]),
        validation: (&[f32], &[u8]),
        classes: usize,
    ) -> Vec<u8> {
        let half = |values: &[f32]| -> Vec<u8> {
            values
                .iter()
                .flat_map(|&v| f16::from_f32(v).to_le_bytes())
                .collect()
        };
        let parts = [("train", train), ("validation", validation)].map(|(name, (f, l))| {
            let images = l.len() / classes;
            (name, images, f.len() / images, half(f), l.to_vec())
        });
        let mut views = Vec::new();
        for (name, images, channels, features, labels) in &parts {
            views.push((
                format!("{name}_features"),
                TensorView::new(Dtype::F16, vec![*images, *channels], features).unwrap(),
            ));
            views.push((
                format!("{name}_labels"),
                TensorView::new(Dtype::U8, vec![*images, classes], labels).unwrap(),
            ));
        }
        safetensors::serialize(views, None).unwrap()
    }

    #[test]
    fn reads_the_shipped_layout() {
        let bytes = features_file(
            (&[0.5, -1.0, 2.0, 0.25], &[1, 0, 0, 1]),
            (&[1.0, 1.0], &[0, 1]),
            2,
        );
        let data = LessonData::from_safetensors(&bytes).unwrap();
        assert_eq!(
            (data.train.images, data.train.channels, data.train.classes),
            (2, 2, 2)
        );
        assert_eq!(data.train.features, vec![0.5, -1.0, 2.0, 0.25]);
        assert_eq!(data.validation.labels, vec![0.0, 1.0]);
        assert!(LessonData::from_safetensors(b"garbage").is_err());
    }
}
