//! The trainer's one error type: what went wrong, where (a file, a line or field of it, or a
//! command-line flag), what the user can do about it, and the error it came from.
//!
//! Every message reads the same way: the place, then what is wrong, then the cause, and the
//! hints on lines of their own:
//!
//! ```text
//! data/labels.csv line 3: unknown label 'dgo' (not in classes.txt)
//! hint: use the class names of data/classes.txt, space-separated
//! ```
//!
//! Build one with [`TrainerError::new`] and its builders, or from a failed call with
//! [`Context`] (the cause becomes the error's [`source`](std::error::Error::source)) or
//! [`Locate`] (an error that already says what is wrong is given its place).

use std::error::Error;
use std::fmt;
use std::path::{Path, PathBuf};

/// The trainer's results.
pub type Result<T, E = TrainerError> = std::result::Result<T, E>;

/// What failed, where, what to do, and why. Boxed, so that a `Result` stays as small as its
/// value.
#[derive(Debug)]
pub struct TrainerError(Box<Details>);

#[derive(Debug)]
struct Details {
    what: String,
    place: Option<Place>,
    hint: Option<String>,
    source: Option<Box<dyn Error + Send + Sync>>,
}

/// Where an error is: what the user has to look at to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// A file or directory as a whole.
    File(PathBuf),
    /// A line of a text file (CSV, VOC lists, XML, JSON), and the column when known.
    Line {
        file: PathBuf,
        line: u64,
        column: Option<u64>,
    },
    /// A field or key of a structured file (`annotations[3].category_id` in a COCO file,
    /// `val_fraction` in `options.json`, a tensor of a safetensors file), with the value found
    /// there when it helps.
    Field {
        file: PathBuf,
        field: String,
        value: Option<String>,
    },
    /// A command-line flag (`--batch-size`), with the value given when it helps.
    Flag { flag: String, value: Option<String> },
}

impl Place {
    /// Where serde_json found a problem in `file`.
    pub fn json(file: impl AsRef<Path>, error: &serde_json::Error) -> Self {
        Place::Line {
            file: file.as_ref().to_path_buf(),
            line: error.line() as u64,
            column: Some(error.column() as u64),
        }
    }
}

impl fmt::Display for Place {
    /// A file or line is a location (`labels.csv line 3`); a field or flag is the subject of
    /// the message, so it is followed by the value it holds (`--views 0`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let with_value = |f: &mut fmt::Formatter<'_>, name: &str, value: &Option<String>| {
            f.write_str(name)?;
            match value {
                Some(value) => write!(f, " {value}"),
                None => Ok(()),
            }
        };
        match self {
            Place::File(file) => write!(f, "{}", file.display()),
            Place::Line { file, line, column } => {
                write!(f, "{} line {line}", file.display())?;
                match column {
                    Some(column) => write!(f, " column {column}"),
                    None => Ok(()),
                }
            }
            Place::Field { file, field, value } => {
                write!(f, "{}: ", file.display())?;
                with_value(f, field, value)
            }
            Place::Flag { flag, value } => with_value(f, flag, value),
        }
    }
}

/// serde_json's message without the position it ends in (" at line 3 column 7"), which
/// [`Place::json`] states up front.
pub fn json_message(error: &serde_json::Error) -> String {
    let message = error.to_string();
    match message.rsplit_once(" at line ") {
        Some((head, _)) => head.to_string(),
        None => message,
    }
}

impl TrainerError {
    /// An error that says `what` is wrong; give it a place, a hint and a cause with the
    /// builders below.
    pub fn new(what: impl Into<String>) -> Self {
        Self(Box::new(Details {
            what: what.into(),
            place: None,
            hint: None,
            source: None,
        }))
    }

    /// A JSON file that does not parse, or not into what it should hold: at serde_json's line
    /// and column, in its words.
    pub fn json(file: impl AsRef<Path>, error: &serde_json::Error) -> Self {
        if error.is_io() {
            return Self::new(format!("cannot read: {error}")).in_file(file);
        }
        Self::new(json_message(error)).at(Place::json(file, error))
    }

    /// The error is at `place`.
    pub fn at(mut self, place: Place) -> Self {
        self.0.place = Some(place);
        self
    }

    /// The error is in `file` (or directory) as a whole.
    pub fn in_file(self, file: impl AsRef<Path>) -> Self {
        self.at(Place::File(file.as_ref().to_path_buf()))
    }

