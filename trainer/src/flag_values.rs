//! Parsers for the numeric command-line flags, so that a value outside its range is refused
//! when the command is read, with the range in the message, instead of failing deep inside a
//! run (or, worse, training on).

use std::str::FromStr;

fn number<T: FromStr>(text: &str) -> Result<T, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))
}

/// A finite number above zero (learning rates, expected positives).
pub fn positive(text: &str) -> Result<f64, String> {
    let value: f64 = number(text)?;
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(format!("{value} must be a finite number above 0"))
    }
}

/// A finite number of at least zero (weight decay, ASL's exponents and clip).
pub fn non_negative(text: &str) -> Result<f64, String> {
    let value: f64 = number(text)?;
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(format!("{value} must be a finite number of at least 0"))
    }
}

/// A share in [0, 1) (the validation fraction, a moving average's decay).
pub fn fraction(text: &str) -> Result<f64, String> {
    let value: f64 = number(text)?;
    if (0.0..1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{value} must lie in [0, 1)"))
    }
}

/// A count of at least one (batch size, epochs, layer widths).
pub fn count(text: &str) -> Result<usize, String> {
    let value: usize = number(text)?;
    if value >= 1 {
        Ok(value)
    } else {
        Err("0 is not allowed here: give at least 1".to_string())
    }
}

/// A `--threshold` value: a probability in `[0, 1]`.
pub fn threshold(text: &str) -> Result<f32, String> {
    let value: f32 = number(text)?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "{value} is not a probability: a threshold lies in [0, 1]"
        ))
    }
}

/// An input size in pixels, within the sides a network can take.
pub fn image_size(text: &str) -> Result<usize, String> {
    use querylabel::preprocess::INPUT_SIDES as IMAGE_SIZES;
    let value: usize = number(text)?;
    if IMAGE_SIZES.contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "{value} px cannot be used: the input size lies in [{}, {}] (the backbones \
             downsample by 32)",
            IMAGE_SIZES.start(),
            IMAGE_SIZES.end()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_on_the_command_line_are_probabilities() {
        assert_eq!(threshold("0.63"), Ok(0.63));
        assert_eq!(threshold("1"), Ok(1.0));
        assert!(threshold("1.5").unwrap_err().contains("[0, 1]"));
        assert!(threshold("NaN").is_err());
        assert!(threshold("high").unwrap_err().contains("not a number"));
    }

    #[test]
    fn refuses_what_no_run_can_use() {
        for bad in ["NaN", "inf", "-1e-3", "0", "x"] {
            assert!(positive(bad).is_err(), "{bad}");
        }
        assert_eq!(positive("1e-3"), Ok(1e-3));
        assert!(non_negative("-0.1").is_err() && non_negative("NaN").is_err());
        assert_eq!(non_negative("0"), Ok(0.0));
        assert!(fraction("1").is_err() && fraction("-0.2").is_err() && fraction("NaN").is_err());
        assert_eq!(fraction("0.2"), Ok(0.2));
        assert!(count("0").is_err() && count("-3").is_err());
        assert_eq!(count("64"), Ok(64));
        assert!(image_size("0").is_err() && image_size("16").is_err());
        assert_eq!(image_size("260"), Ok(260));
    }
}
