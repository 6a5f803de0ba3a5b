//! Augmentation, batch loading and prefetching of training images.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage, imageops};
use querylabel::damaged_jpeg::{JpegDamage, find_damage};
use querylabel::preprocess::Preprocessing;
use querylabel_trainer::images::augment::{cutout, random_resized_crop_region};
use querylabel_trainer::images::{
    AugmentationConfig, CutoutConfig, CutoutFill, ImageLoader, ImageRequest, MIRRORED_VIEW,
    PLAIN_VIEW, PhotoViews, RandAugmentConfig, RandAugmentOp, RandomResizedCropConfig, SkipReason,
    augment, augmentation_rng, prefetch, read_image,
};
use rand::{RngExt, SeedableRng};

mod common;

/// A deterministic image with plenty of structure (no two neighbours alike) and no magenta.
fn test_image(width: u32, height: u32, salt: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        Rgb([
            ((x * 7 + y * 3 + salt * 13) % 200) as u8,
            ((y * 11 + x + salt * 5) % 250) as u8,
            ((x * y + salt) % 100) as u8,
        ])
    })
}

fn encode(image: &RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Vec::new();
    DynamicImage::ImageRgb8(image.clone())
        .write_to(&mut Cursor::new(&mut bytes), format)
        .unwrap();
    bytes
}

fn everything_on() -> AugmentationConfig {
    AugmentationConfig {
        random_resized_crop: Some(RandomResizedCropConfig::default()),
        ..AugmentationConfig::default()
    }
}

#[test]
fn same_seed_and_index_give_identical_pixels_and_others_differ() {
    let image = DynamicImage::ImageRgb8(test_image(80, 60, 0));
    let config = everything_on();
    let run = |seed, index| augment(&image, 32, 24, &config, &mut augmentation_rng(seed, index));
    let reference = run(7, 3);
    assert_eq!(reference.dimensions(), (32, 24));
    assert_eq!(reference, run(7, 3));
    assert_ne!(reference, run(8, 3), "another seed");
    assert_ne!(reference, run(7, 4), "another image index");
}

#[test]
fn horizontal_flip_mirrors_the_image_about_half_the_time() {
    let original = test_image(32, 24, 1);
    let mirrored = imageops::flip_horizontal(&original);
    let config = AugmentationConfig {
        horizontal_flip: true,
        ..AugmentationConfig::disabled()
    };
    let mut flips = 0;
    for index in 0..40 {
        let out = augment(
            &DynamicImage::ImageRgb8(original.clone()),
            32,
            24,
            &config,
            &mut augmentation_rng(1, index),
        );
        if out == mirrored {
            flips += 1;
        } else {
            assert_eq!(out, original, "neither the image nor its mirror");
        }
    }
    assert!((8..=32).contains(&flips), "{flips} flips in 40");
    // The mirror really is one: first column becomes last.
    assert_eq!(mirrored.get_pixel(31, 5), original.get_pixel(0, 5));
}

#[test]
fn random_resized_crop_gives_the_output_size_from_a_region_inside_the_image() {
    let image = DynamicImage::ImageRgb8(test_image(100, 60, 2));
    let config = AugmentationConfig {
        random_resized_crop: Some(RandomResizedCropConfig::default()),
        ..AugmentationConfig::disabled()
    };
    let crop = RandomResizedCropConfig::default();
    let mut regions = Vec::new();
    for index in 0..50 {
        let out = augment(&image, 20, 16, &config, &mut augmentation_rng(3, index));
        assert_eq!(out.dimensions(), (20, 16));
        let region = random_resized_crop_region(100, 60, &crop, &mut augmentation_rng(3, index));
        assert!(region.x + region.width <= 100 && region.y + region.height <= 60);
        let area = (region.width * region.height) as f32 / 6000.0;
        assert!((0.48..=1.0).contains(&area), "area fraction {area}");
        let ratio = region.width as f32 / region.height as f32;
        let whole = region.width == 100 && region.height == 60;
        assert!(whole || (0.70..=1.40).contains(&ratio), "aspect {ratio}");
        regions.push(region);
    }
    regions.dedup();
    assert!(regions.len() > 10, "crops should vary");

    // An impossible scale falls back to the whole image.
    let impossible = RandomResizedCropConfig {
        scale: [2.0, 3.0],
        ..crop
    };
    let region = random_resized_crop_region(100, 60, &impossible, &mut augmentation_rng(0, 0));
    assert_eq!(
        (region.x, region.y, region.width, region.height),
        (0, 0, 100, 60)
    );
}