    /// The error is on line `line` (from 1) of `file`.
    pub fn at_line(self, file: impl AsRef<Path>, line: u64) -> Self {
        self.at(Place::Line {
            file: file.as_ref().to_path_buf(),
            line,
            column: None,
        })
    }

    /// The error is in the field `field` of `file`.
    pub fn at_field(self, file: impl AsRef<Path>, field: impl Into<String>) -> Self {
        self.at(Place::Field {
            file: file.as_ref().to_path_buf(),
            field: field.into(),
            value: None,
        })
    }

    /// The error is the value `value` of the field `field` of `file`.
    pub fn at_field_value(
        self,
        file: impl AsRef<Path>,
        field: impl Into<String>,
        value: impl fmt::Display,
    ) -> Self {
        self.at(Place::Field {
            file: file.as_ref().to_path_buf(),
            field: field.into(),
            value: Some(value.to_string()),
        })
    }

    /// The error is in the command-line flag `flag` (`--batch-size`).
    pub fn at_flag(self, flag: impl Into<String>) -> Self {
        self.at(Place::Flag {
            flag: flag.into(),
            value: None,
        })
    }

    /// The error is the value `value` given to the command-line flag `flag`.
    pub fn at_flag_value(self, flag: impl Into<String>, value: impl fmt::Display) -> Self {
        self.at(Place::Flag {
            flag: flag.into(),
            value: Some(value.to_string()),
        })
    }

    /// What the user can do about it: the flag to pass, what the file should hold, the
    /// command that makes it.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.0.hint = Some(hint.into());
        self
    }

    /// The error this one comes from, told after it.
    pub fn caused_by(mut self, source: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        self.0.source = Some(source.into());
        self
    }

    /// The place and what is wrong, without cause or hint.
    fn headline(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.place {
            Some(place) => write!(f, "{place}: {}", self.0.what),
            None => f.write_str(&self.0.what),
        }
    }
}

impl fmt::Display for TrainerError {
    /// `PLACE: WHAT: CAUSE: ITS CAUSE`, then `hint: …` lines, this error's first: the causes
    /// follow on the one line, each after a colon, and a cause that is a `TrainerError` with
    /// its place (its hints joining this one's).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.headline(f)?;
        let mut hints: Vec<&str> = self.0.hint.iter().map(String::as_str).collect();
        let mut cause = self.source();
        while let Some(error) = cause {
            f.write_str(": ")?;
            match error.downcast_ref::<TrainerError>() {
                Some(inner) => {
                    inner.headline(f)?;
                    hints.extend(inner.0.hint.as_deref());
                }
                None => write!(f, "{error}")?,
            }
            cause = error.source();
        }
        for hint in hints {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

impl Error for TrainerError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|source| source as &(dyn Error + 'static))
    }
}

/// A message is an error that says what is wrong (the shared crate's checks return them).
impl From<String> for TrainerError {
    fn from(what: String) -> Self {
        Self::new(what)
    }
}

/// The shared crate's errors say what is wrong in full; the trainer adds where.
macro_rules! from_shared_error {
    ($($error:ty),*) => {$(
        impl From<$error> for TrainerError {
            fn from(error: $error) -> Self {
                Self::new(error.to_string())
            }
        }
    )*};
}

from_shared_error!(
    querylabel::bundle::BundleError,
    querylabel::exported::ExportError,
    querylabel::preprocess::ImageError,
    querylabel::metrics::ShapeError
);

/// Says what failed, and where, when a call fails; its error becomes the cause
/// (`fs::read(path).context_in(path, "cannot read")`).
pub trait Context<T> {
    /// On failure: `what` failed.
    fn context(self, what: impl Into<String>) -> Result<T>;
    /// On failure: `what` failed on `file`.
    fn context_in(self, file: impl AsRef<Path>, what: impl Into<String>) -> Result<T>;
    /// On failure: the error `make` builds.
    fn or_error(self, make: impl FnOnce() -> TrainerError) -> Result<T>;
}

impl<T, E: Error + Send + Sync + 'static> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl Into<String>) -> Result<T> {
        self.or_error(|| TrainerError::new(what))
    }

    fn context_in(self, file: impl AsRef<Path>, what: impl Into<String>) -> Result<T> {
        self.or_error(|| TrainerError::new(what).in_file(file))
    }

    fn or_error(self, make: impl FnOnce() -> TrainerError) -> Result<T> {
        self.map_err(|error| make().caused_by(error))
    }
}

