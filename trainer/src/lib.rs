//! The native side of querylabel: data sets, weight files, training, evaluation and export.
//! The `trainer` binary is a thin command line over this library.

pub mod atomic_files;
pub mod backend;
pub mod bench;
pub mod calibration;
pub mod checkpoint;
pub mod data_parallel;
pub mod dataset;
pub mod ema;
pub mod error;
pub mod evaluate;
pub mod export;
pub mod extract;
pub mod fault_points;
pub mod feature_cache;
pub mod flag_values;
pub mod flip_tta;
pub mod images;
pub mod lesson_features;
pub mod loss_settings;
pub mod model_dir;
pub mod model_source;
pub mod optimizer;
pub mod per_model_flags;
pub mod pipeline_bench;
pub mod plots;
pub mod predict;
pub mod report;
pub mod resume;
pub mod run_state;
pub mod saved_model;
pub mod schedule;
pub mod train;
pub mod train_options;
pub mod training_labels;
pub mod weights;