#[test]
fn cutout_changes_only_one_rectangle() {
    let original = test_image(40, 30, 3);
    let magenta = [255, 0, 255];
    let config = CutoutConfig {
        holes: 1,
        size_fraction: 0.5,
        fill: CutoutFill::Constant(magenta),
    };
    for index in 0..20 {
        let mut image = original.clone();
        cutout(&mut image, &config, &mut augmentation_rng(4, index));
        let changed: Vec<(u32, u32)> = image
            .enumerate_pixels()
            .filter(|(x, y, pixel)| *pixel != original.get_pixel(*x, *y))
            .map(|(x, y, _)| (x, y))
            .collect();
        assert!(!changed.is_empty());
        assert!(
            changed
                .iter()
                .all(|&(x, y)| image.get_pixel(x, y).0 == magenta)
        );
        let (left, right) = (
            changed.iter().map(|p| p.0).min().unwrap(),
            changed.iter().map(|p| p.0).max().unwrap(),
        );
        let (top, bottom) = (
            changed.iter().map(|p| p.1).min().unwrap(),
            changed.iter().map(|p| p.1).max().unwrap(),
        );
        let (width, height) = (right - left + 1, bottom - top + 1);
        assert_eq!(
            changed.len() as u32,
            width * height,
            "not a filled rectangle"
        );
        assert!(width <= 20 && height <= 15, "hole {width}×{height}");
    }

    // The mean fill is the image's mean colour.
    let mut uniform = RgbImage::from_pixel(10, 10, Rgb([10, 20, 30]));
    let mean = CutoutConfig {
        fill: CutoutFill::Mean,
        ..config
    };
    cutout(&mut uniform, &mean, &mut augmentation_rng(0, 0));
    assert!(uniform.pixels().all(|p| p.0 == [10, 20, 30]));
}

#[test]
fn disabled_augmentation_is_exactly_the_evaluation_preprocessing() {
    let pre = Preprocessing::imagenet(16);
    let image = DynamicImage::ImageRgb8(test_image(50, 30, 4));
    let augmented = augment(
        &image,
        16,
        16,
        &AugmentationConfig::disabled(),
        &mut augmentation_rng(5, 0),
    );
    assert_eq!(
        pre.image_to_chw(&DynamicImage::ImageRgb8(augmented)),
        pre.image_to_chw(&image)
    );
}

#[test]
fn cached_views_are_the_plain_input_its_mirror_and_crops_fixed_by_seed_index_and_view() {
    let image = DynamicImage::ImageRgb8(test_image(90, 60, 3));
    let preprocessing = Preprocessing::imagenet(32);
    let views = PhotoViews::new(4, 1);
    let rendered = views.render(&image, 7, &preprocessing);
    assert_eq!(rendered.len(), 4);
    assert!(rendered.iter().all(|view| view.len() == 3 * 32 * 32));
    assert_eq!(rendered[PLAIN_VIEW], preprocessing.image_to_chw(&image));
    let mirrored = DynamicImage::ImageRgb8(imageops::flip_horizontal(
        &image.resize_exact(32, 32, FilterType::Triangle).to_rgb8(),
    ));
    assert_eq!(
        rendered[MIRRORED_VIEW],
        preprocessing.image_to_chw(&mirrored)
    );
    assert_ne!(rendered[2], rendered[3], "two crops alike");
    assert_eq!(views.render(&image, 7, &preprocessing), rendered);
    let other_image = views.render(&image, 8, &preprocessing);
    let other_seed = PhotoViews::new(4, 2).render(&image, 7, &preprocessing);
    for other in [other_image, other_seed] {
        assert_eq!(other[..2], rendered[..2]);
        assert_ne!(other[2], rendered[2]);
    }
    // Fewer views are a prefix of more.
    assert_eq!(
        PhotoViews::new(1, 1).render(&image, 7, &preprocessing),
        rendered[..1]
    );
}

