//! The native side of querylabel: data sets, weight files, training, evaluation and export.
//! The `trainer` binary is a thin command line over this library.

pub mod weights;