/// Gives a failed call's error, which already says what is wrong, its place
/// (`parse_manifest(&json).in_file(path)`).
pub trait Locate<T> {
    fn in_file(self, file: impl AsRef<Path>) -> Result<T>;
    fn at_flag(self, flag: &str) -> Result<T>;
}

impl<T, E: Into<TrainerError>> Locate<T> for std::result::Result<T, E> {
    fn in_file(self, file: impl AsRef<Path>) -> Result<T> {
        self.map_err(|error| error.into().in_file(file))
    }

    fn at_flag(self, flag: &str) -> Result<T> {
        self.map_err(|error| error.into().at_flag(flag))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_error_is_what_it_says() {
        assert_eq!(
            TrainerError::new("no runs given").to_string(),
            "no runs given"
        );
    }

    #[test]
    fn each_place_leads_the_message() {
        let what = || TrainerError::new("is wrong");
        let cases = [
            (what().in_file("a/b.json"), "a/b.json: is wrong"),
            (
                what().at_line("labels.csv", 3),
                "labels.csv line 3: is wrong",
            ),
            (
                what().at(Place::Line {
                    file: "x.json".into(),
                    line: 5,
                    column: Some(7),
                }),
                "x.json line 5 column 7: is wrong",
            ),
            (
                what().at_field("options.json", "seed"),
                "options.json: seed: is wrong",
            ),
            (
                what().at_field_value("c.json", "annotations[3].category_id", 12),
                "c.json: annotations[3].category_id 12: is wrong",
            ),
            (what().at_flag("--resume"), "--resume: is wrong"),
            (what().at_flag_value("--views", 0), "--views 0: is wrong"),
        ];
        for (error, expected) in cases {
            assert_eq!(error.to_string(), expected);
        }
    }

    #[test]
    fn a_hint_follows_on_its_own_line() {
        let error = TrainerError::new("unknown label 'dgo'")
            .at_line("labels.csv", 12)
            .with_hint("use the names in classes.txt");
        assert_eq!(
            error.to_string(),
            "labels.csv line 12: unknown label 'dgo'\nhint: use the names in classes.txt"
        );
    }

    #[test]
    fn causes_follow_in_one_line_and_their_hints_below() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let inner = Err::<(), _>(io)
            .context_in("cache.safetensors", "cannot read")
            .map_err(|error| error.with_hint("make one with `trainer extract`"));
        let outer = inner
            .or_error(|| {
                TrainerError::new("the feature cache of the run")
                    .in_file("run/options.json")
                    .with_hint("train the run again")
            })
            .unwrap_err();
        assert_eq!(
            outer.to_string(),
            "run/options.json: the feature cache of the run: cache.safetensors: cannot read: \
             no such file\nhint: train the run again\nhint: make one with `trainer extract`"
        );
        let cause = outer.source().expect("a cause");
        assert!(cause.downcast_ref::<TrainerError>().is_some());
        assert_eq!(
            cause.source().map(ToString::to_string).as_deref(),
            Some("no such file")
        );
    }

    #[test]
    fn json_errors_are_placed_at_their_line_and_column() {
        let error = serde_json::from_str::<serde_json::Value>("{\n  \"a\": oops\n}").unwrap_err();
        let message = TrainerError::json("state.json", &error).to_string();
        assert_eq!(message, "state.json line 2 column 8: expected value");
    }

    #[test]
    fn an_error_that_says_what_is_wrong_is_given_its_place() {
        let checked: std::result::Result<(), String> = Err("decision_threshold 2 is not a \
                                                           probability"
            .into());
        assert_eq!(
            checked.in_file("best/model.json").unwrap_err().to_string(),
            "best/model.json: decision_threshold 2 is not a probability"
        );
        let unknown = querylabel::bundle::BundleError::UnknownHead {
            name: "nope".into(),
            known: vec!["full".into()],
        };
        assert_eq!(
            Err::<(), _>(unknown)
                .at_flag("--head")
                .unwrap_err()
                .to_string(),
            "--head: no head \"nope\" in this bundle; its heads are full"
        );
    }
}