#[test]
fn rand_augment_operations_keep_the_size_and_do_nothing_at_magnitude_zero() {
    let image = test_image(24, 18, 5);
    let mut rng = augmentation_rng(6, 0);
    for op in RandAugmentOp::ALL {
        assert_eq!(
            op.apply(&image, 30, &mut rng).dimensions(),
            (24, 18),
            "{op:?}"
        );
        let unchanged_at_zero =
            !matches!(op, RandAugmentOp::AutoContrast | RandAugmentOp::Solarize);
        if unchanged_at_zero {
            assert_eq!(
                op.apply(&image, 0, &mut rng),
                image,
                "{op:?} at magnitude 0"
            );
        }
    }
    // At full strength every operation but the identity changes this image.
    for op in RandAugmentOp::ALL.into_iter().skip(1) {
        assert_ne!(
            op.apply(&image, 30, &mut rng),
            image,
            "{op:?} at magnitude 30"
        );
    }
}

#[test]
fn configuration_files_name_only_what_they_change() {
    let default: AugmentationConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(default, AugmentationConfig::default());
    assert_eq!(default.rand_augment, Some(RandAugmentConfig::default()));

    let changed: AugmentationConfig =
        serde_json::from_str(r#"{"cutout": null, "rand_augment": {"magnitude": 5}}"#).unwrap();
    assert_eq!(changed.cutout, None);
    assert_eq!(changed.rand_augment.unwrap().num_ops, 2);

    let round_trip = serde_json::to_string(&everything_on()).unwrap();
    let parsed: AugmentationConfig = serde_json::from_str(&round_trip).unwrap();
    assert_eq!(parsed, everything_on());
}

/// A directory of good and bad files, and requests for them in a fixed order.
struct Fixture {
    _dir: tempfile::TempDir,
    requests: Vec<ImageRequest>,
    good_positions: Vec<usize>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| -> PathBuf { dir.path().join(name) };
    let jpeg = encode(&test_image(64, 48, 6), ImageFormat::Jpeg);
    let files: Vec<(&str, Vec<u8>)> = vec![
        (
            "good-0.png",
            encode(&test_image(30, 20, 7), ImageFormat::Png),
        ),
        ("corrupt.jpg", {
            let mut bytes = b"\xFF\xD8\xFF\xE0".to_vec();
            bytes.extend((0..500u32).map(|i| (i * 37 % 251) as u8));
            bytes
        }),
        ("good-1.jpg", jpeg.clone()),
        ("truncated.jpg", jpeg[..jpeg.len() / 2].to_vec()),
        (
            "notes.txt",
            b"these are not the pixels you are looking for\n".to_vec(),
        ),
        (
            "too-wide.png",
            encode(&RgbImage::new(16_385, 1), ImageFormat::Png),
        ),
        (
            "good-2.png",
            encode(&test_image(17, 41, 8), ImageFormat::Png),
        ),
    ];
    for (name, bytes) in &files {
        std::fs::write(path(name), bytes).unwrap();
    }
    let mut names: Vec<&str> = files.iter().map(|(name, _)| *name).collect();
    names.insert(5, "missing.png");
    let requests = names
        .iter()
        .enumerate()
        .map(|(index, name)| ImageRequest {
            path: path(name),
            index: 100 + index as u64,
        })
        .collect();
    Fixture {
        _dir: dir,
        requests,
        good_positions: vec![0, 2, 7],
    }
}

fn file_name(path: &Path) -> &str {
    path.file_name().unwrap().to_str().unwrap()
}

#[test]
fn loader_skips_unusable_files_naming_each_and_keeps_the_good_ones_in_order() {
    let fixture = fixture();
    let pre = Preprocessing::imagenet(16);
    let loader = ImageLoader {
        preprocessing: pre.clone(),
        augmentation: None,
    };
    let batch = loader.load_batch(&fixture.requests, 0);

    assert_eq!(batch.kept, fixture.good_positions);
    let expected: Vec<Vec<f32>> = fixture
        .good_positions
        .iter()
        .map(|&p| {
            let image = image::open(&fixture.requests[p].path).unwrap();
            pre.image_to_chw(&image)
        })
        .collect();
    assert_eq!(batch.images, expected);

    let skipped: Vec<(usize, &str, &SkipReason)> = batch
        .skipped
        .iter()
        .map(|s| (s.position, file_name(&s.path), &s.reason))
        .collect();
    let names: Vec<&str> = skipped.iter().map(|s| s.1).collect();
    assert_eq!(
        names,
        [
            "corrupt.jpg",
            "truncated.jpg",
            "notes.txt",
            "missing.png",
            "too-wide.png"
        ]
    );
    assert_eq!(
        skipped.iter().map(|s| s.0).collect::<Vec<_>>(),
        [1, 3, 4, 5, 6]
    );
    for (_, name, reason) in &skipped {
        let expected_kind = match *name {
            "missing.png" => matches!(reason, SkipReason::Unreadable(_)),
            "too-wide.png" => matches!(reason, SkipReason::TooLarge(_)),
            _ => matches!(reason, SkipReason::Undecodable(_)),
        };
        assert!(expected_kind, "{name}: {reason}");
    }
    // The warning text names the file and the reason.
    let message = batch.skipped[3].to_string();
    assert!(
        message.contains("missing.png") && message.contains("cannot read"),
        "{message}"
    );
}

fn is_cut_short(bytes: &[u8]) -> bool {
    find_damage(bytes) == Some(JpegDamage::CutShort)
}

#[test]
fn a_jpeg_cut_anywhere_before_its_end_marker_is_truncated() {
    let jpeg = encode(&test_image(48, 40, 9), ImageFormat::Jpeg);
    assert_eq!(find_damage(&jpeg), None);
    for cut in [
        3,
        20,
        jpeg.len() / 3,
        jpeg.len() / 2,
        jpeg.len() - 2,
        jpeg.len() - 1,
    ] {
        assert!(is_cut_short(&jpeg[..cut]), "cut at {cut} of {}", jpeg.len());
    }
    // Bytes after the end marker (as some cameras append) are no damage.
    let mut padded = jpeg.clone();
    padded.extend_from_slice(b"trailing data");
    assert_eq!(find_damage(&padded), None);
    // Other formats are left to the decoder.
    assert_eq!(
        find_damage(&encode(&test_image(4, 4, 0), ImageFormat::Png)),
        None
    );
    assert_eq!(find_damage(b"plain text"), None);

    for path in real_photos() {
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(find_damage(&bytes), None, "{}", path.display());
        assert!(
            is_cut_short(&bytes[..bytes.len() * 9 / 10]),
            "{}",
            path.display()
        );
    }
}

/// The photos of the repository's fixtures and samples: real camera and COCO JPEG files.
fn real_photos() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut photos = vec![root.join("trainer/tests/fixtures/exif/upright.jpg")];
    let samples = std::fs::read_dir(root.join("www/samples")).unwrap();
    photos.extend(
        samples
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "jpg")),
    );
    assert!(photos.len() > 4, "{photos:?}");
    photos
}

