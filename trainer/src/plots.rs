//! PNG plots of a run's curves (training loss, validation mAP), redrawn after every epoch.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::atomic_files::write_atomically;
use crate::error::{Context, Result};
use crate::run_state::EpochRecord;

const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const SIZE: (u32, u32) = (800, 480);
const CANNOT_DRAW: &str = "cannot draw the plot";

fn register_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("the embedded font is a valid TrueType font"));
    });
}

/// Writes `loss.png` and `map.png` into `dir`.
pub fn plot_history(dir: &Path, history: &[EpochRecord]) -> Result<()> {
    let points = |value: fn(&EpochRecord) -> f64| -> Vec<(f64, f64)> {
        history.iter().map(|r| (r.epoch as f64, value(r))).collect()
    };
    plot_curve(
        &dir.join("loss.png"),
        "training loss",
        "loss",
        &points(|r| r.train_loss),
    )?;
    plot_curve(
        &dir.join("map.png"),
        "validation mAP",
        "mAP (%)",
        &points(|r| r.val_map),
    )
}

/// One curve over epochs, as a PNG at `path` (written atomically).
pub fn plot_curve(path: &Path, title: &str, y_label: &str, points: &[(f64, f64)]) -> Result<()> {
    plot_curves(path, title, y_label, &[(String::new(), points.to_vec())])
}

/// Colours of successive curves; a name-less single curve is blue.
const PALETTE: [RGBColor; 8] = [
    BLUE,
    RED,
    RGBColor(0, 150, 0),
    RGBColor(230, 140, 0),
    MAGENTA,
    CYAN,
    BLACK,
    RGBColor(140, 90, 40),
];

/// A named curve: (name, (epoch, value) points).
pub type Curve = (String, Vec<(f64, f64)>);

/// Named curves over epochs in one chart, with a legend when they have names, as a PNG at
/// `path` (written atomically).
pub fn plot_curves(path: &Path, title: &str, y_label: &str, curves: &[Curve]) -> Result<()> {
    register_font();
    let all_points = || curves.iter().flat_map(|(_, points)| points.iter());
    let mut pixels = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, SIZE).into_drawing_area();
        root.fill(&WHITE).context_in(path, CANNOT_DRAW)?;
        let finite = all_points().filter(|(_, y)| y.is_finite());
        let (low, high) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(_, y)| {
            (lo.min(y), hi.max(y))
        });
        let (low, high) = if low.is_finite() {
            (low, high)
        } else {
            (0.0, 1.0)
        };
        let margin = ((high - low) * 0.1).max(1e-6);
        let last_epoch = all_points().map(|p| p.0).fold(1.0, f64::max);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..last_epoch + 0.5, (low - margin)..(high + margin))
            .context_in(path, CANNOT_DRAW)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(y_label)
            .label_style(("sans-serif", 14))
            .draw()
            .context_in(path, CANNOT_DRAW)?;
        for (index, (name, points)) in curves.iter().enumerate() {
            let colour = PALETTE[index % PALETTE.len()];
            let series = chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    colour.stroke_width(2),
                ))
                .context_in(path, CANNOT_DRAW)?;
            if !name.is_empty() {
                series.label(name.as_str()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
            }
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                .context_in(path, CANNOT_DRAW)?;
        }
        if curves.iter().any(|(name, _)| !name.is_empty()) {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .draw()
                .context_in(path, CANNOT_DRAW)?;
        }
        root.present().context_in(path, CANNOT_DRAW)?;
    }
    let image = image::RgbImage::from_raw(SIZE.0, SIZE.1, pixels).expect("buffer of the plot size");
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(image)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .context_in(path, "cannot encode the plot as PNG")?;
    write_atomically(path, &png)
}
