//! Image preprocessing shared by the trainer and the browser, so both feed the network the same
//! numbers: decode with size limits, squash-resize to the model's input size, scale to [0, 1],
//! normalise with the ImageNet mean and standard deviation, and lay out as CHW.

use std::io::Cursor;

use burn::tensor::{Device, Tensor, TensorData};
use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits};
use serde::{Deserialize, Serialize};

use crate::damaged_jpeg::find_damage;

/// ImageNet channel means (RGB), the normalisation of the pretrained backbones.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations (RGB).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Largest width or height accepted when decoding; larger photos are refused, not resized, so
/// that a hostile file cannot exhaust memory.
pub const MAX_IMAGE_SIDE: u32 = 16_384;
/// Largest decoded buffer accepted (bytes).
pub const MAX_DECODED_BYTES: u64 = 512 * 1024 * 1024;
/// Largest photo file read at all (bytes), checked before reading it: no photo needs more, and a
/// huge file named `.jpg` would otherwise be read whole into memory first.
pub const MAX_PHOTO_FILE_BYTES: u64 = 40 * 1024 * 1024;

/// How images become network input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preprocessing {
    /// Input height and width in pixels.
    pub height: usize,
    pub width: usize,
    /// Per-channel mean and standard deviation (RGB, on the [0, 1] scale).
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

/// The input sides a network can take: the backbones downsample by 32, so a smaller input has no
/// feature map left, and above the upper end an input is a mistake rather than a photo size.
pub const INPUT_SIDES: std::ops::RangeInclusive<usize> = 32..=2048;

impl Preprocessing {
    /// Why this preprocessing cannot feed a network, if it cannot: a size outside
    /// [`INPUT_SIDES`], or a mean or standard deviation that would make every pixel NaN or
    /// infinite.
    pub fn check(&self) -> Result<(), String> {
        for (name, side) in [("height", self.height), ("width", self.width)] {
            if !INPUT_SIDES.contains(&side) {
                return Err(format!(
                    "input {name} {side} px is not between {} and {} px (the backbones \
                     downsample by 32)",
                    INPUT_SIDES.start(),
                    INPUT_SIDES.end()
                ));
            }
        }
        if let Some(mean) = self.mean.iter().find(|m| !m.is_finite()) {
            return Err(format!("normalisation mean {mean} is not a finite number"));
        }
        if let Some(std) = self.std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(format!(
                "normalisation standard deviation {std} would divide by zero or worse; it must \
                 be a positive finite number"
            ));
        }
        Ok(())
    }
}

/// Why an image could not be used.
#[derive(Debug)]
pub enum ImageError {
    /// The bytes are not an image format we read, or the file is corrupt or truncated.
    Decode(String),
    /// The image is larger than [`MAX_IMAGE_SIDE`] or [`MAX_DECODED_BYTES`].
    TooLarge(String),
}

impl std::fmt::Display for ImageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageError::Decode(why) => write!(f, "not a readable image: {why}"),
            ImageError::TooLarge(why) => write!(f, "image too large: {why}"),
        }
    }
}

impl std::error::Error for ImageError {}

/// Decodes JPEG or PNG bytes, refusing images beyond the size limits and damaged JPEG files
/// (which the decoder would accept, filling what is missing with flat blocks). The photo comes out turned as
/// its EXIF orientation says.
pub fn decode_image(bytes: &[u8]) -> Result<DynamicImage, ImageError> {
    if let Some(damage) = find_damage(bytes) {
        return Err(ImageError::Decode(damage.to_string()));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageError::Decode(e.to_string()))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    let failure = |e: image::ImageError| match e {
        image::ImageError::Limits(limit) => ImageError::TooLarge(format!(
            "{limit} (photos up to {MAX_IMAGE_SIDE} pixels a side and {} MiB decoded are read)",
            MAX_DECODED_BYTES / 1048576
        )),
        other => ImageError::Decode(other.to_string()),
    };
    // Turned as its EXIF orientation says, so that every caller sees the photo as it is
    // displayed: phone cameras store the pixels sideways and the turn in the tag.
    let mut decoder = reader.into_decoder().map_err(failure)?;
    let orientation = decoder.orientation().map_err(failure)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(failure)?;
    image.apply_orientation(orientation);
    Ok(image)
}