/// `bytes` with the scan data from `from` of the way to `to` taken out: the file still ends
/// with its end-of-image marker.
fn without_part_of_the_scan(bytes: &[u8], from: f64, to: f64) -> Vec<u8> {
    let scan = bytes
        .windows(2)
        .position(|w| w == [0xFF, 0xDA])
        .expect("a start-of-scan marker");
    let data_start = scan + 2 + u16::from_be_bytes([bytes[scan + 2], bytes[scan + 3]]) as usize;
    let data_end = bytes.len() - 2;
    let at = |share: f64| data_start + ((data_end - data_start) as f64 * share) as usize;
    let mut damaged = bytes[..at(from)].to_vec();
    damaged.extend_from_slice(&bytes[at(to)..]);
    damaged
}

#[test]
fn a_jpeg_whose_scan_lost_bytes_is_refused_though_it_ends_with_its_end_marker() {
    for path in real_photos() {
        let bytes = std::fs::read(&path).unwrap();
        // The image crate's decoder takes each of these without a word.
        for (from, to) in [(0.3, 1.0), (0.5, 0.6), (0.9, 1.0)] {
            let damaged = without_part_of_the_scan(&bytes, from, to);
            assert!(image::load_from_memory(&damaged).is_ok());
            let error = querylabel::preprocess::decode_image(&damaged)
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("corrupt JPEG") && !error.contains("truncated"),
                "{}, {from}..{to}: {error}",
                path.display()
            );
        }
        // Cut at the end of the scan, the missing share is stated.
        let damaged = without_part_of_the_scan(&bytes, 0.5, 1.0);
        match find_damage(&damaged) {
            Some(JpegDamage::ScanEndsEarly {
                blocks_read,
                blocks_expected,
            }) => {
                let read = blocks_read as f64 / blocks_expected as f64;
                assert!((0.3..0.8).contains(&read), "{}: {read}", path.display());
            }
            other => panic!("{}: {other:?}", path.display()),
        }
    }
}

/// The damage walk must never refuse a good photo: every real COCO photo of coco2014-mini
/// (5,030 squashed by their source, 12 at full size) passes it.
#[test]
fn no_real_coco_photo_is_taken_for_damaged() {
    let mini = common::coco2014_mini();
    let mut walked = 0;
    for folder in ["train/images", "demo/images"] {
        for entry in std::fs::read_dir(mini.join(folder)).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(find_damage(&bytes), None, "{}", path.display());
            walked += 1;
        }
    }
    assert!(walked > 5000, "{walked} photos");
}

#[test]
fn random_bytes_inside_a_jpeg_scan_are_found() {
    let mut found = 0;
    let mut tried = 0;
    for (index, path) in real_photos().into_iter().enumerate() {
        let bytes = std::fs::read(&path).unwrap();
        let mut random = rand_chacha::ChaCha8Rng::seed_from_u64(index as u64);
        for _ in 0..8 {
            let mut damaged = bytes.clone();
            let scan = damaged.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
            let at = random.random_range(scan + 200..damaged.len() - 600);
            // No FF: the marker structure stays whole, so only the scan walk can see this.
            for byte in &mut damaged[at..at + 400] {
                *byte = random.random_range(0..0xFF);
            }
            tried += 1;
            if querylabel::preprocess::decode_image(&damaged).is_err() {
                found += 1;
            }
        }
    }
    // Random data can happen to code valid blocks; nearly all of it does not.
    assert!(found * 10 >= tried * 9, "{found} of {tried} found");
}

#[test]
fn augmented_batches_are_identical_with_one_or_several_threads() {
    let dir = tempfile::tempdir().unwrap();
    let requests: Vec<ImageRequest> = (0..12u32)
        .map(|i| {
            let path = dir.path().join(format!("{i}.png"));
            std::fs::write(&path, encode(&test_image(40 + i, 30, i), ImageFormat::Png)).unwrap();
            ImageRequest {
                path,
                index: i as u64 * 3,
            }
        })
        .collect();
    let loader = ImageLoader {
        preprocessing: Preprocessing::imagenet(24),
        augmentation: Some(everything_on()),
    };
    let load_with = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| loader.load_batch(&requests, 42))
    };
    let sequential = load_with(1);
    assert_eq!(sequential.images.len(), 12);
    assert_eq!(sequential, load_with(4));
    assert_ne!(
        sequential,
        loader.load_batch(&requests, 43),
        "the seed matters"
    );

    // An image's augmentation depends on its index, not on what it is batched with.
    let alone = loader.load_batch(&requests[5..6], 42);
    assert_eq!(alone.images[0], sequential.images[5]);
}

#[test]
fn real_photos_load_with_and_without_augmentation() {
    let dir = Path::new("/work/shared/data/coco2014-mini/train/images");
    let Ok(entries) = std::fs::read_dir(dir) else {
        eprintln!("no COCO sample photos at {}; skipping", dir.display());
        return;
    };
    let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    paths.sort();
    let requests: Vec<ImageRequest> = paths
        .into_iter()
        .take(3)
        .enumerate()
        .map(|(index, path)| ImageRequest {
            path,
            index: index as u64,
        })
        .collect();
    for augmentation in [None, Some(AugmentationConfig::default())] {
        let loader = ImageLoader {
            preprocessing: Preprocessing::imagenet(64),
            augmentation,
        };
        let batch = loader.load_batch(&requests, 1);
        assert_eq!(batch.kept.len(), requests.len(), "{:?}", batch.skipped);
        assert!(batch.images.iter().all(|i| i.len() == 3 * 64 * 64));
        assert!(batch.images.iter().flatten().all(|v| v.is_finite()));
    }
}

#[test]
fn prefetch_yields_every_item_in_order_and_stops_when_dropped() {
    let items: Vec<u32> = prefetch(0..100, 2).collect();
    assert_eq!(items, (0..100).collect::<Vec<_>>());

    // Dropping early must not hang, even with an endless source.
    let mut endless = prefetch(0u64.., 1);
    assert_eq!(endless.next(), Some(0));
    assert_eq!(endless.next(), Some(1));
    drop(endless);
}