impl Preprocessing {
    /// Square input of `size` pixels with ImageNet normalisation.
    pub fn imagenet(size: usize) -> Self {
        Preprocessing {
            height: size,
            width: size,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
        }
    }

    /// Resizes to the input size (squashing, as Query2Label does, so no part of the photo is
    /// cropped away) and returns normalised CHW values.
    pub fn image_to_chw(&self, image: &DynamicImage) -> Vec<f32> {
        let resized = image
            .resize_exact(self.width as u32, self.height as u32, FilterType::Triangle)
            .to_rgb8();
        self.rgb_to_chw(resized.as_raw())
    }

    /// Normalises interleaved RGB bytes of an image already at the input size into CHW.
    pub fn rgb_to_chw(&self, rgb: &[u8]) -> Vec<f32> {
        let pixels = self.height * self.width;
        assert_eq!(
            rgb.len(),
            pixels * 3,
            "expected {}×{} RGB pixels",
            self.height,
            self.width
        );
        let mut chw = vec![0.0; pixels * 3];
        for (i, pixel) in rgb.chunks_exact(3).enumerate() {
            for c in 0..3 {
                chw[c * pixels + i] = (pixel[c] as f32 / 255.0 - self.mean[c]) / self.std[c];
            }
        }
        chw
    }

    /// Stacks CHW images into a `[batch, 3, height, width]` tensor.
    pub fn batch(&self, images: &[Vec<f32>], device: &Device) -> Tensor<4> {
        let mut values = Vec::with_capacity(images.len() * 3 * self.height * self.width);
        for image in images {
            assert_eq!(
                image.len(),
                3 * self.height * self.width,
                "image of the wrong size"
            );
            values.extend_from_slice(image);
        }
        Tensor::from_data(
            TensorData::new(values, [images.len(), 3, self.height, self.width]),
            device,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    #[test]
    fn normalises_each_channel_with_imagenet_statistics_in_chw_order() {
        let pre = Preprocessing::imagenet(2);
        // Four pixels: black, white, pure red, mid grey.
        let rgb = [0, 0, 0, 255, 255, 255, 255, 0, 0, 128, 128, 128];
        let chw = pre.rgb_to_chw(&rgb);
        let expect =
            |value: u8, c: usize| (value as f32 / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
        // Red plane first, then green, then blue; pixel order row-major.
        assert_eq!(chw[0], expect(0, 0));
        assert_eq!(chw[1], expect(255, 0));
        assert_eq!(chw[2], expect(255, 0));
        assert_eq!(chw[4 + 2], expect(0, 1));
        assert_eq!(chw[8 + 3], expect(128, 2));
    }

    #[test]
    fn resizes_any_aspect_ratio_to_the_input_size() {
        let image = DynamicImage::ImageRgb8(RgbImage::from_pixel(64, 16, Rgb([10, 20, 30])));
        let pre = Preprocessing::imagenet(8);
        let chw = pre.image_to_chw(&image);
        assert_eq!(chw.len(), 3 * 8 * 8);
        // A uniform image stays uniform after resizing.
        let green = (20.0 / 255.0 - IMAGENET_MEAN[1]) / IMAGENET_STD[1];
        assert!(chw[64..128].iter().all(|v| (v - green).abs() < 1e-6));
    }

    #[test]
    fn corrupt_bytes_are_a_decode_error_not_a_panic() {
        let error = decode_image(b"definitely not a jpeg").unwrap_err();
        assert!(matches!(error, ImageError::Decode(_)), "{error}");
        let mut png = Vec::new();
        DynamicImage::ImageRgb8(RgbImage::new(4, 4))
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let truncated = &png[..png.len() / 2];
        assert!(matches!(
            decode_image(truncated),
            Err(ImageError::Decode(_))
        ));
        assert!(decode_image(&png).is_ok());

        // The JPEG decoder itself accepts a file cut short and fills the rest with grey.
        let mut jpeg = Vec::new();
        DynamicImage::ImageRgb8(RgbImage::from_fn(32, 32, |x, y| {
            Rgb([x as u8 * 8, y as u8 * 8, 0])
        }))
        .write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
        .unwrap();
        assert!(decode_image(&jpeg).is_ok());
        let error = decode_image(&jpeg[..jpeg.len() * 3 / 4]).unwrap_err();
        assert!(error.to_string().contains("truncated JPEG"), "{error}");
    }
}