#[test]
#[should_panic(expected = "broken batch")]
fn prefetch_passes_a_producer_panic_on_to_the_consumer() {
    let source = (0..5).inspect(|&i| {
        if i == 3 {
            panic!("broken batch");
        }
    });
    let items: Vec<i32> = prefetch(source, 1).collect();
    unreachable!("ended early with {items:?} instead of panicking");
}

/// The mean absolute difference of two photos of one size, per channel value in [0, 255].
fn mean_difference(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions(), "not the same size");
    let total: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    total as f64 / a.as_raw().len() as f64
}

#[test]
fn a_photo_is_decoded_as_displayed_whatever_its_exif_orientation() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/exif");
    let upright = read_image(&dir.join("upright.jpg")).unwrap().to_rgb8();
    let turned = read_image(&dir.join("orientation-6.jpg"))
        .unwrap()
        .to_rgb8();
    // The stored pixels are 213×320; shown as the EXIF tag says, the photo is 320×213.
    assert_eq!(turned.dimensions(), (320, 213));
    let difference = mean_difference(&upright, &turned);
    assert!(difference < 3.0, "{difference} from the upright photo");
    // The same pixels taken as stored would be another photo altogether.
    let stored = image::load_from_memory(&std::fs::read(dir.join("orientation-6.jpg")).unwrap())
        .unwrap()
        .to_rgb8();
    assert_eq!(stored.dimensions(), (213, 320));
    let flipped_upright = imageops::rotate180(&upright);
    assert!(mean_difference(&flipped_upright, &turned) > 20.0);
}

#[test]
fn damage_inside_a_jpeg_is_not_called_truncation() {
    let photo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/exif/upright.jpg");
    let mut bytes = std::fs::read(photo).unwrap();
    let scan = bytes
        .windows(2)
        .position(|w| w == [0xFF, 0xDA])
        .expect("a start-of-scan marker");
    // A stray marker with an impossible length in the middle of the scan data; the file keeps
    // its end-of-image marker.
    bytes[scan + 400..scan + 404].copy_from_slice(&[0xFF, 0xC4, 0xFF, 0xFF]);
    let error = querylabel::preprocess::decode_image(&bytes)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("corrupt JPEG") && !error.contains("truncated"),
        "{error}"
    );
    // Cut short, the same photo is truncated.
    let cut = &std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/exif/upright.jpg"),
    )
    .unwrap()[..scan + 800];
    let error = querylabel::preprocess::decode_image(cut)
        .unwrap_err()
        .to_string();
    assert!(error.contains("truncated JPEG"), "{error}");
}

#[test]
fn every_jpeg_coding_decodes_and_shows_its_damage() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jpeg-codings");
    for name in [
        "cmyk.jpg",
        "grayscale.jpg",
        "optimized-420.jpg",
        "progressive.jpg",
        "restart-markers.jpg",
        "subsampling-422.jpg",
        "subsampling-444.jpg",
    ] {
        let bytes = std::fs::read(fixtures.join(name)).unwrap();
        let photo =
            querylabel::preprocess::decode_image(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((photo.width(), photo.height()), (123, 91), "{name}");
        assert!(is_cut_short(&bytes[..bytes.len() / 2]), "{name}");
        // The scan walk covers sequential frames; a progressive one has the marker walk only.
        let damaged = without_part_of_the_scan(&bytes, 0.4, 0.6);
        let found = find_damage(&damaged);
        if name == "progressive.jpg" {
            assert_eq!(found, None, "{name}");
        } else {
            assert!(found.is_some(), "{name}");
        }
    }
}

#[test]
fn the_pipeline_benchmark_loads_every_photo_of_each_pass() {
    let sample = querylabel_trainer::dataset::sample_dir();
    let result = querylabel_trainer::pipeline_bench::bench_pipeline(&sample, 64, 2).unwrap();
    let photos = std::fs::read_dir(sample.join("images")).unwrap().count();
    assert_eq!((result.images, result.skipped), (2 * photos, 0));
    assert!(result.images_per_second > 0.0 && result.threads >= 1);
}
